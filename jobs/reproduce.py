"""``vsum reproduce PAPER --h5 DIR --out OUT``: a paper's result and ablation tables in one command.

    vsum reproduce csnet --h5 datasets/ --out repro/csnet            # every row the data allows
    vsum reproduce dr-dsn --h5 datasets/ --out repro/q --quick       # 1 seed, 2 epochs
    vsum reproduce unet3d-rl --h5 datasets/ --store tvsum=tvsum_st3d.zarr --out repro/unet

1. Stores (``jobs/reproduce_stores.py``): every ``eccv16_dataset_<name>_google_pool5.h5`` in DIR is imported into
   ``OUT/stores/<name>.zarr`` (``vsum store import-h5``; skipped when already complete);
   ``--store NAME=PATH`` uses an existing store for a dataset instead (e.g. one extracted with
   ST3D/I3D features or frames, which the h5 files do not have).
2. Grid: every cell of every table in the paper's data file (``jobs/published/<paper>.yaml``)
   becomes a training run (variant x dataset x setting, shared between cells) and an evaluation
   (``jobs/reproduce_grid.py``). A run whose inputs the stores lack is listed as not run, with
   the reason; ``--substitute-features NAME`` runs it on other features, labelled as such.
3. Training: every (run, split, seed) of the grid is a task of ONE Ray job (``jobs/train.py``'s
   executor); runs live in ``OUT/runs/<run id>`` and resume like ``vsum train``.
4. Evaluation: one Dask cluster scores every run under each evaluation the cells ask for
   (``OUT/eval/<key>/``); tables: ``OUT/tables/<paper>/`` (``jobs/reproduce_tables.py``), and
   ``OUT/runs.csv`` says what each run trained and tested on.
Exit code: 0 when every runnable task trained and every h5 file read, 1 when some failed, 2 on a
usage or input error.
"""
from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path

from pipeline.errors import InputError, UsageError

QUICK_EPOCHS = 2


# -- the grid's runs ------------------------------------------------------------------------------
def decide_runs(grid, have: dict, substitute: str | None):
    """-> (grid with substituted runs, {run_id: why not run}) for every run of the grid."""
    from jobs.reproduce_grid import missing_data, missing_inputs

    status, swap = {}, {}
    for spec in grid.runs():
        reason = missing_inputs(spec, have, "googlenet")
        if reason and substitute and not missing_data(spec, have) and \
                (spec.features or "googlenet") != substitute:
            alt = dataclasses.replace(spec, features=substitute,
                                      run_id=f"{spec.run_id}--as-{substitute}")
            alt_reason = missing_inputs(alt, have, "googlenet")
            if not alt_reason:
                swap[spec.run_id] = alt
                status[alt.run_id] = ""
                continue
        status[spec.run_id] = reason
    cells = [dataclasses.replace(c, run=swap.get(c.run.run_id, c.run)) if c.run else c
             for c in grid.cells]
    return dataclasses.replace(grid, cells=cells), status


def plan_runs(grid, status: dict, stores: dict, out: Path, o: dict):
    """RunPlans of the runnable runs (a run that cannot be planned gets its reason in status)."""
    from jobs.reproduce_grid import needed_datasets
    from jobs.train_plan import plan_run

    plans = {}
    for spec in grid.runs():
        if status.get(spec.run_id):
            continue
        ro = {**o, "features": spec.features, "overrides": dict(spec.overrides),
              "preset": spec.preset, "setting": spec.setting, "test_dataset": spec.dataset}
        run_stores = [stores[d] for d in needed_datasets(spec, sorted(stores))]
        try:
            plans[spec.run_id] = plan_run(spec.head, run_stores, spec.splits, out / "runs" / spec.run_id, ro)
        except (ValueError, KeyError, TypeError) as exc:
            status[spec.run_id] = f"not planned: {' '.join(str(exc).split())[:200]}"
    return plans


def incomplete_runs(plans: dict, seeds) -> dict[str, str]:
    """{run id: note} for runs some of whose (split, seed) tasks have no predictions."""
    from jobs.train import todo_pairs

    notes = {}
    for rid, plan in plans.items():
        left = len(todo_pairs(plan, seeds))
        if left:
            n = len(plan.pairs) * len(seeds)
            notes[rid] = f"partial: {n - left} of {n} (split, seed) tasks trained"
    return notes


