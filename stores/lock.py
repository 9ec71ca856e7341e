"""A job lease on a store: one writing job at a time, on a local disk or on object storage.

    <store>/vsum.lock.json   {"owner", "host", "pid", "pid_start", "command", "started",
                              "heartbeat", "ttl_s"}

Why a lease and not per-video claims: two drivers would both plan the same videos and
interleave their writes into one group. The second job refuses instead, with a clear message.

- Acquire = an exclusive create (`O_EXCL` locally; `PUT` with `If-None-Match: *` on S3, which
  AWS S3, MinIO and moto honour). Exactly one of several jobs started at once wins.
- A background thread rewrites ``heartbeat`` every ``ttl_s / 3`` seconds while the job runs.
- A lease is stale, and may be taken over, when its heartbeat is older than ``ttl_s`` or when
  its holder ran on this host and that process is gone (a SIGKILLed driver: the rerun need not
  wait). Takeover deletes the stale file and creates a new one exclusively, so two jobs taking
  over at once still end with one winner; the loser refuses.
- A holder whose lease was taken over (it stalled for longer than ``ttl_s``) notices at its next
  heartbeat: ``lost`` turns true and the job stops.

Limits: staleness compares wall clocks of different machines (keep them in NTP sync); a killed
driver's Ray actors may outlive it for a moment, so a rerun on another host should come after
the lease expires (the default ``ttl_s`` = 60 s covers that).
"""
from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
import uuid

from pipeline.errors import StoreBusy
from stores.location import fs_and_path

LOCK_NAME = "vsum.lock.json"
DEFAULT_TTL_S = 60.0


class StoreLocked(StoreBusy):
    """Another job holds the store (one line, says who and how to proceed)."""


def lock_uri(store: str) -> str:
    return f"{str(store).rstrip('/')}/{LOCK_NAME}"


def _pid_start(pid: int) -> float | None:
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


class StoreLock:
    """``with StoreLock(store, opts, command="vsum extract"):`` — raises StoreLocked when busy."""

    def __init__(self, store: str, storage_options: dict | None = None, ttl_s: float | None = None,
                 command: str = ""):
        self.store = str(store)
        self.ttl_s = float(ttl_s if ttl_s is not None else os.environ.get("VSUM_LOCK_TTL_S", DEFAULT_TTL_S))
        self.command = command
        self.fs, self.path = fs_and_path(lock_uri(store), storage_options)
        self.info = {"owner": uuid.uuid4().hex, "host": socket.gethostname(), "pid": os.getpid(),
                     "pid_start": _pid_start(os.getpid()), "command": command,
                     "started": time.time(), "heartbeat": time.time(), "ttl_s": self.ttl_s}
        self.lost = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- reading -----------------------------------------------------------------------------
    def read(self) -> dict | None:
        """The current lease, or None when there is none (or it is unreadable)."""
        try:
            return json.loads(self.fs.cat_file(self.path))
        except FileNotFoundError:
            return None
        except (ValueError, OSError):
            return {}  # half-written or garbage: treated as stale below

    def is_stale(self, info: dict, now: float | None = None) -> bool:
        if not info:
            return True
        now = time.time() if now is None else now
        if now - float(info.get("heartbeat", 0)) > float(info.get("ttl_s", self.ttl_s)):
            return True
        if info.get("host") == socket.gethostname():
            start = _pid_start(int(info.get("pid", -1)))
            if start is None or (info.get("pid_start") and abs(start - info["pid_start"]) > 1.0):
                return True  # that process is gone (or the pid was reused)
        return False

    # -- acquiring ---------------------------------------------------------------------------
    def _create(self) -> bool:
        data = json.dumps(self.info).encode()
        if _is_object_store(self.fs):
            try:  # one conditional PUT: the object appears whole or not at all
                self.fs.pipe_file(self.path, data, mode="create")
                return True
            except FileExistsError:
                return False
        # Local disk: write a private file, then hard-link it into place (atomic, fails if taken),
        # so no reader ever sees a half-written lease.
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        tmp = f"{self.path}.{self.info['owner']}.tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        try:
            os.link(tmp, self.path)
            return True
        except FileExistsError:
            return False
        finally:
            os.remove(tmp)

    def acquire(self) -> StoreLock:
        if self._create():
            return self._started()
        current = self.read()
        if current is not None and not self.is_stale(current):
            raise StoreLocked(self._busy_message(current))
        # Stale: remove it only if it is still the lease we judged, then race for a new one.
        if current is None or self.read() == current:
            try:
                self.fs.rm_file(self.path)
            except FileNotFoundError:
                pass
        if self._create():
            time.sleep(0.2)  # two takers racing: whoever's lease is not there now lost
            if (self.read() or {}).get("owner") == self.info["owner"]:
                return self._started()
        raise StoreLocked(self._busy_message(self.read() or {}))

    def _started(self) -> StoreLock:
        self._thread = threading.Thread(target=self._beat, name="vsum-lease", daemon=True)
        self._thread.start()
        return self

    def _beat(self) -> None:
        while not self._stop.wait(self.ttl_s / 3):
            with contextlib.suppress(OSError):  # transient storage error: the lease lasts ttl_s
                self.heartbeat()

    def heartbeat(self) -> None:
        """Refresh the lease; sets ``lost`` when another job has taken it over."""
        current = self.read()
        if not current or current.get("owner") != self.info["owner"]:
            self.lost = True
            self._stop.set()
            return
        self.info["heartbeat"] = time.time()
        data = json.dumps(self.info).encode()
        if _is_object_store(self.fs):
            self.fs.pipe_file(self.path, data)  # one PUT replaces the object atomically
        else:
            tmp = f"{self.path}.{self.info['owner']}.tmp"
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, self.path)  # readers never see a truncated lease

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        current = self.read()
        if current and current.get("owner") == self.info["owner"]:
            try:
                self.fs.rm_file(self.path)
            except FileNotFoundError:
                pass

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

    def _busy_message(self, info: dict) -> str:
        now = time.time()
        who = (f"{info.get('command') or 'a job'} on host {info.get('host', '?')}, pid {info.get('pid', '?')}, "
               f"started {now - float(info.get('started', now)):.0f} s ago, last heartbeat "
               f"{now - float(info.get('heartbeat', now)):.0f} s ago")
        return (f"{self.store}: store is in use by {who} (lease {lock_uri(self.store)}, expires "
                f"{float(info.get('ttl_s', self.ttl_s)):.0f} s after its last heartbeat). Wait for that "
                f"job to finish, or delete the lease file if you are sure it is dead.")


def _is_object_store(fs) -> bool:
    proto = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    return proto not in ("file", "local")
