"""The user-facing error family and the exit-code table every ``vsum`` command follows.

    0  success
    1  some items failed (partial: the rest was done and kept), or an unexpected internal error
    2  usage or input error (a bad option, a missing or unreadable file, missing weights)
    3  store in use (another job holds the store's lease)

Raise the right kind where the problem is found; only the entry point (``jobs/cli.py``) prints
it, as one line ``vsum <command>: <what> (<file>)``. The family lives in ``pipeline/`` because
that is the bottom layer: ``stores/``, ``heads/`` and ``jobs/`` may all raise it.
"""
from __future__ import annotations

EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, EXIT_BUSY = 0, 1, 2, 3


class VsumError(Exception):
    """A problem the user can fix. ``what`` is one line; ``file`` names the file or store."""

    exit_code = EXIT_USAGE

    def __init__(self, what: str, file: str | None = None):
        self.what = " ".join(str(what).split())  # one line, whatever the caller passed
        self.file = None if file is None else str(file)
        super().__init__(self.what if self.file is None else f"{self.what} ({self.file})")

    def line(self, command: str) -> str:
        """``vsum <command>: <what> (<file>)``"""
        return f"vsum {command}: {self}"


class UsageError(VsumError):
    """A bad option or combination of options."""


class InputError(VsumError):
    """An input file that is missing, unreadable or not what it should be."""


class StoreError(VsumError):
    """A store that does not exist, is not a vsum store, or cannot be read or written."""


class WeightsError(VsumError):
    """Model weights that cannot be had, or a weights file that is missing, unreadable or wrong."""


class StoreNotFound(StoreError, FileNotFoundError):
    """No store at that path or URL. Also a ``FileNotFoundError``, so "a new store" checks
    (``except FileNotFoundError``) keep working whichever layer raised it."""


class StoreBusy(StoreError):
    """Another job holds the store's lease."""

    exit_code = EXIT_BUSY