def train_all(plans: dict, o: dict, paper: str) -> list[str]:
    """Every missing (run, split, seed) as one Ray job; -> error lines."""
    from jobs.train import execute, task_kwargs, todo_pairs
    from stores.predictions import write_run_json

    jobs = []
    for plan in plans.values():
        write_run_json(plan.out, plan.info)
        jobs += [task_kwargs(plan, k, s, o, progress=False) for k, s in todo_pairs(plan, o["seeds"])]
    n_all = sum(len(p.pairs) for p in plans.values()) * len(o["seeds"])
    print(f"reproduce {paper}: {len(plans)} runs, {n_all - len(jobs)} of {n_all} (split, seed) "
          "tasks already done")
    return execute(jobs, o, f"reproduce {paper}")


def evaluate_all(grid, plans: dict, out: Path, workers: int) -> dict:
    """{eval key: per-video long frame} for every evaluation the cells ask for."""
    from jobs.dask_eval import close_client, get_client
    from jobs.eval_tasks import EvalConfig
    from jobs.evaluate import evaluate_runs

    results = {}
    keys = grid.eval_keys()
    client, owned = get_client(None, workers, None)
    try:
        for key in keys:
            run_ids = sorted({c.run.run_id for c in grid.cells
                              if c.run is not None and c.eval_key == key and c.run.run_id in plans})
            dirs = [str(plans[r].out) for r in run_ids
                    if any((plans[r].out / "predictions").glob("split=*/seed=*.parquet"))]
            if not dirs:
                continue
            name = "-".join(f"{k}={v}" for k, v in key)
            per_video, _, errors = evaluate_runs(dirs, report_dir=str(out / "eval" / name),
                                                 cfg=EvalConfig(**dict(key)), client=client,
                                                 n_curves=0)
            for e in errors:
                print(e, file=sys.stderr)
            results[key] = per_video
    finally:
        if owned:
            close_client(client)
    return results


def write_runs_csv(grid, plans: dict, status: dict, out: Path) -> Path:
    import pandas as pd

    rows = []
    for spec in grid.runs():
        info = plans[spec.run_id].info if spec.run_id in plans else {}
        rows.append({"run": spec.run_id, "variant": spec.variant, "head": spec.head,
                     "features": spec.features or "", "test_dataset": spec.dataset,
                     "setting": spec.setting, "splits": spec.splits,
                     "train_datasets": ",".join(info.get("train_datasets", [])),
                     "overrides": ",".join(f"{k}={v}" for k, v in spec.overrides),
                     "status": status.get(spec.run_id) or "ran"})
    path = out / "runs.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


# -- CLI ------------------------------------------------------------------------------------------
def register(sub) -> None:
    from jobs.reproduce_grid import PAPERS

    p = sub.add_parser("reproduce", help="a paper's tables: ours beside the published numbers")
    p.add_argument("paper", choices=PAPERS)
    p.add_argument("--h5", default=None, help="folder of eccv16_dataset_<name>_google_pool5.h5 files")
    p.add_argument("--out", required=True, help="output folder (resumed when it exists)")
    p.add_argument("--store", action="append", default=[], metavar="NAME=PATH",
                   help="use this store for dataset NAME (repeatable)")
    p.add_argument("--quick", action="store_true", help=f"1 seed, {QUICK_EPOCHS} epochs (a smoke run)")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    p.add_argument("--epochs", type=int, default=None, help="override every head's epochs")
    p.add_argument("--folds", type=int, default=5, help="k of the generated k-fold splits (default 5)")
    p.add_argument("--split-files", default=None,
                   help="folder of public split files (DSNet .yml, VASNet .json) to use instead")
    p.add_argument("--set", action="append", default=[], metavar="[VARIANT:]KEY=VALUE",
                   help="config override for every variant that has KEY (or one VARIANT)")
    p.add_argument("--substitute-features", default=None, metavar="NAME",
                   help="run cells whose features the stores lack on NAME instead (labelled)")
    p.add_argument("--tables", default=None, help="only these table ids, comma-separated")
    p.add_argument("--no-ray", action="store_true", help="train in this process, one task at a time")
    p.add_argument("--num-cpus", type=int, default=None, help="CPUs of the local Ray (default: all)")
    p.add_argument("--gpus-per-task", type=float, default=0.0, help="GPU share per training task")
    p.add_argument("--threads", type=int, default=1, help="torch threads per task (default 1)")
    p.add_argument("--workers", type=int, default=2, help="local Dask workers for the evaluation")
    p.set_defaults(func=run)


