"""``vsum evaluate RUN... [--predictions FILE...] --store S --report DIR``: per-video metrics on
Dask, then a pandas group-by of the gathered table, then a Parquet/Markdown/PNG report. Other codebases'
prediction files (``--predictions``, jobs/external_eval.py) join the same per-video tasks.

    predictions (stores/predictions.py) ─► tasks, one per (store, video) ─► Dask workers:
        load labels once, evaluate_video for every prediction of that video (jobs/eval_tasks.py)
    ─► per-video long table (method, head, features, dataset, setting, split, seed, video_id,
       metric, value) ─► group-by (jobs/dask_eval.py) ─► summary ─► report
       (jobs/report.py)

The same machinery serves ``vsum baselines``. Embedded default: a local Dask cluster;
``--scheduler tcp://…`` uses an existing one; library callers pass a ``distributed.Client``.
Each task holds its store as a ``stores.Store`` (URL + storage options, one value per URL): the
workers read labels with the credentials resolved here.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from jobs.dask_eval import aggregate, close_client, get_client, run_per_video
from jobs.eval_tasks import BUDGETS, PROTOCOLS, EvalConfig, evaluate_predictions
from jobs.report import print_table, write_report
from pipeline.errors import InputError, UsageError
from stores.store import Store

# -- vsum evaluate --------------------------------------------------------------------------------
def store_values(given: Store | str | None = None) -> dict[str, Store]:
    """URL -> Store for the stores an evaluation meets: ``given`` (when any) up front, others
    made (options from ``$VSUM_STORAGE_OPTIONS``) on first sight through ``.setdefault``."""
    return {} if given is None else {Store.at(given).url: Store.at(given)}


def _store_for(known: dict[str, Store], url: str) -> Store:
    return known.get(str(url)) or known.setdefault(str(url), Store(str(url)))


def prediction_tasks(run_dirs: list[str], store: Store | str | None = None,
                     known: dict[str, Store] | None = None) -> list[dict]:
    """Predictions of every run, grouped by (store URL, video): one task per video, whose
    ``store`` is a Store (``store`` overrides the runs' own)."""
    from stores.predictions import read_predictions, read_run_json

    known = store_values(store) if known is None else known
    store = Store.at(store).url if store is not None else None
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
                raise UsageError("its predictions name no store; pass --store", run)
            tasks.setdefault((s, r["video_id"]), {"store": _store_for(known, s), "video_id": r["video_id"],
                                                  "preds": []})["preds"].append(r)
    return list(tasks.values())


def evaluate_runs(run_dirs: list[str], report_dir: str | None = None, store: Store | str | None = None,
                  cfg: EvalConfig = EvalConfig(), client=None, scheduler: str | None = None,
                  workers: int = 2, n_curves: int = 4):
    """Library entry point: -> (per_video, summary, errors)."""
    r = evaluate_all(run_dirs, [], None, report_dir, store, cfg, client, scheduler, workers, n_curves)
    return r.per_video, r.summary, r.errors


@dataclass
class Evaluation:
    per_video: object  # pandas long table
    summary: object
    errors: list[str]
    external: dict = field(default_factory=dict)  # name -> jobs.external_eval.ExternalMethod


def evaluate_all(run_dirs: list[str], prediction_files: list[str], names: list[str] | None,
                 report_dir: str | None = None, store: Store | str | None = None,
                 cfg: EvalConfig = EvalConfig(), client=None, scheduler: str | None = None,
                 workers: int = 2, n_curves: int = 4) -> Evaluation:
    """Runs and external prediction files, one Dask map over their videos -> Evaluation.
    ``store``: a ``stores.Store`` or a path/URL (labels for every prediction), or None (each
    run's own store)."""
    from jobs import external_eval as ext

    known = store_values(store)
    store = Store.at(store) if store is not None else None
    tasks = prediction_tasks(run_dirs, store, known) if run_dirs else []
    methods, errors = {}, []
    if prediction_files:
        rows, methods, errors = ext.external_tasks(prediction_files, names, store)
        tasks = _merge_tasks(tasks, rows, known)
    if not tasks:
        exc = InputError("nothing to evaluate: no prediction matched a video of the store",
                         store and store.url)
        exc.problems = errors  # the lines that say why, shown before it
        raise exc
    client, owned = get_client(scheduler, workers, client)
    try:
        per_video, task_errors = run_per_video(client, tasks, evaluate_predictions, cfg)
        summary = aggregate(per_video)
    finally:
        if owned:
            close_client(client)
    for m in methods.values():
        m.fm = ext.fm_comparison(per_video, m.name)
    if report_dir:
        write_report(per_video, summary, report_dir, "Evaluation", _curves(tasks, n_curves))
        if methods:
            ext.write_external_report(methods, per_video, report_dir)
    return Evaluation(per_video, summary, errors + task_errors, methods)


def _merge_tasks(tasks: list[dict], rows: list[dict], known: dict[str, Store]) -> list[dict]:
    """Prediction rows (``store``: a URL) joined to the per-(store, video) tasks, so labels are
    read once."""
    by = {(t["store"].url, t["video_id"]): t for t in tasks}
    for r in rows:
        key = (str(r["store"]), r["video_id"])
        by.setdefault(key, {"store": _store_for(known, key[0]), "video_id": key[1],
                            "preds": []})["preds"].append(r)
    return list(by.values())


def _curves(tasks: list[dict], n: int) -> list[tuple]:
    """(store, video, step scores, method) of every method with step scores, for the first ``n``
    videos that have any: every method of a video in one picture."""
    from stores import layout

    out, videos = [], 0
    for t in tasks:
        if videos >= n:
            break
        n_steps = None
        found = []
        for p in t["preds"]:
            kind = p.get("kind", "steps")
            if kind == "scores" and n_steps is None:
                n_steps = t["store"].reader().array(t["video_id"], layout.PICKS).shape[0]
            if kind == "steps" or (kind == "scores" and len(p["scores"]) == n_steps):
                found.append((t["store"], t["video_id"], p["scores"], p["method"]))
        videos += bool(found)
        out += found
    return out


def register(sub) -> None:
    p = sub.add_parser("evaluate", help="evaluate runs' predictions on Dask; write a report")
    p.add_argument("runs", nargs="*", help="run folders (RUN/predictions/split=*/seed=*.parquet)")
    p.add_argument("--store", default=None, help="store with labels (default: the runs' store)")
    p.add_argument("--report", required=True, help="report folder")
    p.add_argument("--scheduler", default=None, help="tcp://host:port of an existing Dask cluster")
    p.add_argument("--workers", type=int, default=2, help="local Dask workers (embedded mode)")
    p.add_argument("--ratio", type=float, default=EvalConfig.ratio)
    p.add_argument("--quantize", action="store_true", help="DSNet's int(1000*mean) shot values")
    p.add_argument("--rank", default="frame,pick", help="rank-correlation levels: frame,pick|none")
    p.add_argument("--curves", type=int, default=4, help="per-video score plots to draw")
    # other codebases' files (docs/evaluation.md, "Other codebases' predictions")
    p.add_argument("--predictions", nargs="+", default=[], metavar="FILE",
                   help="prediction files of other codebases: a DR-DSN-style result h5, or a "
                        "Parquet/CSV/JSON table of video key -> scores or summary; needs --store")
    p.add_argument("--name", action="append", default=None,
                   help="method name of the --predictions files: once (all files: the splits of "
                        "one method) or once per file (default: each file's stem)")
    p.add_argument("--protocol", choices=PROTOCOLS, default="keyshot",
                   help="keyshot (default) | crsum-keyframe: also CRSum's keyframe F (f1_keyframe)")
    p.add_argument("--budget", choices=BUDGETS, default="ratio",
                   help="keyshot summary length: ratio (--ratio of the frames) | P (each video's "
                        "annotator proportion, 3DST-UNet-RL's l = P)")
    p.add_argument("--keyframe-stride", type=int, default=1,
                   help="crsum-keyframe: keep every k-th pick (4 on 15-frame picks = 1 frame in 60)")
    p.set_defaults(func=run)


RANK_LEVELS = ("frame", "pick")


def parse_rank(text: str) -> tuple[str, ...]:
    """'frame,pick' | 'frame' | 'pick' | 'none' -> levels; a typo is one UsageError line
    (it used to drop the rank metrics silently)."""
    items = [x.strip() for x in text.split(",") if x.strip()]
    if items == ["none"]:
        return ()
    bad = [x for x in items if x not in RANK_LEVELS]
    if bad or not items:
        raise UsageError(f"--rank {text!r}: want frame, pick, frame,pick or none")
    return tuple(dict.fromkeys(items))


def check_ratio(ratio: float) -> float:
    if not 0 < ratio < 1:
        raise UsageError(f"--ratio must be in (0, 1), got {ratio}")
    return ratio


def check_workers(workers: int) -> int:
    if workers < 1:
        raise UsageError(f"--workers must be >= 1, got {workers}")
    return workers


def _cfg(args) -> EvalConfig:
    return EvalConfig(ratio=check_ratio(args.ratio), quantize=args.quantize, rank=parse_rank(args.rank),
                      protocol=args.protocol, budget=args.budget, keyframe_stride=args.keyframe_stride)


def check_runs(run_dirs: list[str], store: Store | None) -> None:
    """Every run folder holds predictions and the labelled store exists, before Dask starts."""
    for run in run_dirs:
        if not Path(run).is_dir():
            raise InputError("no such run folder", run)
        if not any(Path(run).glob("predictions/split=*/seed=*.parquet")):
            raise InputError("no predictions in this run folder (predictions/split=*/seed=*.parquet)", run)
    if store is not None:
        store.reader()


def run(args) -> int:
    from jobs.external_eval import notes

    if not args.runs and not args.predictions:
        raise UsageError("give run folders, --predictions files, or both")
    cfg = _cfg(args)
    check_workers(args.workers)
    if args.curves < 0:
        raise UsageError(f"--curves must be >= 0, got {args.curves}")
    if args.keyframe_stride < 1:
        raise UsageError(f"--keyframe-stride must be >= 1, got {args.keyframe_stride}")
    store = Store(args.store) if args.store else None  # the CLI edge: $VSUM_STORAGE_OPTIONS
    check_runs(args.runs, store)
    try:
        r = evaluate_all(args.runs, args.predictions, args.name, args.report, store, cfg,
                         scheduler=args.scheduler, workers=args.workers, n_curves=args.curves)
    except InputError as exc:
        for line in getattr(exc, "problems", []):
            print(line, file=sys.stderr)
        raise
    for line in notes(r.external, args.report):
        print(line, file=sys.stderr)
    return finish_cli(r.per_video, r.summary, r.errors, args.report)


def finish_cli(per_video, summary, errors: list[str], report_dir: str) -> int:
    """What `vsum evaluate` and `vsum baselines` print at the end; the exit code."""
    for e in errors:
        print(e, file=sys.stderr)
    print_table(summary)
    print(f"report: {report_dir}/report.md ({per_video['video_id'].nunique()} videos, "
          f"{len(errors)} errors)")
    return 1 if errors else 0
