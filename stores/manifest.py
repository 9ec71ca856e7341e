"""The manifest: one row per video (what a writer did to it), and the store's index.

Columns: video_id, source, status ("complete" | "failed" | "skipped"), error (one line),
n_frames, n_frames_container, fps, duration_s, n_steps, worker (host:pid), node (Ray node id
prefix), started/finished (epoch seconds, inside the worker), plus ``sec_<stage>`` timings.
Ray's own retries of a crashed worker are not counted in the row.

Storage: append-only parts (stores/manifest_parts.py). A writer's life:

    m = Manifest(store)      # writes an ``open`` part BEFORE the writer changes any group
    m.update(row) ...        # in memory
    m.save()                 # every few seconds: a part with the rows changed since the last
    m.close()                # at the end: a snapshot (every row + the refreshed index) that
                             # replaces the older parts

So a long job writes a few small parts instead of rewriting the whole table every few seconds
(its own parts are folded into one every ``COMPACT_EVERY`` saves). A driver killed at any point
leaves whole parts only; readers merge them (the newest row of a video wins), so nothing is lost
or duplicated, and the ``open`` part it leaves tells every reader that the index may be stale
until the next writer closes (stores/index.py). ``read_manifest`` returns the merged table.
"""
from __future__ import annotations

import json
import os
import socket
import sys
import time
import uuid
from contextlib import contextmanager

import pandas as pd

from stores.manifest_parts import INDEX_COLUMN, PartStore, merged_rows

STATUSES = ("complete", "failed", "skipped")
COMPACT_EVERY = 32  # a writer's own row parts are folded into one after this many saves


def read_manifest(store_path: str, storage_options: dict | None = None) -> pd.DataFrame:
    """Every video's newest row, merged over the parts (empty table when there is none)."""
    return merged_rows(PartStore(store_path, storage_options).read())


class Manifest:
    """A writer's handle on the manifest: creating it marks the store open for writing."""

    def __init__(self, store_path: str, storage_options: dict | None = None, command: str = ""):
        self.store_path = str(store_path)
        self.storage_options = storage_options
        self.parts = PartStore(self.store_path, storage_options)
        listing = self.parts.list()
        self.rows: dict[str, dict] = {r["video_id"]: r for r in
                                      merged_rows(self.parts.read(listing)).to_dict("records")}
        self.job = uuid.uuid4().hex
        self._mine: set[str] = set()  # videos this writer updated (rows)
        self._changed: set[str] = set()  # videos whose groups it changed (read again at close)
        self._unsaved: set[str] = set()
        self._row_parts: list[int] = []
        info = {"command": command or _command(), "host": socket.gethostname(), "pid": os.getpid(),
                "started": time.time()}
        first = max((s for s, _ in listing), default=0) + 1
        self.open_seq = self.parts.write(first, "open", self.job, pd.DataFrame(), **info)
        self._next = self.open_seq + 1
        self.closed = False

    # -- rows -----------------------------------------------------------------------------
    def update(self, row: dict) -> None:
        """Replace (merge into) a video's row; the video counts as changed by this writer."""
        vid = row["video_id"]
        self.rows[vid] = {**self.rows.get(vid, {}), **row}
        self._mine.add(vid)
        self._changed.add(vid)
        self._unsaved.add(vid)

    def mark_changed(self, video_id: str) -> None:
        """This writer changed the video's group without a row (e.g. labels joined to it)."""
        self._changed.add(video_id)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(list(self.rows.values()))

    # -- persisting -----------------------------------------------------------------------
    def save(self) -> None:
        """Append the rows changed since the last save as one part (nothing when none)."""
        if not self._unsaved:
            return
        if len(self._row_parts) >= COMPACT_EVERY:  # fold this writer's parts into one
            ids, old = self._mine, list(self._row_parts)
        else:
            ids, old = self._unsaved, []
        seq = self._write("rows", self._frame_of(ids))
        self.parts.delete(old)
        self._row_parts = [s for s in self._row_parts if s not in old] + [seq]
        self._unsaved = set()

    def close(self) -> None:
        """The snapshot: every row and the index, brought up to date with what this writer
        changed; then the parts it replaces are removed."""
        from stores.index import index_for_snapshot

        listing = self.parts.list()
        parts = self.parts.read(listing)
        merged = {r["video_id"]: r for r in merged_rows(parts).to_dict("records")}
        merged.update({v: self.rows[v] for v in self._mine})
        others = {p.seq for p in parts if p.seq > self.open_seq and p.job != self.job}
        entries = index_for_snapshot(self.store_path, self.storage_options, parts,
                                     self.open_seq, self._changed)
        rows = []
        for vid in sorted(set(merged) | set(entries)):
            row = dict(merged.get(vid, {"video_id": vid}))
            row[INDEX_COLUMN] = json.dumps(entries[vid]) if vid in entries else None
            rows.append(row)
        seq = self._write("snapshot", pd.DataFrame(rows), trusted=not others,
                          n_videos=len(entries))
        # Parts of another writer that opened after this one stay: it may still be writing.
        self.parts.delete({s for s, _ in listing if s < seq and s not in others})
        self._unsaved = set()
        self.closed = True

    def _write(self, kind: str, rows: pd.DataFrame, **info) -> int:
        seq = self.parts.write(self._next, kind, self.job, rows, **info)
        self._next = seq + 1
        return seq

    def _frame_of(self, ids) -> pd.DataFrame:
        return pd.DataFrame([self.rows[v] for v in sorted(ids)])


@contextmanager
def writing(store_path: str, video_ids=(), storage_options: dict | None = None, command: str = ""):
    """For tools that change existing groups in place (``vsum kts``, ``plant_features``,
    ``import-h5``): the store is marked open before the body runs; when the body succeeds, the
    index is refreshed for ``video_ids`` (and whatever the body passes to ``mark_changed``).
    A body that raises leaves the store marked open, so readers re-read every group."""
    m = Manifest(store_path, storage_options, command=command)
    for v in video_ids:
        m.mark_changed(v)
    yield m
    m.close()


def _command() -> str:
    prog = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "python"
    return " ".join([prog, *sys.argv[1:2]])
