"""``vsum bench scale``: many tiny videos through the Ray extraction job vs a plain loop, one run.

With ``--latency-ms L``: the store's metadata on object storage L ms away instead (planning a
no-op re-run, ``vsum store info``, opening for training, each beside the one-by-one scan):
jobs/bench/scale_latency.py.

Corpus: N synthetic H.264 videos (default 1,000 × 8 frames × 32×32, generated once into
``--cache``). Extractor: ``frames`` at 16×16 by default (decode + copy: the cheapest real
extractor, so the job's own overhead dominates), or ``--extractor googlenet`` (random init).
No KTS. Measured in one process, one run:

- loop: ``extract_one`` over the N videos in a plain loop in this process (extractors built
  once beforehand, not timed) into a local store: ``loop_s``;
- fixed: the Ray job on W videos (W = workers), i.e. actor start-up, model build, planning, lease,
  final manifest save: ``fixed_s`` (Ray itself is started before, not timed);
- ray: the Ray job (``jobs.extract.run_extraction``, W actors) on the N videos: ``ray_s``;
  driver RSS sampled every 50 ms during it;
- rerun: the same job again (must skip every video): ``rerun_s``.

Per-video scheduling overhead, measured directly: the idle time of an actor between two
consecutive videos (``started`` of the next − ``finished`` of the previous, stamped inside the
actor), i.e. the driver round trip. Derived from wall times (what the job adds per video over
ideal W-way parallelism):
    gross = (ray_s − loop_s / W) / N            (fixed costs amortised in)
    net   = (ray_s − fixed_s − loop_s / W) / N  (fixed costs removed)
On a machine with fewer free cores than W + 1 (driver), "ideal W-way" is not reachable, so
both are upper bounds. Throughput ratio = loop_s / ray_s (> 1: the job is faster than the loop).
Correctness: manifest has N rows, N distinct ids, all complete; the store has exactly N complete
groups and no incomplete one; every array equals the loop's.
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from jobs.bench.common import RssSampler, write_json


def register(sub) -> None:
    p = sub.add_parser("scale", help="1,000 tiny videos: Ray job overhead, manifest, driver memory")
    p.add_argument("--videos", type=int, default=1000)
    p.add_argument("--frames", type=int, default=8, help="frames per video")
    p.add_argument("--size", type=int, default=32, help="width = height of the videos")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--extractor", default="frames", choices=["frames", "googlenet"])
    p.add_argument("--cache", default=os.path.expanduser("~/.cache/vsum/bench_scale"),
                   help="where the corpus is generated once")
    p.add_argument("--out", default=None, help="write the results as JSON here")
    p.add_argument("--latency-ms", type=float, default=None,
                   help="instead: metadata of --videos complete videos on S3 with this delay per "
                        "request, index vs one-by-one scan (jobs/bench/scale_latency.py)")
    p.add_argument("--scan-videos", type=int, default=None,
                   help="with --latency-ms: run the one-by-one scans on this many videos and scale")
    p.set_defaults(func=run_cli)


def make_corpus(cache: str, n: int, n_frames: int, size: int) -> list[str]:
    """N videos in ``cache/n{N}_f{F}_{S}px/`` (generated once; a DONE file marks completion)."""
    from pipeline.synth_video import SynthVideoSpec, write_synthetic_video

    folder = Path(cache) / f"n{n}_f{n_frames}_{size}px"
    paths = [str(folder / f"v{i:05d}.mp4") for i in range(n)]
    if (folder / "DONE").exists():
        return paths
    folder.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    for i, p in enumerate(paths):
        write_synthetic_video(p, SynthVideoSpec(n_frames=n_frames, width=size, height=size, fps=25, seed=i))
    (folder / "DONE").write_text(f"{n} videos in {time.perf_counter() - t0:.1f} s\n")
    return paths


def _configs(extractor: str):
    from jobs.extract_video import ExtractConfig
    from pipeline.decode import SampleRule
    from pipeline.features.base import ExtractorOptions

    cfg = ExtractConfig(features=(extractor,), sample=SampleRule(every=15), kts=None, batch_size=32)
    return cfg, ExtractorOptions(weights="random", device="cpu", frames_size=16)


def run_scale(n: int = 1000, n_frames: int = 8, size: int = 32, workers: int = 2,
              extractor: str = "frames", cache: str = "~/.cache/vsum/bench_scale") -> dict:
    import torch

    from jobs.extract import run_extraction
    from jobs.extract_video import extract_one
    from jobs.ray_env import init_ray
    from pipeline.features import build_extractors
    from stores.ids import unique_video_ids
    from stores.location import open_root
    from stores.manifest import read_manifest
    from stores.reader import FeatureStore

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    sources = make_corpus(os.path.expanduser(cache), n, n_frames, size)
    corpus_s = time.perf_counter() - t0
    cfg, opts = _configs(extractor)
    work = Path(tempfile.mkdtemp(prefix="vsum-bench-scale-"))
    try:
        # 1. the plain loop, in this process
        root = open_root(str(work / "loop.zarr"), "a")
        extractors = build_extractors([extractor], opts)
        ids = unique_video_ids(sources)
        t0 = time.perf_counter()
        loop_rows = [extract_one(s, ids[s], root, extractors, cfg) for s in sources]
        loop_s = time.perf_counter() - t0
        assert all(r["status"] == "complete" for r in loop_rows), "the loop failed on some video"

        # 2. fixed costs: the job on W videos; 3. the job on N videos; 4. the rerun
        init_ray()
        t0 = time.perf_counter()
        run_extraction(sources[:workers], str(work / "fixed.zarr"), cfg, opts, workers=workers, progress=False)
        fixed_s = time.perf_counter() - t0
        store = str(work / "ray.zarr")
        with RssSampler() as rss:
            t0 = time.perf_counter()
            res = run_extraction(sources, store, cfg, opts, workers=workers, progress=False)
            ray_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        rerun = run_extraction(sources, store, cfg, opts, workers=workers, progress=False)
        rerun_s = time.perf_counter() - t0

        # correctness
        man = read_manifest(store)
        fs, ref = FeatureStore(store), FeatureStore(str(work / "loop.zarr"))
        same = all(np.array_equal(fs.load(v, a), ref.load(v, a))
                   for v in ref.video_ids() for a in ("picks", "frames" if extractor == "frames"
                                                      else f"features/{extractor}"))
        rss_mb = [r / 2**20 for _, r in rss.samples]
        timing = _actor_timing(res.rows)
        return {
            "videos": n, "frames_per_video": n_frames, "size": size, "workers": workers,
            "extractor": extractor, "cpu_count": os.cpu_count(), "corpus_s": corpus_s,
            "loop_s": loop_s, "fixed_s": fixed_s, "ray_s": ray_s, "rerun_s": rerun_s,
            "loop_ms_per_video": 1e3 * loop_s / n, "ray_ms_per_video": 1e3 * ray_s / n,
            "overhead_gross_ms": 1e3 * (ray_s - loop_s / workers) / n,
            "overhead_net_ms": 1e3 * (ray_s - fixed_s - loop_s / workers) / n,
            "throughput_ratio": loop_s / ray_s, **timing,
            "manifest_rows": len(man), "manifest_distinct_ids": int(man["video_id"].nunique()),
            "manifest_complete": int((man["status"] == "complete").sum()),
            "store_complete": len(fs.video_ids()), "store_groups": len(fs.all_video_ids()),
            "job_done": res.n_done, "job_failed": res.n_failed, "rerun_skipped": rerun.n_skipped,
            "rerun_done": rerun.n_done, "arrays_equal_loop": bool(same),
            "driver_rss_mb": {"start": rss_mb[0], "at_10pct": rss.at(0.1) / 2**20,
                              "at_50pct": rss.at(0.5) / 2**20, "at_90pct": rss.at(0.9) / 2**20,
                              "peak": max(rss_mb), "samples": len(rss_mb)},
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _actor_timing(rows: list[dict]) -> dict:
    """From the rows' ``started``/``finished`` stamps (set inside the actor): the time an actor
    sits idle between two consecutive videos (the driver round trip: pure scheduling overhead),
    and the in-actor time per video."""
    by_worker: dict[str, list[tuple[float, float]]] = {}
    for r in rows:
        by_worker.setdefault(r["worker"], []).append((r["started"], r["finished"]))
    gaps = [b[0] - a[1] for spans in by_worker.values() for a, b in zip(sorted(spans), sorted(spans)[1:])]
    return {"gap_ms_median": 1e3 * float(np.median(gaps)) if gaps else float("nan"),
            "gap_ms_mean": 1e3 * float(np.mean(gaps)) if gaps else float("nan"),
            "actor_ms_per_video": 1e3 * float(np.mean([r["finished"] - r["started"] for r in rows]))}


def format_table(r: dict) -> str:
    m = r["driver_rss_mb"]
    ok = (r["manifest_rows"] == r["manifest_distinct_ids"] == r["manifest_complete"] == r["videos"]
          == r["store_complete"] == r["store_groups"] and r["arrays_equal_loop"]
          and r["rerun_skipped"] == r["videos"] and r["rerun_done"] == 0)
    lines = [
        (f"vsum bench scale: {r['videos']} videos × {r['frames_per_video']} frames {r['size']}×{r['size']}, "
        f"extractor '{r['extractor']}', {r['workers']} Ray workers, {r['cpu_count']} CPUs"),
        "",
        "| measure | value |",
        "|---|---|",
        f"| plain loop, one process (extract_one × N) | {r['loop_s']:.1f} s ({r['loop_ms_per_video']:.1f} ms/video) |",
        f"| Ray job, fixed costs (job on {r['workers']} videos) | {r['fixed_s']:.1f} s |",
        f"| Ray job, N videos | {r['ray_s']:.1f} s ({r['ray_ms_per_video']:.1f} ms/video) |",
        f"| rerun (every video skipped) | {r['rerun_s']:.1f} s |",
        f"| overhead per video, gross = (ray − loop/W)/N | {r['overhead_gross_ms']:.1f} ms |",
        f"| overhead per video, net = (ray − fixed − loop/W)/N | {r['overhead_net_ms']:.1f} ms |",
        f"| throughput ratio loop_s / ray_s | {r['throughput_ratio']:.2f}× |",
        (f"| actor idle between two videos (driver round trip), median / mean | {r['gap_ms_median']:.1f} / "
        f"{r['gap_ms_mean']:.1f} ms |"),
        (f"| time per video inside an actor (vs the loop's {r['loop_ms_per_video']:.1f} ms) | "
        f"{r['actor_ms_per_video']:.1f} ms |"),
        (f"| manifest rows / distinct / complete | {r['manifest_rows']} / {r['manifest_distinct_ids']} / "
        f"{r['manifest_complete']} |"),
        (f"| store groups / complete; arrays equal to the loop's | {r['store_groups']} / {r['store_complete']}; "
        f"{r['arrays_equal_loop']} |"),
        (f"| driver RSS MB: start, 10 %, 50 %, 90 %, peak | {m['start']:.0f}, {m['at_10pct']:.0f}, "
        f"{m['at_50pct']:.0f}, {m['at_90pct']:.0f}, {m['peak']:.0f} |"),
        "",
        (f"target ≤ 50 ms/video: scheduling gap {'met' if r['gap_ms_mean'] <= 50 else 'NOT met'}, "
         f"derived net {'met' if r['overhead_net_ms'] <= 50 else 'NOT met'}; driver RSS growth 10 %→90 %: "
         f"{m['at_90pct'] - m['at_10pct']:+.0f} MB; correctness: {'OK' if ok else 'FAILED'}"),
    ]
    return "\n".join(lines)


def run_cli(args) -> int:
    if args.latency_ms is not None:
        from jobs.bench import scale_latency

        r = scale_latency.run_latency(args.videos, args.latency_ms, args.scan_videos, args.cache)
        print(scale_latency.format_table(r))
    else:
        r = run_scale(args.videos, args.frames, args.size, args.workers, args.extractor, args.cache)
        print(format_table(r))
    write_json(args.out, r)
    sys.stdout.flush()
    return 0
