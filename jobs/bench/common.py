"""What every benchmark measures with: an RSS sampler, a timer, the machine's load, a JSON writer.

    with RssSampler() as rss:          # samples this process (and, optionally, its children)
        ...
    rss.peak_mb                        # highest RSS seen, MiB
    seconds, value = timed(fn, *args)  # wall seconds of one call
    vsum_command()                     # ["…/bin/vsum"]: start the CLI in a subprocess
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
    started from this process), so a job's whole footprint is one number. Summed RSS counts
    shared pages (torch's libraries, mapped by every worker) once per process: an upper bound.
    ``pss=True`` also records the proportional set size (shared pages split between the
    processes that map them; Linux, ~2 ms per process and sample) in ``pss_samples``, whose
    sum over processes is the job's real share of memory."""

    def __init__(self, period: float = 0.05, pid: int | None = None, children: bool = False,
                 pss: bool = False):
        import psutil

        self.proc = psutil.Process(pid or os.getpid())
        self.period, self.children, self.pss = period, children, pss
        self.samples: list[tuple[float, int]] = []
        self.pss_samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._t0 = time.perf_counter()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _processes(self) -> list:
        import psutil

        procs = [self.proc]
        if self.children:
            try:
                procs += self.proc.children(recursive=True)
            except psutil.Error:  # the root ended
                pass
        return procs

    def measure(self) -> tuple[int, int]:
        """(RSS, PSS) in bytes summed over the sampled processes; PSS is 0 unless ``pss``."""
        import psutil

        rss = pss = 0
        for p in self._processes():
            try:
                if self.pss:
                    m = p.memory_full_info()
                    rss, pss = rss + m.rss, pss + m.pss
                else:
                    rss += p.memory_info().rss
            except psutil.Error:  # the process ended between listing and reading
                pass
        return rss, pss

    def rss(self) -> int:
        return self.measure()[0]

    def _sample(self) -> None:
        t = time.perf_counter() - self._t0
        rss, pss = self.measure()
        self.samples.append((t, rss))
        if self.pss:
            self.pss_samples.append((t, pss))

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.period)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    @property
    def peak_mb(self) -> float:
        return max(b for _, b in self.samples) / 2**20 if self.samples else 0.0

    @property
    def start_mb(self) -> float:
        return self.samples[0][1] / 2**20 if self.samples else 0.0

    @property
    def peak_pss_mb(self) -> float:
        return max(b for _, b in self.pss_samples) / 2**20 if self.pss_samples else 0.0

    def at(self, frac: float, pss: bool = False) -> int:
        """RSS (or PSS) in bytes at a fraction of the run's duration."""
        samples = self.pss_samples if pss else self.samples
        t_end = samples[-1][0]
        return next(b for t, b in samples if t >= frac * t_end)


def vsum_command() -> list[str]:
    """How to start ``vsum`` as users do, from this interpreter's environment."""
    import sys

    exe = Path(sys.executable).parent / "vsum"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "jobs.cli"]


def timed(fn, *args, **kwargs):
    """(wall seconds, fn's return value) of one call."""
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - t0, out


def machine_load() -> dict:
    """What the figures were measured under: the 1-minute load average and the cores."""
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
