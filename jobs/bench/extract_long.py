"""Row (d) of ``vsum bench extract``: the memory of extracting one long video, whole job.

A low-resolution synthetic H.264 video of ``minutes`` (160×120, 30 fps, generated once per
workdir: fast to encode and decode, while the models see the same 224² / 112² inputs as from
any source) goes through ``vsum extract`` as users run it, in a fresh process: the driver, the
local Ray it starts and its workers are sampled together every ``period`` s. Reported: the
peak of their summed RSS (an upper bound: shared libraries count once per process) and of
their summed PSS (shared pages split: the job's real share), and the PSS at 10 / 50 / 90 % of
the run, which stays flat when memory does not grow with the video's length.
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path


def long_video(workdir: Path, minutes: float, size: tuple[int, int] = (160, 120)) -> Path:
    from pipeline.synth_video import SynthVideoSpec, write_synthetic_video

    w, h = size
    path = workdir / f"long_{minutes:g}min_{w}x{h}.mp4"
    if not path.exists():
        workdir.mkdir(parents=True, exist_ok=True)
        n = int(minutes * 60 * 30)
        print(f"generating {path} ({n} frames)…", flush=True)
        t = time.perf_counter()
        tmp = path.with_suffix(".tmp.mp4")
        write_synthetic_video(str(tmp), SynthVideoSpec(n_frames=n, width=w, height=h, fps=30,
                                                       shot_lengths=None, crf=30))
        tmp.rename(path)
        print(f"  {time.perf_counter() - t:.0f} s", flush=True)
    return path


def job_memory(video: Path, features: str, frames: int | None, period: float = 0.2) -> dict:
    """Run ``vsum extract`` on ``video`` in a fresh process; whole-job memory and wall time."""
    from jobs.bench.common import RssSampler
    from jobs.bench.common import vsum_command

    work = Path(tempfile.mkdtemp(prefix="vsum-bench-long-"))
    cmd = [*vsum_command(), "extract", str(video), "--store", str(work / "s.zarr"),
           "--features", features, "--weights", "random"]
    cmd += ["--frames", str(frames)] if frames else []
    proc = None
    try:
        with open(work / "extract.log", "wb") as log:
            t = time.perf_counter()
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
            with RssSampler(period=period, pid=proc.pid, children=True, pss=True) as mem:
                code = proc.wait()
            wall = time.perf_counter() - t
        if code != 0:
            tail = (work / "extract.log").read_text(errors="replace").strip().splitlines()[-3:]
            raise RuntimeError(f"vsum extract exited {code}: {' | '.join(tail)} (log {work})")
        shutil.rmtree(work, ignore_errors=True)
    finally:
        if proc is not None and proc.poll() is None:  # interrupted: do not leave the job running
            proc.kill()
    mb = 2**20
    return {"features": features, "frames": frames, "wall_s": wall,
            "peak_rss_sum_mb": mem.peak_mb, "peak_pss_mb": mem.peak_pss_mb,
            "pss_at_10pct_mb": mem.at(0.1, pss=True) / mb, "pss_at_50pct_mb": mem.at(0.5, pss=True) / mb,
            "pss_at_90pct_mb": mem.at(0.9, pss=True) / mb, "samples": len(mem.samples)}


def long_rows(workdir: Path, minutes: float, features: str, frames: int | None) -> dict:
    video = long_video(workdir, minutes)
    print(f"extracting {video.name} ({features}{f', frames {frames}' if frames else ''})…", flush=True)
    return {"minutes": minutes, "video": str(video), **job_memory(video, features, frames)}


def long_table(r: dict) -> list[tuple[str, str, str]]:
    what = r["features"] + (f"+frames{r['frames']}" if r["frames"] else "")
    return [(f"(d) {r['minutes']:g}-min video, {what}: peak PSS", f"{r['peak_pss_mb']:.0f} MB",
             f"whole job (driver+Ray+workers), target < 2048 MB; summed RSS {r['peak_rss_sum_mb']:.0f} MB"),
            ("(d)   PSS at 10 / 50 / 90 % of the run",
             f"{r['pss_at_10pct_mb']:.0f} / {r['pss_at_50pct_mb']:.0f} / {r['pss_at_90pct_mb']:.0f} MB",
             f"wall {r['wall_s']:.0f} s")]
