"""``vsum bench NAME``: benchmarks as jobs. Each module in BENCH_MODULES exposes
``register(subparsers)``; every benchmark prints a table of ratios measured in one run and
writes JSON (``--out``)."""
from __future__ import annotations

import importlib

BENCH_MODULES = [
    "jobs.bench.extract",  # decode / extraction vs ffmpeg, model-only; --peer: vs DSNet-style peer
    "jobs.bench.kts",      # KTS vs the reference algorithm
    "jobs.bench.eval",     # evaluation at VTW scale, Dask vs loop
    "jobs.bench.eval_external",  # other codebases' files vs a vsum run, per-video cost
    "jobs.bench.train",    # head epochs, data-path share, Ray parallel splits
    "jobs.bench.scale",    # 1,000 tiny videos through the Ray job
    "jobs.bench.backends", # CPU execution paths: eager, torch.compile, ONNX Runtime
]


def register(sub) -> None:
    p = sub.add_parser("bench", help="benchmarks (ratios measured in one run)")
    bench_sub = p.add_subparsers(dest="bench_command", required=True, parser_class=type(p))
    for name in BENCH_MODULES:
        importlib.import_module(name).register(bench_sub)
