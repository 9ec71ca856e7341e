"""pipeline/features/backends.py: every execution path gives eager's features."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.features.backends import compile_for


def _small_cnn():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(),
                               torch.nn.Conv2d(8, 16, 3, stride=2), torch.nn.AdaptiveAvgPool2d(1),
                               torch.nn.Flatten()).eval()


def test_onnx_backend_matches_eager_also_on_a_short_last_batch(tmp_path):
    pytest.importorskip("onnxruntime")
    model, x = _small_cnn(), torch.randn(4, 3, 24, 24)
    eager = compile_for(model, "eager", x)
    onnx = compile_for(model, "onnx", x, threads=1, folder=tmp_path)
    assert (tmp_path / "model.onnx").is_file()
    np.testing.assert_allclose(onnx(x), eager(x), atol=1e-5)
    np.testing.assert_allclose(onnx(x[:3]), eager(x[:3]), atol=1e-5)  # padded inside
    with pytest.raises(ValueError, match="exported 4"):
        onnx(torch.randn(5, 3, 24, 24))


def test_unknown_backend_names_the_known_ones():
    with pytest.raises(ValueError, match="eager, compile, onnx"):
        compile_for(_small_cnn(), "tensorrt", torch.randn(1, 3, 8, 8))


@pytest.mark.slow
def test_compile_backend_matches_eager():
    model, x = _small_cnn(), torch.randn(2, 3, 24, 24)
    np.testing.assert_allclose(compile_for(model, "compile", x)(x), compile_for(model, "eager", x)(x),
                               atol=1e-5)
