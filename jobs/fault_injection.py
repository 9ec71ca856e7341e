"""Fault injection for the extraction job's tests, driven by environment variables.

The tests kill or hang a worker inside one chosen video, including from a ``vsum extract``
subprocess (tests/test_faults.py), so the switch has to be an environment variable the driver
reads and hands to its actors. Nothing here runs unless one of these is set:

- ``VSUM_FAULT_EXIT_ON=<video id>``: the worker ``os._exit()``s inside that video's first model
  call, once (``VSUM_FAULT_DIR/<video id>.exited`` records the pid), so Ray's retry then
  succeeds; without ``VSUM_FAULT_DIR``, on every attempt.
- ``VSUM_FAULT_HANG_ON=<video id>``: the worker hangs inside that video (to kill a driver mid-run).
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass

_KEYS = ("VSUM_FAULT_EXIT_ON", "VSUM_FAULT_HANG_ON", "VSUM_FAULT_DIR")


@dataclass(frozen=True)
class Faults:
    """The faults asked for, read in the driver (workers on other nodes may lack its env)."""
    exit_on: str | None = None
    hang_on: str | None = None
    marker_dir: str | None = None

    def wrap(self, extractors: list, video_id: str) -> list:
        """``extractors`` for this video: the first one faulty when this video is the target."""
        if video_id not in (self.exit_on, self.hang_on):
            return extractors
        return [_FaultyExtractor(extractors[0], self, video_id), *extractors[1:]]


def faults_from_env() -> Faults | None:
    """The faults the environment asks for, or None (the normal case)."""
    env = {k: os.environ[k] for k in _KEYS if os.environ.get(k)}
    if not env:
        return None
    return Faults(env.get("VSUM_FAULT_EXIT_ON"), env.get("VSUM_FAULT_HANG_ON"), env.get("VSUM_FAULT_DIR"))


@dataclass
class _FaultyExtractor:
    inner: object
    faults: Faults
    video_id: str

    @property
    def spec(self):
        return self.inner.spec

    def __call__(self, batch):
        if self.faults.hang_on == self.video_id:
            time.sleep(3600)
        if self.faults.marker_dir is None:
            os._exit(17)  # every attempt: a video that always kills its worker
        marker = os.path.join(self.faults.marker_dir, f"{self.video_id}.exited")
        if not os.path.exists(marker):
            with open(marker, "w") as f:
                f.write(str(os.getpid()))
            os._exit(17)
        return self.inner(batch)
