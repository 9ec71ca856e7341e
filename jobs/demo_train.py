"""The demo's second half: labels into the demo store, DR-DSN and CSNet trained on k-fold splits
of the annotated videos, one evaluation report with human and random baselines beside them."""
from __future__ import annotations

import json
from pathlib import Path


def _demo_splits(store: str, out: Path, k: int = 4) -> Path:
    """k folds over the annotated videos (each tested exactly once), in the public JSON form."""
    from stores.reader import FeatureStore
    from stores.splits import kfold_splits

    fs = FeatureStore(store)
    labelled = [v for v in fs.video_ids() if fs.has(v, "labels/user_summary")]
    keys = [fs.attrs(v).get("eccv16_key", v) for v in labelled]
    splits = kfold_splits(keys, k=min(k, len(keys)), seed=0)
    path = out / "demo_splits.json"
    path.write_text(json.dumps([{"train_keys": train, "test_keys": test} for train, test in splits],
                               indent=1))
    return path


def train_and_report(out: Path, store: str, annotations: Path, epochs: int | None = None) -> int:
    from jobs.evaluate import evaluate_runs
    from jobs.report import print_table
    from jobs.train import run_training
    from stores.importers.common import import_annotations
    from stores.importers.jsonfmt import read_json

    result = import_annotations(read_json(str(annotations)), store)
    print(result.line("demo", store))
    splits = _demo_splits(store, out)
    runs = []
    # supervised variants: the demo has labels, and with random-init features the
    # unsupervised rewards alone barely move the heads off random (seen: F 0.14-0.18)
    for head, head_epochs in (("dsn_sup", 60), ("csnet_sup", 20)):
        run_dir = out / "runs" / head
        print(f"\n--- vsum train {head} --store {store} --splits {splits} --out {run_dir}")
        run_training(head, store, str(splits), str(run_dir), epochs=epochs or head_epochs,
                     seeds=(0,), evaluate=False)
        runs.append(str(run_dir))
    report = out / "report"
    per_video, summary, errors = evaluate_runs(runs, report_dir=str(report))
    _add_baselines(store, report)
    print()
    print_table(summary)
    for e in errors:
        print(e)
    print(f"\nreport: {report / 'report.md'} (plots beside it)")
    return 1 if errors else 0


def _add_baselines(store: str, report: Path) -> None:
    try:
        from jobs.baselines import run_baselines
    except ImportError:
        return
    _, summary, _ = run_baselines([store], report_dir=str(report / "baselines"))
    from jobs.report import print_table

    print("\nbaselines (same protocol):")
    print_table(summary)
