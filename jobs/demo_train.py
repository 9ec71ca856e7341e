"""The demo's second half: labels into the demo store, every head that trains from features in
minutes on a CPU trained on 4-fold splits of the annotated videos (Ray tasks), one Dask
evaluation of the heads beside the baselines, ``report.html``, and a summary video of a real clip.
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from jobs.demo_corpus import DemoCorpusSpec


@dataclass(frozen=True)
class DemoHead:
    """One trained method of the demo: `vsum train HEAD --features F --epochs E --set ...`."""

    run: str  # run folder name = method name in the tables
    head: str
    features: str
    epochs: int
    overrides: tuple[tuple[str, object], ...] = ()
    why: str = ""

    def command(self, store: str, splits: Path, out: Path, epochs: int | None = None) -> str:
        sets = "".join(f" --set {k}={str(v).lower() if isinstance(v, bool) else v}"
                       for k, v in self.overrides)
        return (f"vsum train {self.head} --store {store} --splits {splits} --out {out / self.run} "
                f"--features {self.features} --epochs {epochs or self.epochs}{sets}")


# Supervised variants: the demo has labels, and with random-init features the unsupervised
# rewards alone barely move a head off random. Schedules are shortened to fit a 2-core CPU
# (about 2 CPU-seconds per epoch for DR-DSN and CSNet on 12 training videos), with a larger
# learning rate to match; measured on this corpus (README, "The demo").
DEMO_HEADS = (
    DemoHead("dsn_sup", "dsn_sup", "googlenet", 15, (("lr", 1e-3),),
             "DR-DSN: BiLSTM, REINFORCE on diversity + representativeness, plus MSE to the "
             "annotators' mean"),
    DemoHead("csnet_sup", "csnet_sup", "googlenet", 15, (("gan", False), ("lr", 1e-3)),
             "CSNet: chunk & stride BiLSTMs with difference attention, trained with BCE (without "
             "the SUM-GAN losses, which triple the cost)"),
    DemoHead("unet3d_rl_sup", "unet3d_rl", "st3d", 12,
             (("supervised", True), ("logprob_reduce", "mean"), ("squeeze_channels", 16), ("lr", 1e-2)),
             "3DST-UNet on the ST3D maps [T, 512, 4, 4]: REINFORCE on the same rewards plus MSE "
             "(3DST-UNet_sup), 16 squeezed channels instead of 32 for the CPU budget"),
)


@dataclass
class DemoSetup:
    out: Path
    store: str
    annotations: Path
    weights_line: str
    extract_line: str
    epochs: int | None
    summary_clip: Path
    corpus: DemoCorpusSpec


def demo_splits(store: str, out: Path, k: int = 4) -> Path:
    """k folds over the annotated videos (each tested exactly once), in the public JSON form."""
    from stores.reader import FeatureStore
    from stores.splits import kfold_splits

    fs = FeatureStore(store)
    labelled = [v for v in fs.video_ids() if fs.has(v, "labels/user_summary")]
    # "demo/video_3": dataset-prefixed, so the key resolves whatever the store's other
    # (unannotated) videos are called
    keys = [f"{fs.attrs(v)['dataset']}/{fs.attrs(v).get('eccv16_key', v)}" for v in labelled]
    splits = kfold_splits(keys, k=min(k, len(keys)), seed=0)
    path = out / "demo_splits.json"
    path.write_text(json.dumps([{"train_keys": train, "test_keys": test} for train, test in splits],
                               indent=1))
    return path


def train_heads(setup: DemoSetup, splits: Path) -> list[str]:
    from jobs.train import run_training

    runs = []
    for h in DEMO_HEADS:
        epochs = setup.epochs or h.epochs
        print(f"\n--- {h.run}: {h.why}\n    "
              f"{h.command(setup.store, splits, setup.out / 'runs', epochs)}", flush=True)
        run_dir = setup.out / "runs" / h.run
        run_training(h.head, setup.store, str(splits), str(run_dir), epochs=epochs,
                     features=h.features, overrides=dict(h.overrides), seeds=(0,), evaluate=False)
        runs.append(str(run_dir))
    print(f"\n(CRSum, end to end from the frame shards, does not fit this CPU budget; to try it: "
          f"vsum train crsum --store {setup.store} --splits {splits} --out {setup.out / 'runs' / 'crsum'} "
          "--set epochs=60 --set lr_halve_every=12)")
    return runs


def evaluate_all(setup: DemoSetup, runs: list[str]):
    """Heads and baselines on one Dask cluster -> (per_video, summary, errors, curves)."""
    import pandas as pd

    from jobs.baselines import run_baselines
    from jobs.dask_eval import close_client, get_client
    from jobs.evaluate import evaluate_runs, prediction_tasks

    client, _ = get_client()
    try:
        pv_h, sum_h, err_h = evaluate_runs(runs, client=client)
        pv_b, sum_b, err_b = run_baselines([setup.store], client=client)
    finally:
        close_client(client)
    curves = [(t["store"], t["video_id"], p["scores"], p["method"])
              for t in sorted(prediction_tasks(runs), key=lambda t: t["video_id"]) for p in t["preds"]]
    per_video = pd.concat([pv_h, pv_b], ignore_index=True)
    summary = pd.concat([sum_h, sum_b], ignore_index=True)
    return per_video, summary, err_h + err_b, curves


def report_notes(setup: DemoSetup) -> list[str]:
    c = setup.corpus
    return [
        setup.weights_line,
        f"Corpus: {c.n_synthetic} synthetic videos of {c.seconds[0]:g}-{c.seconds[1]:g} s at {c.fps} fps "
        f"with shots of {c.shot_seconds[0]:g}-{c.shot_seconds[1]:g} s; a warm palette (red well "
        f"above blue) marks the important shots ({c.p_important:.0%} of them); each of "
        f"{c.n_annotators} simulated annotators per video marks a shot with a chance that grows "
        "with its warmth (0.55-1 for important shots, 0-0.15 for the others). Three real sample "
        "clips are extracted and summarised but not annotated.",
        f"Extraction: {setup.extract_line} (2 steps per second; ST3D on short clips to fit a 2-core "
        "CPU: its default is 16 frames).",
        "Training: " + "; ".join(f"{h.run} = {h.why}, {setup.epochs or h.epochs} epochs" for h in DEMO_HEADS)
        + ". 4 folds: every annotated video is tested once, by a model that never saw it.",
        "CRSum (end to end from frames) is not trained in the demo: it does not fit the CPU budget.",
    ]


def print_results(summary) -> None:
    from jobs.report import print_table

    print_table(summary, metrics=("f1_avg", "f1_max", "kendall_tau_frame", "spearman_rho_frame"))
    f = summary[(summary["metric"] == "f1_avg")
                & ((summary["split"] == "all") | (summary["method"].isin(["random", "human-loo"])))]
    by = f.groupby("method")["mean"].first()
    if "random" in by:
        gains = ", ".join(f"{h.run} {by[h.run] - by['random']:+.3f}" for h in DEMO_HEADS if h.run in by)
        print(f"F1 (avg) minus random's: {gains}")


def train_and_report(setup: DemoSetup, stages) -> tuple[int, dict]:
    """-> (exit code, {"report": path, "summary_video": path or None})."""
    from jobs.report import write_report
    from stores.importers.common import import_annotations
    from stores.importers.jsonfmt import read_json

    stages.start("training", "3. annotations, splits, training (Ray tasks)")
    result = import_annotations(read_json(str(setup.annotations)), setup.store)
    print(result.line("demo", setup.store))
    splits = demo_splits(setup.store, setup.out)
    print(f"splits: {splits} (4 folds over the annotated videos)")
    runs = train_heads(setup, splits)

    stages.start("evaluation", "4. evaluation (Dask): heads beside the baselines, report.html")
    per_video, summary, errors, curves = evaluate_all(setup, runs)
    report = setup.out / "report"
    write_report(per_video, summary, report, "vsum demo", curves, notes=report_notes(setup))
    print()
    print_results(summary)
    for e in errors:
        print(e, file=sys.stderr)

    stages.start("summary", "5. summary video of a real clip (vsum summarize)")
    video = summary_video(setup, Path(runs[0]))
    return (1 if errors or video is None else 0), {"report": report / "report.html", "summary_video": video}


def summary_video(setup: DemoSetup, run: Path) -> Path | None:
    from jobs.summarize import summarize

    ckpt = run / "split=0" / "seed=0" / "checkpoint.pt"
    out = setup.out / "summary" / f"{setup.summary_clip.stem}_summary.mp4"
    print(f"vsum summarize {setup.summary_clip} --checkpoint {ckpt} --out {out}")
    res = summarize(str(setup.summary_clip), str(ckpt), str(out))
    print(f"summary: {len(res['shots'])} shots, {res['summary_duration_s']:.1f} s of "
          f"{res['duration_s']:.1f} s")
    return Path(res["outputs"]["video"]) if res["outputs"]["video"] else None
