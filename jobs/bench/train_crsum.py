"""CRSum's data path and memory: steps/s, the data path's share of a training step, and peak
memory on a long video with and without windows.

``vsum bench train`` (owned by the trainer) calls ``crsum_benchmark``; run alone:

    python -m jobs.bench.train_crsum [--size 112] [--steps 6] [--memory-steps 1200] [--out J]

1. Throughput: a synthetic frame store (``stores/synthetic_frames.py``) at ``size``×``size``,
   batches of ``batch_videos`` windows of ``window_steps`` steps, the paper's CRSum. The same
   steps run with the data read in the training process (``workers=0``, the naive path) and
   through worker processes (``workers=2``); "data share" is the time the step waited for its
   batch over the whole step. The first step (worker start-up, allocator warm-up) is not timed.
2. Memory: one video of ``memory_steps`` steps (10 minutes at 2 fps = 1200), one optimiser
   step per window (``memory_window`` steps, also with gradient checkpointing; the first ``memory_max_windows`` of them, since
   every full window has the same shapes) vs one step on the whole video. Each mode runs in a
   fresh spawned process; peak = its RSS sampled every 5 ms during the steps (``jobs.bench.common.RssSampler``), reported also
   above its RSS once the model was built. Numbers are for THIS machine, its load and thread count.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path

__all__ = ["crsum_benchmark"]


def _throughput(store: str, ids: list[str], cfg, workers: int, steps: int) -> dict:
    import torch

    from heads.crsum import build_crsum, crsum_loss, make_loader, make_optimizer

    torch.manual_seed(0)
    model = build_crsum(cfg, (cfg_size(store, ids[0]), cfg_size(store, ids[0]), 3))
    opt, _ = make_optimizer(model, cfg)
    loader = make_loader(store, ids, replace(cfg, num_workers=workers), train=True)
    t_wait = t_total = 0.0
    n = frames = 0
    it = iter(loader)
    while n < steps + 1:
        t0 = time.perf_counter()
        try:
            batch = next(it)
        except StopIteration:
            it = iter(loader)
            continue
        t1 = time.perf_counter()
        loss, _ = crsum_loss(model, batch, cfg, {})
        opt.zero_grad()
        loss.backward()
        opt.step()
        t2 = time.perf_counter()
        if n > 0:  # the first step pays for worker start-up
            t_wait += t1 - t0
            t_total += t2 - t0
            frames += int(batch["mask"].sum())
        n += 1
    del it, loader
    return {"workers": workers, "steps": steps, "sec_total": t_total, "sec_data": t_wait,
            "data_share": t_wait / t_total, "steps_per_s": steps / t_total,
            "frames_per_s": frames / t_total}


def cfg_size(store: str, vid: str) -> int:
    from stores.reader import FeatureStore

    return int(FeatureStore(store).array(vid, "frames").shape[1])


def _memory_child(store: str, vid: str, cfg, threads: int, max_windows: int | None, q) -> None:
    """In a fresh process: one optimiser step per window (the first ``max_windows``)."""
    import torch

    from heads.crsum import build_crsum, crsum_loss, make_loader, make_optimizer

    from jobs.bench.common import RssSampler

    torch.set_num_threads(threads)
    size = cfg_size(store, vid)
    model = build_crsum(cfg, (size, size, 3))
    opt, _ = make_optimizer(model, cfg)
    t0 = time.perf_counter()
    n = 0
    with RssSampler(period=0.005) as mem:  # from once the model is built
        for batch in make_loader(store, [vid], cfg, train=False):
            loss, _ = crsum_loss(model, batch, cfg, {})
            opt.zero_grad()
            loss.backward()
            opt.step()
            n += 1
            if max_windows and n >= max_windows:
                break
    start, peak = mem.start_mb, mem.peak_mb
    q.put({"start_rss_mb": start, "peak_rss_mb": peak, "peak_above_start_mb": peak - start,
           "windows": n, "sec": time.perf_counter() - t0})


def _memory(store: str, vid: str, cfg, threads: int, max_windows: int | None = None) -> dict:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_memory_child, args=(store, vid, cfg, threads, max_windows, q))
    p.start()
    p.join()
    if p.exitcode != 0:
        return {"error": f"child exited with {p.exitcode} (out of memory?)"}
    return q.get()


def crsum_benchmark(size: int = 112, n_videos: int = 8, steps_per_video: int = 64,
                    window_steps: int = 16, batch_videos: int = 8, steps: int = 6,
                    workers: tuple[int, ...] = (0, 2), threads: int | None = None,
                    memory_steps: int = 1200, memory_window: int = 64,
                    memory_max_windows: int | None = 3, overrides: dict | None = None, workdir: str | None = None) -> dict:
    """→ {"throughput": [row per workers], "memory": {"windowed": …, "whole": …}, "config"}.

    overrides: CRSumConfig fields (e.g. {"trunk": "r3d_18"}); memory_steps=0 skips part 2;
    memory_max_windows: windowed steps actually run (every full window has the same shapes, so
    the peak is reached in the first; None runs them all)."""
    import torch

    from heads.crsum import CRSumConfig
    from jobs.bench.common import machine_load
    from stores.synthetic_frames import SyntheticFramesConfig, make_synthetic_frame_store

    threads = threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    tmp = tempfile.TemporaryDirectory(dir=workdir)
    root = Path(tmp.name)
    cfg = replace(CRSumConfig(), batch_videos=batch_videos, window_steps=window_steps,
                  **(overrides or {}))
    out: dict = {"config": {"size": size, "n_videos": n_videos, "steps_per_video": steps_per_video,
                            "window_steps": window_steps, "batch_videos": batch_videos,
                            "threads": threads, "cpu_count": os.cpu_count(),
                            "trunk": cfg.trunk, "norm": cfg.norm,
                            "load_avg_1m": machine_load()["load_1min"]}}
    store = str(root / "bench.zarr")
    ids = make_synthetic_frame_store(store, SyntheticFramesConfig(
        n_videos=n_videos, min_steps=steps_per_video, max_steps=steps_per_video, size=size))
    out["throughput"] = [_throughput(store, ids, cfg, w, steps) for w in workers]
    if memory_steps:
        long_store = str(root / "long.zarr")
        (vid,) = make_synthetic_frame_store(long_store, SyntheticFramesConfig(
            n_videos=1, min_steps=memory_steps, max_steps=memory_steps, size=size, seed=1))
        mcfg = replace(cfg, num_workers=0, batch_videos=1)
        out["memory"] = {
            "steps": memory_steps,
            "windowed": {"window_steps": memory_window,
                         **_memory(long_store, vid, replace(mcfg, window_steps=memory_window),
                                   threads, memory_max_windows)},
            "windowed_ckpt": {"window_steps": memory_window, "grad_checkpoint": True,
                              **_memory(long_store, vid, replace(mcfg, window_steps=memory_window,
                                                                 grad_checkpoint=True),
                                        threads, memory_max_windows)},
            "whole": {"window_steps": None, **_memory(long_store, vid, replace(mcfg, window_steps=0), threads)},
        }
    tmp.cleanup()
    return out


def print_table(r: dict) -> None:
    c = r["config"]
    print(f"CRSum data path: {c['size']}x{c['size']} frames, batch {c['batch_videos']} windows x "
          f"{c['window_steps']} steps, trunk {c['trunk']}, {c['threads']} threads, "
          f"{c['cpu_count']} cores, load {c['load_avg_1m']:.1f}")
    print("| data path | steps | steps/s | frames/s | data wait s | step s | data share |")
    print("|---|---|---|---|---|---|---|")
    for t in r["throughput"]:
        name = "in-process (workers=0)" if t["workers"] == 0 else f"{t['workers']} worker processes"
        print(f"| {name} | {t['steps']} | {t['steps_per_s']:.3f} | {t['frames_per_s']:.1f} | "
              f"{t['sec_data']:.2f} | {t['sec_total']:.2f} | {100 * t['data_share']:.1f}% |")
    rows = {t["workers"]: t for t in r["throughput"]}
    if 0 in rows and len(rows) > 1:
        w = max(rows)
        print(f"workers={w} / workers=0: steps/s x{rows[w]['steps_per_s'] / rows[0]['steps_per_s']:.2f}; "
              f"data share target <= 10%: {'met' if rows[w]['data_share'] <= 0.10 else 'NOT met'}")
        print("(steps/s between the two rows also moves with other load on the machine; the data "
              "share is measured within each row)")
    m = r.get("memory")
    if m:
        print(f"\nPeak memory, one {m['steps']}-step video ({m['steps'] / 120:.1f} min at 2 fps), "
              f"one optimiser step per window:")
        print("| mode | windows | peak RSS MB | above model MB | s |")
        print("|---|---|---|---|---|")
        for k in ("windowed", "windowed_ckpt", "whole"):
            if k not in m:
                continue
            e = m[k]
            if "error" in e:
                print(f"| {k} | - | {e['error']} | | |")
                continue
            label = f"windows of {e['window_steps']}" if e["window_steps"] else "whole video"
            label += " + grad checkpointing" if e.get("grad_checkpoint") else ""
            print(f"| {label} | {e['windows']} | {e['peak_rss_mb']:.0f} | "
                  f"{e['peak_above_start_mb']:.0f} | {e['sec']:.1f} |")
        if "error" not in m["windowed"] and "error" not in m["whole"]:
            print(f"whole / windowed (above model): x{m['whole']['peak_above_start_mb'] / max(1.0, m['windowed']['peak_above_start_mb']):.1f}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=112)
    ap.add_argument("--videos", type=int, default=8)
    ap.add_argument("--window-steps", type=int, default=16)
    ap.add_argument("--batch-videos", type=int, default=8)
    ap.add_argument("--steps", type=int, default=6, help="timed optimiser steps per data path")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--memory-steps", type=int, default=1200, help="0 skips the memory part")
    ap.add_argument("--memory-window", type=int, default=64)
    ap.add_argument("--memory-max-windows", type=int, default=3, help="0 runs every window")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="CRSumConfig override (e.g. trunk=r3d_18)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    from heads.config import parse_set_options, resolve_config
    from heads.crsum import CRSumConfig
    from jobs.bench.common import write_json

    sets = parse_set_options(args.set)
    resolved = resolve_config(CRSumConfig, sets)
    overrides = {k: getattr(resolved, k) for k in sets}
    r = crsum_benchmark(size=args.size, n_videos=args.videos, window_steps=args.window_steps,
                        batch_videos=args.batch_videos, steps=args.steps, threads=args.threads,
                        memory_steps=args.memory_steps, memory_window=args.memory_window,
                        memory_max_windows=args.memory_max_windows or None, overrides=overrides)
    print_table(r)
    write_json(args.out, r)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