def _parse_sets(items: list[str], variants: dict) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for item in items:
        target, sep, kv = item.partition(":") if ":" in item.split("=", 1)[0] else ("*", "", item)
        if "=" not in kv:
            raise UsageError(f"--set expects [VARIANT:]KEY=VALUE, got {item!r}")
        if target != "*" and target not in variants:
            raise UsageError(f"--set {item}: no variant {target!r} (known: {', '.join(variants)})")
        k, v = kv.split("=", 1)
        out.setdefault(target, {})[k.strip()] = v.strip()
    return out


def _usable_sets(grid, sets: dict) -> object:
    """Drop global --set keys a variant's head does not have (hidden=16 fits DSN, not CRSum)."""
    import dataclasses as dc

    from heads.base import get_head

    cells = []
    for c in grid.cells:
        if c.run is not None and sets.get("*"):
            fields = {f.name for f in dc.fields(get_head(c.run.head).config_cls)}
            over = tuple((k, v) for k, v in c.run.overrides
                         if k in fields or k not in sets["*"] or k in sets.get(c.run.variant, {}))
            c = dc.replace(c, run=dc.replace(c.run, overrides=over))
        cells.append(c)
    return dc.replace(grid, cells=cells)


def run(args) -> int:
    from jobs.reproduce_grid import build_grid, load_paper
    from jobs.reproduce_stores import find_split_files, inspect_stores, prepare_stores
    from jobs.reproduce_tables import cell_rows, write_tables
    from jobs.train import DEFAULTS

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    out = Path(args.out)
    doc = load_paper(args.paper)
    sets = _parse_sets(args.set, doc["variants"])
    given = dict(s.split("=", 1) for s in args.store if "=" in s)
    if len(given) != len(args.store):
        raise UsageError("--store expects NAME=PATH")
    if args.h5 is None and not given:
        raise UsageError("give --h5 DIR and/or --store NAME=PATH")
    stores, errors = prepare_stores(args.h5, out, given)
    if not stores:
        raise InputError("no dataset found (eccv16_dataset_<name>_google_pool5.h5 files)", args.h5)
    grid = build_grid(args.paper, f"kfold:{args.folds}", sets, find_split_files(args.split_files, stores))
    if args.tables:
        wanted = {t.strip() for t in args.tables.split(",")}
        unknown = wanted - {t["id"] for t in doc["tables"]}
        if unknown:
            raise UsageError(f"--tables: no table {sorted(unknown)} in {args.paper} "
                             f"(tables: {', '.join(t['id'] for t in doc['tables'])})")
        grid.paper["tables"] = [t for t in doc["tables"] if t["id"] in wanted]
        grid.cells = [c for c in grid.cells if c.table in wanted]
    grid, status = decide_runs(_usable_sets(grid, sets), inspect_stores(stores), args.substitute_features)
    seeds = (0,) if args.quick else tuple(int(s) for s in args.seeds.split(",") if s.strip())
    epochs = args.epochs if args.epochs is not None else (QUICK_EPOCHS if args.quick else None)
    o = {**DEFAULTS, "seeds": seeds, "epochs": epochs, "use_ray": not args.no_ray,
         "threads": args.threads, "num_cpus": args.num_cpus, "gpus_per_task": args.gpus_per_task,
         "evaluate": False, "progress": True}
    plans = plan_runs(grid, status, stores, out, o)
    errors += train_all(plans, o, args.paper)
    for e in errors:
        print(e, file=sys.stderr)
    results = evaluate_all(grid, plans, out, args.workers)
    records = cell_rows(grid, results, status, incomplete_runs(plans, seeds))
    note = (f"seeds {','.join(map(str, seeds))}; epochs {epochs or 'each head default (the paper)'}; "
            f"generated splits kfold:{args.folds} unless a table or --split-files says otherwise"
            + ("; --quick: a smoke run, not comparable with the published numbers" if args.quick else ""))
    paths = write_tables(grid, records, out, note)
    runs_csv = write_runs_csv(grid, plans, status, out)
    n_ran = sum(1 for r in records if r["note"] == "" and r["run"])
    print(f"reproduce {args.paper}: {len(records)} cells ({n_ran} with our number), "
          f"{len(errors)} errors; tables: {paths[0]}; runs: {runs_csv}")
    return 1 if errors else 0
