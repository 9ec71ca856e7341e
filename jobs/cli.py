"""The ``vsum`` command line: one sub-command per job module, and the one place errors are shown.

Each module listed in COMMAND_MODULES exposes ``register(subparsers)``, which adds its parser and
sets ``func`` (called with the parsed args; its return value is the exit code). Modules keep
heavy imports (torch, ray, dask) inside their ``run`` functions so ``vsum --help`` stays fast.

Exit codes (``pipeline/errors.py``): 0 success, 1 some items failed, 2 usage or input error,
3 store in use. A ``VsumError`` raised anywhere below prints one line and exits with its code;
anything unexpected prints one line naming the exception and a log file with the traceback
(``VSUM_DEBUG=1`` prints the traceback instead).
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

from pipeline.errors import EXIT_PARTIAL, EXIT_USAGE, VsumError

COMMAND_MODULES = [
    "jobs.extract",        # vsum extract
    "jobs.store_cmd",      # vsum store info|check|export-h5|import-h5|synth
    "jobs.kts_job",        # vsum kts
    "jobs.import_cmd",     # vsum import tvsum|summe|json
    "jobs.evaluate",       # vsum evaluate
    "jobs.baselines",      # vsum baselines
    "jobs.train",          # vsum train
    "jobs.reproduce",      # vsum reproduce
    "jobs.summarize",      # vsum summarize
    "jobs.demo",           # vsum demo
    "jobs.bench.cli",      # vsum bench extract|kts|eval|train|scale
]


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (``vsum extract: error: …``) and exit 2, not
    the whole usage block: the full usage is one ``--help`` away."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="vsum", description="vsum: video summarization feature store, heads "
                                                    "and evaluation")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def command_name(args: argparse.Namespace) -> str:
    """'store check', 'import tvsum', 'bench kts', 'extract', …"""
    parts = [args.command]
    for attr in ("store_command", "dataset", "bench_command"):
        value = getattr(args, attr, None)
        if isinstance(value, str) and args.command in ("store", "import", "bench"):
            parts.append(value)
            break
    return " ".join(parts)


def debug_on() -> bool:
    """``VSUM_DEBUG`` set to anything but empty/0/false/no."""
    return os.environ.get("VSUM_DEBUG", "").strip().lower() not in ("", "0", "false", "no", "off")


def log_traceback(command: str) -> Path | None:
    """Write the current exception's traceback to a log file; returns its path (None when no
    log folder is writable: the one line must still come out)."""
    folder = Path(os.environ.get("VSUM_LOG_DIR") or Path(tempfile.gettempdir()) / "vsum-logs")
    path = folder / f"vsum-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path.write_text(f"vsum {command}\nargv: {sys.argv}\n\n{traceback.format_exc()}")
    except OSError:
        return None
    return path


def unexpected_line(command: str, e: BaseException, log: Path | None) -> str:
    what = " ".join(str(e).split())[:200]
    where = f"traceback in {log}" if log else "no log folder writable"
    return f"vsum {command}: unexpected {type(e).__name__}: {what} ({where}; VSUM_DEBUG=1 prints it)"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command = command_name(args)
    try:
        return int(args.func(args) or 0)
    except VsumError as e:
        if debug_on():
            traceback.print_exc()
        print(e.line(command), file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(f"vsum {command}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - the one place an unexpected error is shown
        if debug_on():
            traceback.print_exc()
            return EXIT_PARTIAL
        print(unexpected_line(command, e, log_traceback(command)), file=sys.stderr)
        return EXIT_PARTIAL


if __name__ == "__main__":
    sys.exit(main())
