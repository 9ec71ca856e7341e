"""`vsum demo`: the weights decision said in one line, and (slow) the whole demo, scaled down."""
import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from jobs.demo import extraction_args, weights_choice
from pipeline.features.catalog import pretrained_checkpoint


def test_weights_random_only_when_the_cache_lacks_the_files(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    weights, line = weights_choice(None, "googlenet,st3d")
    folder = tmp_path / "torch" / "hub" / "checkpoints"
    assert weights == "random"
    assert "googlenet-1378be20.pth" in line and "r3d_18-b3b3357e.pth" in line and str(folder) in line
    assert "--weights random" in line and "\n" not in line
    args = argparse.Namespace(features="googlenet,st3d", fps=2.0, clip_len=2, frames=64)
    assert "--kts-center" in extraction_args(args, weights)
    folder.mkdir(parents=True)
    for name in (pretrained_checkpoint(n).file for n in ("googlenet", "st3d")):
        (folder / name).write_bytes(b"planted")
    weights, line = weights_choice(None, "googlenet,st3d")
    assert weights == "pretrained" and "found" in line
    opts = extraction_args(args, weights)
    assert opts[opts.index("--weights") + 1] == "pretrained" and "--kts-center" not in opts
    assert weights_choice("random", "googlenet,st3d")[0] == "random"  # asked for explicitly


@pytest.mark.slow
def test_demo_end_to_end_scaled_down(tmp_path):
    """4 synthetic videos, 2 epochs: every stage runs and the demo ends with its two paths."""
    out = tmp_path / "demo"
    env_home = tmp_path / "torch"  # an empty cache: the demo must choose --weights random
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "vsum"), "demo", "--out", str(out), "--synthetic", "4",
         "--epochs", "2"],
        capture_output=True, text=True, timeout=3000, env={**__import__("os").environ,
                                                            "TORCH_HOME": str(env_home)})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert any(line.startswith("weights: ") and "--weights random" in line for line in lines[:3])
    assert lines[-2] == f"report:        {out / 'report' / 'report.html'}"
    assert lines[-1].startswith("summary video: ") and lines[-1].endswith(".mp4")
    assert Path(lines[-1].split(": ", 1)[1].strip()).stat().st_size > 1000
    html = (out / "report" / "report.html").read_text()
    assert "RANDOM INIT" in html and "--weights random" in html
    for method in ("dsn_sup", "csnet_sup", "unet3d_rl_sup", "human-loo", "random", "uniform"):
        assert f"<td>{method}</td>" in html
    assert html.count('class="video"') == 4  # every annotated test video has its section
    assert (out / "report" / "report.html").stat().st_size < 5 * 1024**2
