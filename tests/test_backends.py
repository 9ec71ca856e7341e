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


def test_googlenet_extractor_on_the_onnx_backend_gives_eager_features():
    """The extractor's own path (no Ray): 5 frames with batch size 4, so the ONNX graph's fixed
    batch is padded on the last call."""
    pytest.importorskip("onnxruntime")
    from pipeline.features import ExtractorOptions, build_extractors

    frames = np.random.default_rng(0).integers(0, 256, (5, 224, 224, 3), dtype=np.uint8)
    eager, onnx = (build_extractors(["googlenet"], ExtractorOptions(weights="random", batch_size=4,
                                                                    backend=b))[0]
                   for b in ("eager", "onnx"))
    assert onnx.run is not None and eager.run is None
    a, b = eager(frames), onnx(frames)
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    assert a.shape == b.shape == (5, 1024) and cos.min() >= 0.9999


@pytest.mark.slow  # two Ray starts and an ONNX export: ~70 s
def test_vsum_extract_with_the_onnx_backend_gives_eager_features(tmp_path):
    """`vsum extract --backend onnx` through the command: GoogLeNet pool5 per step as eager's
    (cosine >= 0.9999), and the same configuration hash (a re-run with eager has nothing to do)."""
    import subprocess
    import sys
    from pathlib import Path

    from extract_helpers import make_videos

    from stores.reader import FeatureStore

    pytest.importorskip("onnxruntime")
    video = make_videos(tmp_path / "in", ["clip"], n_frames=100)[0]
    vsum = str(Path(sys.executable).parent / "vsum")
    base = [vsum, "extract", video, "--features", "googlenet", "--weights", "random", "--no-kts",
            "--workers", "1", "--batch-size", "4"]
    for backend, store in (("eager", "eager.zarr"), ("onnx", "onnx.zarr")):
        res = subprocess.run([*base, "--store", str(tmp_path / store), "--backend", backend],
                             capture_output=True, text=True, timeout=600)
        assert res.returncode == 0, res.stderr[-2000:]
    eager, onnx = (FeatureStore(str(tmp_path / s)) for s in ("eager.zarr", "onnx.zarr"))
    a, b = (fs.features("clip", "googlenet") for fs in (eager, onnx))
    assert a.shape == b.shape and len(a) == 7  # 100 frames, every 15th: 7 steps (a short last batch)
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    assert cos.min() >= 0.9999 and not np.array_equal(a, b)  # the other path really ran
    assert eager.attrs("clip")["config_hash"] == onnx.attrs("clip")["config_hash"]
