"""The ``vsum`` command line: one sub-command per job module.

Each module listed in COMMAND_MODULES exposes ``register(subparsers)``, which adds its parser and
sets ``func`` (called with the parsed args; its return value is the exit code). Modules keep
heavy imports (torch, ray, dask) inside their ``run`` functions so ``vsum --help`` stays fast.
"""
from __future__ import annotations

import argparse
import importlib
import sys

COMMAND_MODULES = [
    "jobs.extract",        # vsum extract
    "jobs.store_cmd",      # vsum store info|check|export-h5|import-h5|synth
    "jobs.kts_job",        # vsum kts
    "jobs.import_cmd",     # vsum import tvsum|summe|json
    "jobs.evaluate",       # vsum evaluate
    "jobs.baselines",      # vsum baselines
    "jobs.train",          # vsum train
    "jobs.summarize",      # vsum summarize
    "jobs.demo",           # vsum demo
    "jobs.bench.cli",      # vsum bench extract|kts|eval|train|scale
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vsum", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        if importlib.util.find_spec(name) is None:  # module not written yet
            continue
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code = args.func(args)
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
