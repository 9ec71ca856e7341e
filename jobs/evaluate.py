"""``vsum evaluate RUN... --store S --report DIR``: per-video metrics on Dask, then a Dask
dataframe group-by, then a Parquet/Markdown/PNG report.

    predictions (stores/predictions.py) ─► tasks, one per (store, video) ─► Dask workers:
        load labels once, evaluate_video for every prediction of that video
    ─► per-video long table (method, head, features, dataset, setting, split, seed, video_id,
       metric, value) ─► dask.dataframe group-by ─► summary ─► report

The same machinery (``run_per_video``, ``aggregate``, ``write_report``) serves
``vsum baselines``. Embedded default: a local Dask cluster; ``--scheduler tcp://…`` uses an
existing one; library callers pass a ``distributed.Client``.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

GROUP_KEYS = ["method", "head", "features", "dataset", "setting", "split", "seed"]
ROW_KEYS = GROUP_KEYS + ["selection", "video_id"]
METRIC_LABELS = {  # report column titles: say which rank-correlation variant each column is
    "f1_avg": "F1 (avg over users)", "f1_max": "F1 (max over users)",
    "kendall_tau_frame": "Kendall τ (frame, Otani)", "spearman_rho_frame": "Spearman ρ (frame, Otani)",
    "kendall_tau_pick": "Kendall τ (pick, CA-SUM)", "spearman_rho_pick": "Spearman ρ (pick, CA-SUM)",
    "diversity": "diversity (1 − cos)",
}


@dataclass(frozen=True)
class EvalConfig:
    ratio: float = 0.15  # summary length, fraction of frames (the community's 15%)
    quantize: bool = False  # DSNet's int(1000 * mean) shot values
    rank: tuple[str, ...] = ("frame", "pick")  # rank-correlation levels to compute
    diversity: bool = True


# -- labels (runs in workers) -------------------------------------------------------------------
_STORES: dict = {}


def _store(path: str):
    from stores.reader import FeatureStore

    if path not in _STORES:
        _STORES[path] = FeatureStore(path)
    return _STORES[path]


def load_labels(store_path: str, video_id: str, features: str | None = None) -> dict:
    """Everything the protocol needs for one video: picks [T], n_frames, change_points [S, 2]
    (uniform 2-second segments when the store has none), user_summary [U, n], user_scores
    [U, n] | None, features [T, ...] | None, dataset."""
    from pipeline.summary import uniform_segments
    from stores import layout

    st = _store(store_path)
    if not st.is_complete(video_id):
        raise LookupError(f"{store_path}: no complete video {video_id!r}")
    a = st.attrs(video_id)
    n = int(a["n_frames"])
    if not st.has(video_id, layout.USER_SUMMARY):
        raise LookupError(f"{store_path}/{video_id}: no labels (run vsum import first)")
    cps = None
    if st.has(video_id, layout.CHANGE_POINTS):
        cps = st.load(video_id, layout.CHANGE_POINTS).reshape(-1, 2)
    if cps is None or len(cps) == 0:
        cps = uniform_segments(n, float(a.get("fps") or 30.0))
    feats = None
    for name in ([features] if features else []) + ["googlenet"]:
        if name and st.has(video_id, layout.feature_path(name)) and name != layout.FRAMES:
            feats = st.load(video_id, layout.feature_path(name))
            break
    return {
        "picks": st.load(video_id, layout.PICKS).astype(np.int64), "n_frames": n,
        "change_points": cps.astype(np.int64),
        "user_summary": st.load(video_id, layout.USER_SUMMARY),
        "user_scores": st.load(video_id, layout.USER_SCORES)
        if st.has(video_id, layout.USER_SCORES) else None,
        "features": feats, "dataset": str(a.get("dataset", "")), "fps": a.get("fps"),
    }


def _long_rows(meta: dict, metrics: dict) -> list[dict]:
    return [{**meta, "metric": m, "value": float(v)} for m, v in metrics.items()]


def evaluate_predictions(task: dict, cfg: EvalConfig) -> tuple[list[dict], list[str]]:
    """One video, every prediction of it. task: {store, video_id, preds: [row dicts]}."""
    from pipeline.metrics import evaluate_video

    rows, errors = [], []
    try:
        lab = load_labels(task["store"], task["video_id"], task["preds"][0].get("features"))
    except (LookupError, ValueError, OSError) as exc:
        return [], [f"{task['store']}/{task['video_id']}: {str(exc).splitlines()[0]}"]
    for p in task["preds"]:
        try:
            m = evaluate_video(p["scores"], lab["picks"], lab["n_frames"], lab["change_points"],
                               lab["user_summary"], lab["user_scores"],
                               lab["features"] if cfg.diversity else None,
                               ratio=cfg.ratio, quantize=cfg.quantize, rank=cfg.rank)
        except ValueError as exc:
            errors.append(f"{p['method']} {task['video_id']}: {str(exc).splitlines()[0]}")
            continue
        meta = {k: p.get(k, "") for k in ROW_KEYS}
        meta["dataset"] = meta["dataset"] or lab["dataset"]
        rows += _long_rows(meta, m)
    return rows, errors


# -- Dask plumbing (shared with baselines) ------------------------------------------------------
def _partition(tasks, fn, cfg):
    rows, errors = [], []
    for t in tasks:
        r, e = fn(t, cfg)
        rows += r
        errors += e
    return rows, errors


# Batch jobs: nobody reads the workers' statistical profiler (a 10 ms sampling thread each).
QUIET_WORKERS = {"distributed.worker.profile.enabled": False}


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


def run_per_video(client, tasks: list[dict], fn, cfg, chunks_per_worker: int = 4):
    """Map ``fn(task, cfg) -> (rows, errors)`` over tasks on Dask; -> (pandas long frame, errors)."""
    import pandas as pd

    n_workers = max(1, len(client.scheduler_info().get("workers", {})))
    n_chunks = max(1, min(len(tasks), n_workers * chunks_per_worker))
    chunks = [c.tolist() for c in np.array_split(np.array(tasks, dtype=object), n_chunks) if len(c)]
    futures = client.map(_partition, chunks, fn=fn, cfg=cfg, pure=False)
    rows, errors = [], []
    for r, e in client.gather(futures):
        rows += r
        errors += e
    df = pd.DataFrame(rows, columns=ROW_KEYS + ["metric", "value"])
    df["split"] = df["split"].astype(str)
    df["seed"] = pd.to_numeric(df["seed"], errors="coerce").fillna(-1).astype(int)
    return df, errors


def aggregate(per_video, client=None):
    """Dask dataframe group-by of the per-video long table -> summary (pandas, long form).

    Rows per (method, head, features, dataset, setting, split, metric): mean and std over test
    videos (and seeds), n_videos. Runs with several splits also get split="all": mean of the
    split means, std over all their videos, std_splits = std of the split means.
    """
    import dask.dataframe as dd
    import pandas as pd

    keys = [k for k in GROUP_KEYS if k != "seed"] + ["metric"]
    nparts = max(1, min(8, len(per_video) // 20000 + 1))
    ddf = dd.from_pandas(per_video[keys + ["value"]], npartitions=nparts)
    # mean/std/count reduce as a tree on the workers (no shuffle)
    agg = (ddf.groupby(keys, dropna=False)["value"].agg(["mean", "std"], split_out=1)
           .compute().reset_index())
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


# -- report -------------------------------------------------------------------------------------
def _fmt(mean, std) -> str:
    if mean is None or not np.isfinite(mean):
        return "–"
    return f"{mean:.3f} ± {std:.3f}" if np.isfinite(std) else f"{mean:.3f}"


def markdown_report(summary, title: str = "Evaluation") -> str:
    """One table per dataset: rows = method (+ setting), columns = metrics, overall split."""
    lines = [f"# {title}", "",
             ("Values are mean ± std over test videos (and seeds); with several splits, the mean "
              "is the mean of the split means. F1 uses the 15% knapsack keyshot summary. "
              "Rank correlations: *frame* = Otani et al. (CVPR 2019), zero-order-hold frame "
              "scores vs each annotator's frame scores; *pick* = CA-SUM/PGL-SUM, step scores vs "
              "annotators' scores at the picks. τ = Kendall tau-b, ρ = Spearman. "
              "Conventional F: SumMe max over users, TVSum avg."), ""]
    metrics = [m for m in METRIC_LABELS if m in set(summary["metric"])]
    for ds, sub in summary.groupby("dataset", dropna=False):
        overall = sub[sub["split"] == "all"] if (sub["split"] == "all").any() else sub
        lines += [f"## {ds or '(no dataset)'}", "",
                  "| method | setting | " + " | ".join(METRIC_LABELS[m] for m in metrics)
                  + " | videos |",
                  "|---|---|" + "---|" * len(metrics) + "---|"]
        for (method, setting), r in overall.groupby(["method", "setting"], dropna=False, sort=True):
            cells = []
            for m in metrics:
                row = r[r["metric"] == m]
                cells.append(_fmt(row["mean"].iloc[0], row["std"].iloc[0]) if len(row) else "–")
            nv = int(r["n_videos"].max()) if len(r) else 0
            lines.append(f"| {method} | {setting or '–'} | " + " | ".join(cells) + f" | {nv} |")
        lines.append("")
    return "\n".join(lines)


def plot_f_distributions(per_video, out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sub = per_video[per_video["metric"].isin(["f1_avg", "f1_max"])]
    groups = list(sub.groupby(["dataset", "metric"]))
    fig, axes = plt.subplots(len(groups), 1, figsize=(8, 2.6 * max(1, len(groups))), squeeze=False)
    for ax, ((ds, metric), g) in zip(axes[:, 0], groups):
        # one value per (method, video): mean over seeds
        per = g.groupby(["method", "video_id"])["value"].mean().reset_index()
        methods = sorted(per["method"].unique())
        ax.boxplot([per.loc[per["method"] == m, "value"].dropna() for m in methods],
                   orientation="horizontal", tick_labels=methods)
        ax.set_title(f"{ds}: {METRIC_LABELS[metric]} per video")
        ax.set_xlim(0, 1)
    fig.tight_layout()
    path = out / "f1_distribution.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_video(store: str, video_id: str, step_scores, method: str, out: Path,
               cfg: EvalConfig = EvalConfig()) -> Path:
    """Predicted frame scores, mean annotator score (GT) and the selected shots of one video."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pipeline.summary import select_keyshots, upsample_scores

    lab = load_labels(store, video_id)
    frames = upsample_scores(step_scores, lab["picks"], lab["n_frames"])
    summary, _ = select_keyshots(step_scores, lab["picks"], lab["n_frames"],
                                 lab["change_points"], cfg.ratio, cfg.quantize)
    ref = lab["user_scores"] if lab["user_scores"] is not None else lab["user_summary"]
    gt = ref.astype(np.float64).mean(axis=0)
    span = np.ptp(gt)
    gt = (gt - gt.min()) / span if span > 0 else gt
    span = np.ptp(frames)
    pred = (frames - frames.min()) / span if span > 0 else frames
    x = np.arange(lab["n_frames"])
    fig, ax = plt.subplots(figsize=(10, 3))
    ax.fill_between(x, 0, 1, where=summary > 0, color="tab:orange", alpha=0.25, step="post",
                    label="selected shots")
    ax.plot(x, gt, color="black", lw=1, label="ground truth (mean annotator)")
    ax.plot(x, pred, color="tab:blue", lw=1, label=f"{method} (min-max scaled)")
    ax.set_xlabel("frame")
    ax.set_ylabel("score")
    ax.set_ylim(0, 1.05)
    ax.set_title(f"{video_id} — {method}")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in f"{method}__{video_id}")
    path = out / f"scores_{safe}.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_report(per_video, summary, report_dir: str | Path, title: str,
                 curves: list[tuple[str, str, np.ndarray, str]] = ()) -> Path:
    """per_video.parquet, summary.parquet, report.md, plots/*.png. curves: (store, video_id,
    step_scores, method) to draw."""
    out = Path(report_dir)
    plots = out / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    per_video.to_parquet(out / "per_video.parquet", index=False)
    summary.to_parquet(out / "summary.parquet", index=False)
    pngs = [plot_f_distributions(per_video, plots)] if len(per_video) else []
    for store, vid, scores, method in curves:
        try:
            pngs.append(plot_video(store, vid, scores, method, plots))
        except (LookupError, ValueError, OSError, RuntimeError) as exc:  # never fails the report
            print(f"plot {method}/{vid}: {str(exc).splitlines()[0]}", file=sys.stderr)
    md = markdown_report(summary, title)
    md += "\n## Plots\n\n" + "\n".join(f"![{p.stem}](plots/{p.name})" for p in pngs) + "\n"
    (out / "report.md").write_text(md)
    return out


