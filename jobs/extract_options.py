"""``vsum extract``'s options: declared once, checked before any work, turned into configs.

    args --(check_args: one UsageError line per bad value)--> (ExtractConfig, ExtractorOptions)

Nothing here opens a file, imports torch or starts Ray: the weights' files are resolved next
(``pipeline/features/weights.py``), still before the store or its lease exist.
"""
from __future__ import annotations

import math
import sys

from pipeline.errors import UsageError

DEVICES = ("auto", "cpu", "cuda")
HWACCELS = ("none", "cuda")
# Ranges a run can use; outside them a value is a typo, not a choice.
RANGES = {"every": (1, 10_000), "batch_size": (1, 4096), "clip_len": (2, 128), "spatial": (1, 7),
          "frames": (8, 1024), "workers": (1, 100_000), "threads_per_worker": (1, 256)}


def add_extract_options(p) -> None:
    """The extractor/sampling options of ``vsum extract``."""
    p.add_argument("--features", default="googlenet",
                   help="comma-separated extractors: googlenet,st3d,i3d (and 'frames' or --frames)")
    p.add_argument("--weights", default="pretrained", metavar="SPEC",
                   help="pretrained (default: torch hub cache, else a hash-checked download) | random | "
                        "PATH, for every extractor, or per extractor: googlenet=PATH,st3d=pretrained,i3d=random")
    p.add_argument("--weights-url", default=None, metavar="BASE",
                   help="mirror for pretrained files: BASE/<torchvision file name> (default: $VSUM_WEIGHTS_URL)")
    p.add_argument("--i3d-weights", default=None, metavar="PATH", help="alias of --weights i3d=PATH")
    p.add_argument("--every", type=int, default=15, help="sample every N-th decoded frame (default 15)")
    p.add_argument("--fps", type=float, default=None, help="sample by presentation time instead")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--st3d-arch", default="r3d_18", choices=["r3d_18", "r2plus1d_18"])
    p.add_argument("--spatial", type=int, default=None, help="pool 3-D maps to SxS (1 = vector, at most 7)")
    p.add_argument("--clip-len", type=int, default=16, help="frames per 3-D clip (2..128)")
    p.add_argument("--frames", type=int, default=None, metavar="SIZE",
                   help="also store raw frame shards [T, SIZE, SIZE, 3] (8..1024)")
    p.add_argument("--no-kts", action="store_true", help="do not compute KTS change points")
    p.add_argument("--kts-center", action="store_true",
                   help="KTS on mean-subtracted features (for random-init features; not DSNet's recipe)")
    p.add_argument("--device", default="auto", choices=DEVICES,
                   help="auto (default: a GPU per worker when the cluster has GPUs) | cpu | cuda")
    p.add_argument("--backend", default="eager", choices=["eager", "compile", "onnx"],
                   help="GoogLeNet's execution path on the CPU: eager (default) | compile (torch.compile) "
                        "| onnx (ONNX Runtime; ~2x eager on 2 cores, `vsum bench backends`); the model is "
                        "exported or compiled once per actor (10-15 s); features equal eager's to ~1e-5")
    p.add_argument("--hwaccel", default="none", choices=HWACCELS,
                   help="hardware video decoding (falls back to software, recorded in the store)")


def add_worker_options(p) -> None:
    """How ``vsum extract`` spreads over the cluster (``jobs/placement.py``)."""
    p.add_argument("--workers", type=int, default=None,
                   help="actors (default: cluster GPUs / --gpus-per-worker on GPUs, else CPUs / threads)")
    p.add_argument("--threads-per-worker", type=int, default=1, help="torch threads (and CPUs) per actor")
    p.add_argument("--gpus-per-worker", type=float, default=1.0,
                   help="GPU share per actor when on GPUs (default 1; 0.25 = four actors per GPU)")


def check_args(args) -> list[str]:
    """Every option's value, checked; returns the extractor names. One UsageError line per problem."""
    from pipeline.features.catalog import EXTRACTOR_NAMES

    names = list(dict.fromkeys(n.strip() for n in args.features.split(",") if n.strip()))
    if args.frames and "frames" not in names:
        names.append("frames")
    if not names:
        raise UsageError("--features is empty (choose from googlenet, st3d, i3d, frames)")
    unknown = [n for n in names if n not in EXTRACTOR_NAMES]
    if unknown:
        raise UsageError(f"unknown extractor {unknown[0]!r} in --features (known: {', '.join(EXTRACTOR_NAMES)})")
    if args.fps is not None and not (math.isfinite(args.fps) and args.fps > 0):
        raise UsageError(f"--fps must be a positive number of frames per second, got {args.fps}")
    checks = {"every": args.every, "batch_size": args.batch_size, "clip_len": args.clip_len,
              "spatial": args.spatial, "frames": args.frames}
    for key in ("workers", "threads_per_worker"):
        if hasattr(args, key):
            checks[key] = getattr(args, key)
    for key, value in checks.items():
        lo, hi = RANGES[key]
        if value is not None and not lo <= value <= hi:
            raise UsageError(f"--{key.replace('_', '-')} {value} is out of range ({lo}..{hi})")
    gpw = getattr(args, "gpus_per_worker", 1.0)
    if not (gpw > 0 and (gpw <= 1 or float(gpw).is_integer())):
        raise UsageError(f"--gpus-per-worker {gpw}: a share in (0, 1] or a whole number of GPUs")
    return names


def configs_from_args(args):
    """(ExtractConfig, ExtractorOptions) from parsed CLI args, every value checked first."""
    from jobs.extract_video import ExtractConfig
    from pipeline.decode import SampleRule
    from pipeline.features.base import ExtractorOptions
    from pipeline.features.weights import parse_weights_option

    names = check_args(args)
    if "auto" in [s.partition("=")[2] or s for s in str(args.weights).split(",")]:
        print("note: --weights auto is deprecated and now means pretrained (it no longer falls back "
              "to random weights)", file=sys.stderr)
    weights = parse_weights_option(args.weights, names, getattr(args, "i3d_weights", None))
    opts = ExtractorOptions(weights=weights, weights_url=args.weights_url, device=args.device,
                            batch_size=args.batch_size, st3d_arch=args.st3d_arch, spatial=args.spatial,
                            clip_len=args.clip_len, frames_size=args.frames or 128,
                            backend=getattr(args, "backend", "eager"))
    sample = SampleRule(every=None, fps=args.fps) if args.fps else SampleRule(every=args.every)
    kts = None
    if not args.no_kts:
        from pipeline.kts import KTSParams

        kts = KTSParams(center=bool(getattr(args, "kts_center", False)))
    cfg = ExtractConfig(features=tuple(names), sample=sample, kts=kts, batch_size=args.batch_size,
                        hwaccel=None if args.hwaccel == "none" else args.hwaccel)
    return cfg, opts
