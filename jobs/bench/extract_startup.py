"""``vsum bench extract --startup``: what ``vsum extract`` costs before and around the work.

Three timings of the real command (subprocesses, measured in one run):
  baseline    ``vsum extract --help``: the interpreter and the CLI's own imports;
  one video   a fresh store, one tiny video (64×48, 40 frames): weights resolved, Ray started,
              one actor, the models built, the video extracted, the store written;
  no-op       the same command again on the now complete store (median of 3 runs):
              planned from the store and the weights' identity, no torch, no Ray.
Target: the no-op ≤ 5 s wall on a 2-core machine. The machine's load is printed with them.
"""
from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPEATS = 3  # no-op runs; the median is reported

def run_startup_bench(args) -> int:
    from jobs.bench.common import machine_load, write_json
    from pipeline.synth_video import SynthVideoSpec, write_synthetic_video

    vsum = str(Path(sys.executable).parent / "vsum")
    weights = _weights()
    work = Path(tempfile.mkdtemp(prefix="vsum-startup-"))
    video = work / "one.mp4"
    write_synthetic_video(str(video), SynthVideoSpec(n_frames=40, width=64, height=48, seed=0))
    features = args.features or "googlenet"
    cmd = [vsum, "extract", str(video), "--store", str(work / "s.zarr"), "--features", features,
           "--weights", weights, "--workers", "1", "--batch-size", "8"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    load_before = machine_load()
    try:
        baseline = _wall([vsum, "extract", "--help"], env)
        one_video = _wall(cmd, env)
        no_ops = [_wall(cmd, env) for _ in range(REPEATS)]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    figures = {"features": features, "weights": weights, "baseline_help_s": baseline,
               "one_video_s": one_video, "no_op_s": no_ops, "no_op_median_s": statistics.median(no_ops),
               "load_before": load_before, "load_after": machine_load()}
    print(f"\nvsum bench extract --startup — {features}, --weights {weights}; "
          f"load {load_before['load_1min']} -> {figures['load_after']['load_1min']} on {load_before['cpus']} CPUs")
    print(f"  baseline: vsum extract --help              {baseline:6.2f} s")
    print(f"  one-video run (fresh store, Ray, 1 actor)  {one_video:6.2f} s")
    print(f"  no-op re-run (median of {len(no_ops)})             {figures['no_op_median_s']:6.2f} s  "
          f"(target <= 5 s; {figures['no_op_median_s'] - baseline:.2f} s above the baseline)")
    write_json(args.out, figures)
    print(f"wrote {args.out}")
    return 0


def _weights() -> str:
    """pretrained when torchvision's GoogLeNet file is cached (hashing it is part of the
    no-op's work), else random (nothing here can download it)."""
    from pipeline.features.catalog import CHECKPOINTS
    from pipeline.features.weights import torch_hub_checkpoint

    return "pretrained" if torch_hub_checkpoint(CHECKPOINTS["googlenet"].file).is_file() else "random"


def _wall(cmd: list[str], env: dict) -> float:
    t = time.perf_counter()
    res = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:2])} exited with {res.returncode}: {res.stderr.strip()[-300:]}")
    return wall