def print_table(summary, metrics=("f1_avg", "f1_max", "kendall_tau_frame", "spearman_rho_frame",
                                  "kendall_tau_pick", "spearman_rho_pick")) -> None:
    sub = summary[summary["metric"].isin(metrics)]
    sub = sub[(sub["split"] == "all") | ~sub.groupby(["method", "dataset"])["split"]
              .transform(lambda s: (s == "all").any())]
    t = sub.pivot_table(index=["dataset", "method"], columns="metric", values="mean")
    print(t[[m for m in metrics if m in t.columns]].round(3).to_string())


# -- vsum evaluate --------------------------------------------------------------------------------
def prediction_tasks(run_dirs: list[str], store: str | None = None) -> list[dict]:
    """Predictions of every run, grouped by (store, video): one task per video."""
    from stores.predictions import read_predictions, read_run_json

    tasks: dict[tuple[str, str], dict] = {}
    for run in run_dirs:
        df = read_predictions(run)
        info = read_run_json(run) if (Path(run) / "run.json").exists() else {}
        for r in df.to_dict("records"):
            r["method"] = r.get("run") or Path(run).name
            for k in ("head", "features", "dataset", "setting"):
                r[k] = r.get(k) or info.get(k, "")
            s = store or r.get("store") or info.get("store")
            if not s:
                raise ValueError(f"{run}: predictions name no store; pass --store")
            tasks.setdefault((s, r["video_id"]), {"store": s, "video_id": r["video_id"],
                                                  "preds": []})["preds"].append(r)
    return list(tasks.values())


