"""``vsum bench train``: a mistyped head is an error, never a silent stand-in."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_unknown_head_is_a_usage_error(tmp_path):
    proc = subprocess.run([str(Path(sys.executable).parent / "vsum"), "bench", "train", "--head", "dns",
                           "--work", str(tmp_path), "--videos", "2", "--skip-parallel"],
                          capture_output=True, text=True, timeout=580)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "'dns'" in lines[0] and "dsn" in lines[0], proc.stderr
    assert not list(tmp_path.glob("*.zarr"))  # refused before any work


def test_train_commands_both_start_as_vsum_train(tmp_path):
    from jobs.bench.train import _train_command

    seq = _train_command("dsn", "s.zarr", 5, 1, 2, {"lr": 0.001}, tmp_path / "seq", ["--no-ray"])
    ray = _train_command("dsn", "s.zarr", 5, 1, 2, {"lr": 0.001}, tmp_path / "ray", ["--num-cpus", "2"])
    assert seq[:2] == ray[:2] and Path(seq[0]).name == "vsum" and seq[1] == "train"
    assert seq[seq.index("--seeds") + 1] == "0,1" and "--no-eval" in seq and "lr=0.001" in seq
