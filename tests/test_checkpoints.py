"""Checkpoints hold tensors and plain values only and load with ``weights_only=True``: a pickle
that would run code is refused (and runs nothing, through ``vsum summarize`` too), and a CRSum
checkpoint whose trunk came from pretrained weights reloads where those weights are absent."""
from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from heads.crsum import CRSumConfig, build_crsum
from heads.dsn import DSNConfig, build_dsn
from heads.trainer import load_checkpoint, save_checkpoint
from pipeline.errors import InputError
from pipeline.synth_video import SynthVideoSpec, write_synthetic_video

VSUM = str(Path(sys.executable).parent / "vsum")
FEATURES = {"name": "googlenet", "shape": [16], "dtype": "float32", "l2_normalize": False,
            "store_spec": None, "sample": "every 15 frames"}


class _WritesMarker:
    """Unpickling this calls ``open(path, "w")``: the marker file appears if code ran."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def _malicious(path: Path, marker: Path) -> Path:
    """A checkpoint with every key a vsum checkpoint has, plus a payload."""
    model = build_dsn(DSNConfig(hidden=8), (16,))
    torch.save({"head": "dsn", "config": {"hidden": 8}, "feature_spec": FEATURES,
                "state_dict": model.state_dict(), "payload": _WritesMarker(str(marker))}, path)
    return path


def test_plain_checkpoint_round_trips_with_weights_only(tmp_path):
    torch.manual_seed(0)
    cfg = DSNConfig(hidden=8)
    model = build_dsn(cfg, (16,))
    path = save_checkpoint(tmp_path / "c.pt", model, "dsn", cfg, FEATURES, epoch=3, split=0)
    raw = torch.load(path, weights_only=True)  # nothing but tensors and plain values
    assert raw["epoch"] == 3 and raw["config"]["hidden"] == 8
    back, spec, cfg2, _ = load_checkpoint(path)
    assert spec.name == "dsn" and cfg2 == cfg
    x, mask = torch.randn(1, 5, 16), torch.ones(1, 5, dtype=torch.bool)
    model.eval()
    assert torch.equal(back(x, mask), model(x, mask))


def test_a_pickle_that_would_run_code_is_refused(tmp_path):
    marker = tmp_path / "ran"
    path = _malicious(tmp_path / "evil.pt", marker)
    with pytest.raises(InputError, match="refused"):
        load_checkpoint(path)
    assert not marker.exists()


def test_vsum_summarize_refuses_it_in_one_line_and_runs_nothing(tmp_path):
    marker = tmp_path / "ran"
    path = _malicious(tmp_path / "evil.pt", marker)
    video = tmp_path / "clip.mp4"
    write_synthetic_video(str(video), SynthVideoSpec(n_frames=20, width=64, height=48))
    env = {**os.environ, "VSUM_LOG_DIR": str(tmp_path / "logs")}
    env.pop("VSUM_DEBUG", None)
    proc = subprocess.run([VSUM, "summarize", str(video), "--checkpoint", str(path), "--out",
                           str(tmp_path / "s.mp4")], env=env, capture_output=True, text=True,
                          timeout=600)
    err = [x for x in proc.stderr.splitlines() if x.strip()]
    assert proc.returncode == 2, proc.stderr
    assert len(err) == 1 and "refused" in err[0] and "evil.pt" in err[0], proc.stderr
    assert not marker.exists()
    assert not (tmp_path / "s.mp4").exists() and not (tmp_path / "s.json").exists()


def test_crsum_cnn1_file_is_not_needed_to_reload(tmp_path):
    """CRSum(1, j) starts CNN1 from a file; the checkpoint holds the trained CNN1, so the file
    may be gone (and a path inside a checkpoint is never opened)."""
    torch.set_num_threads(1)
    small = CRSumConfig(cnn1_channels=(4, 8, 8), cnn2_channels=(4, 4, 8, 8, 8, 8, 16, 16),
                        lstm_hidden=8, mlp_hidden=8, num_workers=0)
    donor = tmp_path / "donor.pt"
    torch.save({"state_dict": build_crsum(small, (32, 32, 3)).state_dict()}, donor)
    cfg = replace(small, cnn1_weights=str(donor))
    model = build_crsum(cfg, (32, 32, 3)).eval()
    frames = {**FEATURES, "name": "frames", "shape": [32, 32, 3], "dtype": "uint8"}
    path = save_checkpoint(tmp_path / "crsum.pt", model, "crsum", cfg, frames)
    donor.unlink()
    back, _, cfg2, _ = load_checkpoint(path)
    assert cfg2.cnn1_weights == str(donor)  # recorded as trained
    x = torch.randint(0, 256, (1, 4, 32, 32, 3), dtype=torch.uint8)
    mask = torch.ones(1, 4, dtype=torch.bool)
    with torch.no_grad():
        assert torch.equal(back(x, mask), model(x, mask))


@pytest.mark.slow  # r3d_18: a 130 MB planted checkpoint written and read
def test_crsum_with_a_pretrained_trunk_reloads_without_those_weights(tmp_path, monkeypatch):
    """Trained where r3d_18's Kinetics weights were cached; reloaded where they are not: the
    trunk is built randomly, then the state dict gives back every trained weight."""
    from torchvision.models.video import r3d_18

    torch.set_num_threads(1)
    ref = r3d_18(weights=None)
    torch.nn.init.constant_(ref.stem[0].weight, 0.01)  # recognisable "pretrained" weights
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    torch.save(ref.state_dict(), tmp_path / "hub" / "checkpoints" / "r3d_18-b3b3357e.pth")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    cfg = CRSumConfig(cnn1_channels=(4, 8, 8), lstm_hidden=8, mlp_hidden=8, num_workers=0,
                      trunk="r3d_18", trunk_weights="pretrained")
    model = build_crsum(cfg, (32, 32, 3)).eval()
    frames = {**FEATURES, "name": "frames", "shape": [32, 32, 3], "dtype": "uint8"}
    path = save_checkpoint(tmp_path / "crsum.pt", model, "crsum", cfg, frames)
    del ref

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))  # the weights are gone
    back, _, cfg2, _ = load_checkpoint(path)
    assert cfg2 == cfg  # the config as trained, pretrained trunk and all
    assert torch.equal(back.cnn2.body[0][0].weight, model.cnn2.body[0][0].weight)
    x = torch.randint(0, 256, (1, 4, 32, 32, 3), dtype=torch.uint8)
    mask = torch.ones(1, 4, dtype=torch.bool)
    with torch.no_grad():
        assert torch.equal(back(x, mask), model(x, mask))
    # a trunk or CNN1 path written inside a checkpoint is never opened on reload
    elsewhere = replace(cfg, trunk_weights=str(tmp_path / "gone.pth"),
                        cnn1_weights=str(tmp_path / "gone.pt"))
    path2 = save_checkpoint(tmp_path / "crsum2.pt", model, "crsum", elsewhere, frames)
    back2, _, cfg3, _ = load_checkpoint(path2)
    assert cfg3.trunk_weights.endswith("gone.pth")
    assert torch.equal(back2.cnn2.body[0][0].weight, model.cnn2.body[0][0].weight)