def evaluate_runs(run_dirs: list[str], report_dir: str | None = None, store: str | None = None,
                  cfg: EvalConfig = EvalConfig(), client=None, scheduler: str | None = None,
                  workers: int = 2, n_curves: int = 4):
    """Library entry point: -> (per_video, summary, errors)."""
    tasks = prediction_tasks(run_dirs, store)
    client, owned = get_client(scheduler, workers, client)
    try:
        per_video, errors = run_per_video(client, tasks, evaluate_predictions, cfg)
        summary = aggregate(per_video, client)
    finally:
        if owned:
            close_client(client)
    if report_dir:
        curves = []
        for t in tasks[:n_curves]:
            p = t["preds"][0]
            curves.append((t["store"], t["video_id"], p["scores"], p["method"]))
        write_report(per_video, summary, report_dir, "Evaluation", curves)
    return per_video, summary, errors


def register(sub) -> None:
    p = sub.add_parser("evaluate", help="evaluate runs' predictions on Dask; write a report")
    p.add_argument("runs", nargs="+", help="run folders (RUN/predictions/split=*/seed=*.parquet)")
    p.add_argument("--store", default=None, help="store with labels (default: the runs' store)")
    p.add_argument("--report", required=True, help="report folder")
    p.add_argument("--scheduler", default=None, help="tcp://host:port of an existing Dask cluster")
    p.add_argument("--workers", type=int, default=2, help="local Dask workers (embedded mode)")
    p.add_argument("--ratio", type=float, default=EvalConfig.ratio)
    p.add_argument("--quantize", action="store_true", help="DSNet's int(1000*mean) shot values")
    p.add_argument("--rank", default="frame,pick", help="rank-correlation levels: frame,pick|none")
    p.add_argument("--curves", type=int, default=4, help="per-video score plots to draw")
    p.set_defaults(func=run)


def _cfg(args) -> EvalConfig:
    rank = tuple(x for x in args.rank.split(",") if x in ("frame", "pick"))
    return EvalConfig(ratio=args.ratio, quantize=args.quantize, rank=rank)


def run(args) -> int:
    try:
        per_video, summary, errors = evaluate_runs(
            args.runs, args.report, args.store, _cfg(args), scheduler=args.scheduler,
            workers=args.workers, n_curves=args.curves)
    except (OSError, ValueError) as exc:
        print(str(exc).splitlines()[0], file=sys.stderr)
        return 2
    return finish_cli(per_video, summary, errors, args.report)


def finish_cli(per_video, summary, errors: list[str], report_dir: str) -> int:
    """What `vsum evaluate` and `vsum baselines` print at the end; the exit code."""
    for e in errors:
        print(e, file=sys.stderr)
    print_table(summary)
    print(f"report: {report_dir}/report.md ({per_video['video_id'].nunique()} videos, "
          f"{len(errors)} errors)")
    return 1 if errors else 0
