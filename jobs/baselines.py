"""``vsum baselines --store S [--store S2] --report DIR``: where the ceiling and the floor are.

Every labelled video of the stores, through the same Dask path and protocol as
``vsum evaluate`` (jobs/evaluate.py):
  human-loo  each annotator's own summary scored against the remaining annotators (F avg and
             max), averaged over annotators; rank correlations of each annotator's scores
             against each other annotator's (all pairs), frame and pick level
  random     uniform random step scores (one row per seed) -> the 15% knapsack protocol
  uniform    evenly spaced 2-second clips filling the 15% budget (a summary, no scores)
  middle     one contiguous block of 15% in the middle of the video (a summary, no scores)
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from jobs.dask_eval import aggregate, close_client, get_client, run_per_video
from jobs.eval_tasks import ROW_KEYS, _long_rows, load_labels
from jobs.evaluate import check_ratio, check_workers, finish_cli, parse_rank
from jobs.report import write_report
from pipeline.errors import InputError, UsageError

METHODS = ("human-loo", "random", "uniform", "middle")


@dataclass(frozen=True)
class BaselineConfig:
    ratio: float = 0.15
    seeds: int = 10  # random-score seeds per video
    rank: tuple[str, ...] = ("frame", "pick")
    clip_s: float = 2.0  # uniform baseline clip length


def uniform_summary(n_frames: int, fps: float, ratio: float = 0.15, clip_s: float = 2.0):
    """Evenly spaced clips of ``clip_s`` seconds, as many as fit in ``int(ratio * n)`` frames."""
    budget = int(ratio * n_frames)
    clip = max(1, min(budget, round(clip_s * fps))) if budget else 0
    out = np.zeros(n_frames, np.uint8)
    if not clip:
        return out
    k = max(1, budget // clip)
    centres = ((np.arange(k) + 0.5) * n_frames / k).astype(np.int64)
    for c in centres:
        start = int(np.clip(c - clip // 2, 0, n_frames - clip))
        out[start : start + clip] = 1
    return out


def middle_summary(n_frames: int, ratio: float = 0.15):
    budget = int(ratio * n_frames)
    out = np.zeros(n_frames, np.uint8)
    start = (n_frames - budget) // 2
    out[start : start + budget] = 1
    return out


def _nanmean(values) -> float:
    a = np.asarray(values, np.float64)
    a = a[np.isfinite(a)]
    return float(a.mean()) if len(a) else float("nan")


def human_loo(user_summary, user_scores, picks, rank=("frame", "pick")) -> dict[str, float]:
    """Leave-one-out human agreement of one video (see the module docstring)."""
    from pipeline.metrics import METRICS, f_scores_per_user, kendall_tau, spearman_rho

    out = dict.fromkeys(METRICS, float("nan"))
    us = np.asarray(user_summary)
    n_users = len(us)
    if n_users < 2:
        return out
    avg, mx = [], []
    for u in range(n_users):
        f = f_scores_per_user(us[u], np.delete(us, u, axis=0))
        avg.append(f.mean())
        mx.append(f.max())
    out["f1_avg"], out["f1_max"] = float(np.mean(avg)), float(np.mean(mx))
    if user_scores is not None:
        sc = np.asarray(user_scores, np.float64)
        levels = {"frame": sc, "pick": sc[:, np.asarray(picks, np.int64)]}
        for level in rank:
            x = levels[level]
            pairs = [(a, b) for a in range(n_users) for b in range(a + 1, n_users)]
            out[f"kendall_tau_{level}"] = _nanmean([kendall_tau(x[a], x[b]) for a, b in pairs])
            out[f"spearman_rho_{level}"] = _nanmean([spearman_rho(x[a], x[b]) for a, b in pairs])
    return out


def baseline_rows(task: dict, cfg: BaselineConfig) -> tuple[list[dict], list[str]]:
    """One video: rows for every baseline. task: {store, video_id}."""
    from pipeline.metrics import evaluate_video

    try:
        lab = load_labels(task["store"], task["video_id"])
    except (LookupError, ValueError, OSError) as exc:
        return [], [f"{task['store']}/{task['video_id']}: {str(exc).splitlines()[0]}"]
    n, picks = lab["n_frames"], lab["picks"]
    base = dict.fromkeys(ROW_KEYS, "")
    base.update(video_id=task["video_id"], dataset=lab["dataset"], split="all", seed=-1,
                selection="none")
    args = (picks, n, lab["change_points"], lab["user_summary"], lab["user_scores"])
    rows = _long_rows({**base, "method": "human-loo"},
                      human_loo(lab["user_summary"], lab["user_scores"], picks, cfg.rank))
    # random scores: seeded by (seed, video id) so any worker reproduces them
    vkey = zlib.crc32(task["video_id"].encode())
    for s in range(cfg.seeds):
        scores = np.random.default_rng([s, vkey]).random(len(picks))
        m = evaluate_video(scores, *args, ratio=cfg.ratio, rank=cfg.rank)
        rows += _long_rows({**base, "method": "random", "seed": s}, m)
    fps = float(lab["fps"] or 30.0)
    for name, summ in (("uniform", uniform_summary(n, fps, cfg.ratio, cfg.clip_s)),
                       ("middle", middle_summary(n, cfg.ratio))):
        m = evaluate_video(None, *args, summary=summ, rank=())
        rows += _long_rows({**base, "method": name}, m)
    return rows, []


def run_baselines(stores: list, report_dir: str | None = None,
                  cfg: BaselineConfig = BaselineConfig(), client=None,
                  scheduler: str | None = None, workers: int = 2):
    """Library entry point: -> (per_video, summary, errors). ``stores``: ``stores.Store`` values
    or paths/URLs; each Dask task gets its video's Store (credentials included)."""
    from stores.store import Store

    stores = [Store.at(s) for s in stores]
    tasks = []
    for s in stores:
        fs = s.reader()
        # videos without annotations (e.g. unlabelled clips in an extracted store) have no
        # human or reference summary to score against: they are not part of a baseline
        tasks += [{"store": s, "video_id": v} for v in fs.video_ids() if fs.has(v, "labels/user_summary")]
    if not tasks:
        raise InputError(f"no labelled complete videos in {', '.join(s.url for s in stores)} "
                         "(run vsum import first)")
    client, owned = get_client(scheduler, workers, client)
    try:
        per_video, errors = run_per_video(client, tasks, baseline_rows, cfg)
        summary = aggregate(per_video)
    finally:
        if owned:
            close_client(client)
    if report_dir:
        curves = []
        for t in tasks[:2]:  # one random-score curve per store's first videos
            n_steps = len(load_labels(t["store"], t["video_id"])["picks"])
            vkey = zlib.crc32(t["video_id"].encode())
            curves.append((t["store"], t["video_id"],
                           np.random.default_rng([0, vkey]).random(n_steps), "random"))
        write_report(per_video, summary, report_dir, "Baselines", curves)
    return per_video, summary, errors


