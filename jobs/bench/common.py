"""What every benchmark measures with: an RSS sampler, a timer, the machine's load, a JSON writer.

    with RssSampler() as rss:          # samples this process (and, optionally, its children)
        ...
    rss.peak_mb                        # highest RSS seen, MiB
    seconds, value = timed(fn, *args)  # wall seconds of one call
    write_json(path, figures)          # figures as JSON (numpy scalars and paths made plain)
"""
from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path


class RssSampler:
    """Resident memory every ``period`` s in a background thread: ``samples`` [(t, bytes)].

    ``children=True`` adds the RSS of every descendant process (e.g. Ray workers of a job
    started from this process), so a job's whole footprint is one number."""

    def __init__(self, period: float = 0.05, pid: int | None = None, children: bool = False):
        import psutil

        self.proc = psutil.Process(pid or os.getpid())
        self.period, self.children = period, children
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._t0 = time.perf_counter()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def rss(self) -> int:
        import psutil

        total = self.proc.memory_info().rss
        if self.children:
            for child in self.proc.children(recursive=True):
                try:
                    total += child.memory_info().rss
                except psutil.Error:  # the child ended between listing and reading
                    pass
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.perf_counter() - self._t0, self.rss()))
            self._stop.wait(self.period)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append((time.perf_counter() - self._t0, self.rss()))

    @property
    def peak_mb(self) -> float:
        return max(b for _, b in self.samples) / 2**20 if self.samples else 0.0

    def at(self, frac: float) -> int:
        """RSS (bytes) at a fraction of the run's duration."""
        t_end = self.samples[-1][0]
        return next(b for t, b in self.samples if t >= frac * t_end)


def timed(fn, *args, **kwargs):
    """(wall seconds, fn's return value) of one call."""
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - t0, out


def machine_load() -> dict:
    """What the figures were measured under: 1-minute load average, cores, torch threads."""
    load1 = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return {"load_1min": round(load1, 2), "cpus": os.cpu_count()}


def _plain(obj):
    if hasattr(obj, "item"):  # numpy scalar
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    return str(obj)


def write_json(path: str | Path | None, figures: dict) -> None:
    """Write ``figures`` as indented JSON (no-op when ``path`` is None)."""
    if path is None:
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(figures, indent=2, default=_plain))
