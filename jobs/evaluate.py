"""``vsum evaluate RUN... --store S --report DIR``: per-video metrics on Dask, then a Dask
dataframe group-by, then a Parquet/Markdown/PNG report.

    predictions (stores/predictions.py) ─► tasks, one per (store, video) ─► Dask workers:
        load labels once, evaluate_video for every prediction of that video (jobs/eval_tasks.py)
    ─► per-video long table (method, head, features, dataset, setting, split, seed, video_id,
       metric, value) ─► dask.dataframe group-by (jobs/dask_eval.py) ─► summary ─► report
       (jobs/report.py)

The same machinery serves ``vsum baselines``. Embedded default: a local Dask cluster;
``--scheduler tcp://…`` uses an existing one; library callers pass a ``distributed.Client``.
"""
from __future__ import annotations

import sys
from pathlib import Path

from jobs.dask_eval import aggregate, close_client, get_client, run_per_video
from jobs.eval_tasks import EvalConfig, evaluate_predictions
from jobs.report import print_table, write_report

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
        for t in tasks[:n_curves]:  # every method of a video in one picture
            curves += [(t["store"], t["video_id"], p["scores"], p["method"]) for p in t["preds"]]
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