def register(sub) -> None:
    p = sub.add_parser("baselines", help="human leave-one-out, random, uniform, middle baselines")
    p.add_argument("--store", action="append", required=True, help="labelled store (repeatable)")
    p.add_argument("--report", required=True, help="report folder")
    p.add_argument("--seeds", type=int, default=BaselineConfig.seeds, help="random-score seeds")
    p.add_argument("--ratio", type=float, default=BaselineConfig.ratio)
    p.add_argument("--rank", default="frame,pick", help="rank-correlation levels: frame,pick|none")
    p.add_argument("--scheduler", default=None, help="tcp://host:port of an existing Dask cluster")
    p.add_argument("--workers", type=int, default=2, help="local Dask workers (embedded mode)")
    p.set_defaults(func=run)


def run(args) -> int:
    from stores.store import Store

    if args.seeds < 0:
        raise UsageError(f"--seeds must be >= 0, got {args.seeds}")
    cfg = BaselineConfig(ratio=check_ratio(args.ratio), seeds=args.seeds, rank=parse_rank(args.rank))
    check_workers(args.workers)
    stores = [Store(s) for s in args.store]  # the CLI edge: options from $VSUM_STORAGE_OPTIONS
    for store in stores:  # StoreNotFound / not a vsum store, before Dask starts
        store.reader()
    per_video, summary, errors = run_baselines(stores, args.report, cfg,
                                               scheduler=args.scheduler, workers=args.workers)
    return finish_cli(per_video, summary, errors, args.report)
