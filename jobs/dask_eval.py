"""Dask plumbing shared by ``vsum evaluate`` and ``vsum baselines``: a client (embedded local
cluster, ``tcp://…`` scheduler, or the caller's), the per-video map on the workers, and the
group-by (in this process: the gathered table is small) that turns the per-video long table
into the summary.
"""
from __future__ import annotations

import time

import numpy as np

from jobs.eval_tasks import GROUP_KEYS, ROW_KEYS

LONG_COLUMNS = ROW_KEYS + ["metric", "value"]


def run_partition(tasks: list, fn, cfg):
    """One Dask task = many videos: ``fn`` over each, rows leaving as ONE pandas frame (columns
    pickle far faster than thousands of dicts) -> (frame, error lines, seconds inside)."""
    import pandas as pd

    t = time.perf_counter()
    rows, errors = [], []
    for task in tasks:
        r, e = fn(task, cfg)
        rows += r
        errors += e
    return pd.DataFrame(rows, columns=LONG_COLUMNS), errors, time.perf_counter() - t


def partition_count(n_tasks: int, n_workers: int, per_worker: int = 4) -> int:
    """How many Dask tasks to cut ``n_tasks`` videos into: ``per_worker`` per worker, so that
    the per-task cost (scheduling, a round trip, pickling; ~1–3 ms) stays far below 5 % of a
    task's time at any corpus size worth a cluster, while equal-sized tasks still balance
    across the workers (each gets ``per_worker``) and a slow one delays the end by at most
    1/``per_worker`` of a worker's share. Never more tasks than videos."""
    return max(1, min(n_tasks, n_workers * per_worker))


# Batch jobs: nobody reads the workers' statistical profiler (a 10 ms sampling thread each),
# and workers live for one command, so they keep glibc's own malloc trimming: distributed's
# default MALLOC_TRIM_THRESHOLD_=65536 returns memory to the OS on every large free, and cost
# 15-40 % more CPU per video in the workers (`vsum bench eval`, 18,100 videos: 1.00 vs 0.87 ms
# per video quiet, 1.34 vs 0.95 ms loaded). The BLAS thread limits are distributed's defaults.
QUIET_WORKERS = {"distributed.worker.profile.enabled": False,
                 "distributed.nanny.pre-spawn-environ": {"OMP_NUM_THREADS": 1, "MKL_NUM_THREADS": 1,
                                                         "OPENBLAS_NUM_THREADS": 1}}


def get_client(scheduler: str | None = None, workers: int = 2, client=None):
    """(client, owned): an existing client, ``tcp://…``, or a fresh local cluster."""
    if client is not None:
        return client, False
    import dask
    from distributed import Client, LocalCluster

    if scheduler:
        return Client(scheduler), True
    with dask.config.set(QUIET_WORKERS):
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, dashboard_address=None,
                               processes=True)
    return Client(cluster), True


def close_client(client) -> None:
    cluster = getattr(client, "cluster", None)
    client.close()
    if cluster is not None:
        cluster.close()


def run_per_video(client, tasks: list[dict], fn, cfg, chunks_per_worker: int = 4,
                  stats: dict | None = None):
    """Map ``fn(task, cfg) -> (rows, errors)`` over tasks on Dask, many videos per Dask task
    (``partition_count``); -> (pandas long frame, errors). ``stats``, when given, receives
    {"n_tasks", "task_s": seconds inside each task} (to measure the per-task overhead)."""
    import pandas as pd

    n_workers = max(1, len(client.scheduler_info().get("workers", {})))
    n_chunks = partition_count(len(tasks), n_workers, chunks_per_worker)
    bounds = np.linspace(0, len(tasks), n_chunks + 1).astype(int)
    chunks = [tasks[a:b] for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
    futures = client.map(run_partition, chunks, fn=fn, cfg=cfg, pure=False)
    frames, errors, seconds = [], [], []
    for df, e, s in client.gather(futures):
        frames.append(df)
        errors += e
        seconds.append(s)
    if stats is not None:
        stats.update(n_tasks=len(chunks), task_s=seconds)
    frames = [f for f in frames if len(f)]  # an empty frame's object columns would spread
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=LONG_COLUMNS)
    df["split"] = df["split"].astype(str)
    df["seed"] = pd.to_numeric(df["seed"], errors="coerce").fillna(-1).astype(int)
    return df, errors


def aggregate(per_video):
    """Group-by of the per-video long table -> summary (pandas, long form).

    Rows per (method, head, features, dataset, setting, split, metric): mean and std over test
    videos (and seeds), n_videos. Runs with several splits also get split="all": mean of the
    split means, std over all their videos, std_splits = std of the split means.

    In this process, with pandas: ``run_per_video`` has already gathered the table here (the
    report needs every row), and it is small (two rows per video and metric: 36,200 rows for
    18,100 videos); shipping it back to the workers for a Dask dataframe group-by cost 2.1 s
    there against milliseconds here (``vsum bench eval``).
    """
    import pandas as pd

    keys = [k for k in GROUP_KEYS if k != "seed"] + ["metric"]
    agg = (per_video.groupby(keys, dropna=False)["value"].agg(["mean", "std"]).reset_index())
    # distinct videos / seeds with a finite value: small, done on the gathered table
    finite = per_video[np.isfinite(per_video["value"].to_numpy(dtype=float))]
    counts = finite.groupby(keys, dropna=False).agg(n_videos=("video_id", "nunique"),
                                                    n_seeds=("seed", "nunique")).reset_index()
    summary = agg.merge(counts, on=keys, how="left")
    summary[["n_videos", "n_seeds"]] = summary[["n_videos", "n_seeds"]].fillna(0).astype(int)
    summary["std_splits"] = np.nan
    multi = []
    outer = [k for k in keys if k != "split"]
    for gk, sub in summary.groupby(outer, dropna=False):
        if sub["split"].nunique() > 1 and "all" not in set(sub["split"]):
            rows = per_video[(per_video[outer] == pd.Series(dict(zip(outer, gk)))).all(axis=1)]
            vals = rows["value"]
            multi.append({**dict(zip(outer, gk)), "split": "all", "mean": sub["mean"].mean(),
                          "std": float(vals.std()),
                          "n_videos": int(rows.loc[vals.notna(), "video_id"].nunique()),
                          "n_seeds": int(sub["n_seeds"].max()), "std_splits": sub["mean"].std()})
    if multi:
        summary = pd.concat([summary, pd.DataFrame(multi)], ignore_index=True)
    return summary.sort_values(keys).reset_index(drop=True)[
        keys[:-1] + ["metric", "mean", "std", "n_videos", "n_seeds", "std_splits"]]

