"""``vsum bench backends``: every path's features are compared with eager fp32."""
from __future__ import annotations

import pytest
import torch

from jobs.bench.backends import measure_paths


def _small_cnn():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(),
                               torch.nn.Conv2d(8, 16, 3, stride=2), torch.nn.AdaptiveAvgPool2d(1),
                               torch.nn.Flatten()).eval()


def test_rows_are_compared_with_eager_fp32():
    """(The ONNX path itself is pipeline/features/backends.py's, tested in test_backends.py.)"""
    x = torch.randn(4, 3, 32, 32)
    rows = {r["path"]: r for r in measure_paths(_small_cnn(), x, ["eager", "channels_last"], 1, 1)}
    assert set(rows) == {"eager", "channels_last"}
    for r in rows.values():
        assert "error" not in r, r
        assert r["per_s"] > 0 and r["cosine_min"] > 0.9999 and r["max_abs_diff"] < 1e-4
    assert rows["eager"]["max_abs_diff"] == 0.0
    assert rows["channels_last"]["speedup_vs_channels_last"] == 1.0
    assert rows["channels_last"]["qualifies"] is False  # only a new path can qualify


def test_a_path_that_cannot_run_is_a_row_with_its_reason():
    rows = measure_paths(_small_cnn(), torch.randn(2, 3, 16, 16), ["channels_last", "nope"], 1, 1)
    by_path = {r["path"]: r for r in rows}
    assert "per_s" in by_path["channels_last"]
    assert "per_s" not in by_path["nope"] and "KeyError" in by_path["nope"]["error"]


@pytest.mark.slow
def test_compile_path_runs_and_agrees():
    rows = measure_paths(_small_cnn(), torch.randn(4, 3, 32, 32), ["channels_last", "compile"], 1, 1)
    r = rows[-1]
    assert "error" not in r, r
    assert r["compile_s"] > 0 and r["cosine_min"] > 0.9999
