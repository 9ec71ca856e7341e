"""Epoch time and peak memory of one head on a feature store, through the HeadSpec contract only
(build, loss, make_optimizer), so 3DST-UNet-RL and DSN are measured by the same loop.

``vsum bench train --unet3d`` calls ``head_epoch_in_fresh_process``; run alone:

    python -m jobs.bench.train_unet3d --store S.zarr [--videos 10] [--heads unet3d_rl,dsn]

Peak memory is the process RSS, sampled every 5 ms by a thread during the epoch (torch's CPU
allocations are invisible to tracemalloc; ``jobs.bench.common.RssSampler``), each head in its own
fresh process so one head's allocations never inflate another's peak. Numbers are for THIS
machine and thread count.
"""
from __future__ import annotations

import argparse
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace

__all__ = ["head_epoch_benchmark", "head_epoch_in_fresh_process", "unet3d_epoch_benchmark"]


def head_epoch_benchmark(store, head: str, features: str | None = None,
                         video_ids: list[str] | None = None, max_videos: int | None = None,
                         overrides: dict | None = None, seed: int = 0,
                         threads: int | None = None) -> dict:
    """One training epoch (one optimiser step per video, features read from the store inside
    the timed loop, as a real epoch does) → {"head", "features", "n_videos", "mean_steps",
    "epoch_s" (wall), "cpu_s" (process CPU time: on a shared machine, with threads=1, the
    better estimate of an idle machine's epoch), "s_per_video", "peak_rss_mb", "start_rss_mb"}.

    store: a path or a ``FeatureStore``; overrides: config fields (e.g. {"lr": 1e-3})."""
    import numpy as np
    import torch

    from heads.base import get_head
    from jobs.bench.common import RssSampler
    from stores.reader import FeatureStore

    if threads:
        torch.set_num_threads(threads)
    fs = store if isinstance(store, FeatureStore) else FeatureStore(str(store))
    spec = get_head(head)
    features = features or spec.default_features
    ids = list(video_ids or fs.video_ids())[: max_videos or None]
    if not ids:
        raise ValueError(f"{fs.path}: no complete videos to benchmark")
    cfg = replace(spec.config_cls(), **(overrides or {}))
    torch.manual_seed(seed)
    shape = tuple(fs.array(ids[0], f"features/{features}").shape[1:])
    model = spec.build(cfg, shape)
    opt, _ = spec.make_optimizer(model, cfg)
    model.train()
    state: dict = {}
    steps = []
    with RssSampler(period=0.005) as mem:
        t0, c0 = time.perf_counter(), time.process_time()
        for vid in ids:
            x = torch.from_numpy(np.asarray(fs.features(vid, features), dtype=np.float32))[None]
            batch = {"x": x, "mask": torch.ones(x.shape[:2], dtype=torch.bool), "video_id": [vid]}
            if fs.has(vid, "labels/gtscore"):
                batch["gtscore"] = torch.from_numpy(fs.load(vid, "labels/gtscore"))[None].float()
            opt.zero_grad()
            loss, _ = spec.loss(model, batch, cfg, state)
            loss.backward()
            opt.step()
            steps.append(x.shape[1])
        epoch_s, cpu_s = time.perf_counter() - t0, time.process_time() - c0
    return {"head": head, "features": features, "feature_shape": list(shape),
            "n_videos": len(ids), "mean_steps": float(np.mean(steps)), "epoch_s": epoch_s,
            "cpu_s": cpu_s, "s_per_video": epoch_s / len(ids), "peak_rss_mb": mem.peak_mb,
            "start_rss_mb": mem.start_mb, "threads": torch.get_num_threads()}


def head_epoch_in_fresh_process(store, head: str, features: str | None = None, **kwargs) -> dict:
    """``head_epoch_benchmark`` in a spawned process of its own (its peak RSS is its alone)."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as ex:
        return ex.submit(head_epoch_benchmark, str(store), head, features, **kwargs).result()


def unet3d_epoch_benchmark(store, features: str = "st3d", **kwargs) -> dict:
    """``head_epoch_benchmark`` for 3DST-UNet-RL → dict(epoch_s, peak_rss_mb, …)."""
    return head_epoch_benchmark(store, "unet3d_rl", features, **kwargs)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", required=True)
    ap.add_argument("--features", default="st3d")
    ap.add_argument("--heads", default="unet3d_rl,dsn")
    ap.add_argument("--videos", type=int, default=None, help="first N videos (default: all)")
    ap.add_argument("--scale-to", type=int, default=None,
                    help="also print epoch_s scaled linearly to this many videos")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--out", default=None, help="write the rows as JSON here")
    args = ap.parse_args(argv)
    from jobs.bench.common import machine_load, write_json

    rows = []
    for head in args.heads.split(","):
        r = head_epoch_in_fresh_process(args.store, head, args.features, max_videos=args.videos,
                                        threads=args.threads)
        if args.scale_to:
            r["epoch_s_scaled"] = r["s_per_video"] * args.scale_to
            r["scaled_to_videos"] = args.scale_to
        rows.append(r)
    scaled_head = f" epoch s @{args.scale_to} videos |" if args.scale_to else ""
    print(f"| head | features | videos | mean T | epoch s | CPU s | s/video |{scaled_head}"
          " peak RSS MB | RSS before MB |")
    print("|---|---|---|---|---|---|---|" + ("---|" if args.scale_to else "") + "---|---|")
    for r in rows:
        scaled = f" {r['epoch_s_scaled']:.1f} |" if args.scale_to else ""
        print(f"| {r['head']} | {r['features']} {tuple(r['feature_shape'])} | {r['n_videos']} | "
              f"{r['mean_steps']:.0f} | {r['epoch_s']:.2f} | {r['cpu_s']:.2f} | "
              f"{r['s_per_video']:.3f} |{scaled} "
              f"{r['peak_rss_mb']:.0f} | {r['start_rss_mb']:.0f} |")
    if len(rows) > 1:
        base = rows[-1]
        for r in rows[:-1]:
            print(f"{r['head']} / {base['head']}: epoch time ×{r['epoch_s'] / base['epoch_s']:.2f}"
                  f" (wall), ×{r['cpu_s'] / base['cpu_s']:.2f} (CPU)")
    write_json(args.out, {"rows": rows, "machine": machine_load()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
