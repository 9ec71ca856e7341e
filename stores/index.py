"""The store's index: every video group's attributes and array shapes, in one read.

    entry = {"attrs":  {...the group's attributes, ``complete`` and ``config_hash`` among them},
             "arrays": {"picks": [[T], "int32"], "features/googlenet": [[T, 1024], "float32"], ...}
                       or None when only the attributes were read}

Who writes it: every writer when it closes (``Manifest.close``, stores/manifest.py) puts the
index into its manifest snapshot: the previous snapshot's entries with the videos it changed
read again, or every group read when there was no usable snapshot.

How ``load_index`` reads it, for planning, listing and opening a store:

1. the manifest parts (one LIST of ``manifest/``, one GET per part: normally one, the snapshot;
   read while step 2's listing runs);
   the snapshot is used when it is trusted and no writer has opened the store after it;
2. a listing of ``videos/`` (one LIST per 1,000 groups): groups the snapshot does not know are
   read now (a tool that adds groups without a manifest), groups that are gone are dropped;
3. otherwise (no snapshot yet, or a writer opened the store after it: still running or killed)
   every group is read, ``VSUM_METADATA_CONCURRENCY`` (default 32) at a time, and one line on
   stderr says so and why.

Never an incomplete video that looks complete: a writer writes its manifest ``open`` part before
it changes any group, and a snapshot is trusted only until the next ``open``; a video's own
``complete`` attribute stays the truth for whoever reads its data (``FeatureStore.is_complete``).
"""
from __future__ import annotations

import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from stores import layout
from stores.location import fs_and_path
from stores.manifest_parts import INDEX_COLUMN, Part, PartStore, cat_many

_SAID: set[tuple[str, str]] = set()


def concurrency() -> int:
    """How many metadata requests run at once (threads or one async batch)."""
    return max(1, int(os.environ.get("VSUM_METADATA_CONCURRENCY", "32")))


def bounded_map(fn, items: list, workers: int | None = None) -> list:
    """``[fn(x) for x in items]`` with at most ``workers`` calls in flight (threads), in order."""
    items = list(items)
    workers = min(workers or concurrency(), len(items))
    if workers <= 1:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="vsum-meta") as pool:
        return list(pool.map(fn, items))


@dataclass
class VideoIndex:
    """Every video group of a store: id -> entry (see the module docstring)."""

    entries: dict[str, dict]
    source: str  # "index" (the manifest's snapshot) or "scan" (every group read now)
    reason: str = ""  # why it scanned
    parts: list[Part] | None = None  # the manifest parts read with it (its rows: manifest_rows)

    def manifest_rows(self):
        """Every video's newest manifest row (pandas), from the parts read with the index."""
        from stores.manifest_parts import merged_rows

        return merged_rows(self.parts or [])

    def ids(self) -> list[str]:
        return sorted(self.entries)

    def complete_ids(self) -> list[str]:
        return sorted(v for v, e in self.entries.items() if e["attrs"].get(layout.COMPLETE))

    def attrs(self, video_id: str) -> dict:
        return dict(self.entries[video_id]["attrs"])

    def knows_arrays(self, video_id: str) -> bool:
        e = self.entries.get(video_id)
        return e is not None and e.get("arrays") is not None

    def array(self, video_id: str, path: str) -> tuple[tuple[int, ...], str] | None:
        """(shape, dtype) of ``videos/<id>/<path>``, None when the entry has no such array."""
        found = (self.entries[video_id].get("arrays") or {}).get(path)
        return (tuple(found[0]), found[1]) if found else None

    def arrays(self, video_id: str) -> dict[str, tuple[tuple[int, ...], str]]:
        return {p: (tuple(s), d) for p, (s, d) in (self.entries[video_id].get("arrays") or {}).items()}


class GroupReader:
    """Reads video groups' metadata straight from the store's files (Zarr v3 ``zarr.json``)."""

    def __init__(self, store_path: str, storage_options: dict | None = None):
        self.fs, root = fs_and_path(str(store_path).rstrip("/"), storage_options)
        self.videos = f"{root.rstrip('/')}/{layout.VIDEOS}"

    def names(self) -> list[str]:
        """Every folder under ``videos/``: one listing (paginated: a request per 1,000)."""
        try:
            found = self.fs.ls(self.videos, detail=True, refresh=True)
        except (FileNotFoundError, NotADirectoryError):
            return []
        return sorted(e["name"].rstrip("/").rsplit("/", 1)[-1] for e in found if e["type"] == "directory")

    def attrs(self, ids: list[str]) -> dict[str, dict | None]:
        """Each group's attributes (None: no group), fetched as one concurrent batch."""
        paths = {f"{self.videos}/{v}/zarr.json": v for v in ids}
        blobs = self._cat(list(paths))
        return {v: _group_attrs(blobs.get(p)) for p, v in paths.items()}

    def describe(self, ids: list[str]) -> dict[str, dict | None]:
        """Each group's entry with its arrays (None: no group); groups read in parallel."""
        return dict(zip(ids, bounded_map(self._describe_one, list(ids))))

    def _describe_one(self, vid: str) -> dict | None:
        base = f"{self.videos}/{vid}"
        try:
            keys = self.fs.find(base)  # one listing of the group's objects
        except FileNotFoundError:
            return None
        metas = [k for k in keys if k.endswith("/zarr.json")]
        blobs = self._cat(metas)
        attrs = _group_attrs(blobs.get(f"{base}/zarr.json"))
        if attrs is None:
            return None
        arrays = {}
        for key, data in blobs.items():
            doc = _json(data)
            if doc and doc.get("node_type") == "array":
                arrays[key[len(base) + 1 : -len("/zarr.json")]] = [list(doc["shape"]), str(doc["data_type"])]
        return {"attrs": attrs, "arrays": dict(sorted(arrays.items()))}

    def _cat(self, paths: list[str]) -> dict:
        return cat_many(self.fs, paths, concurrency())


def _json(data) -> dict | None:
    if data is None or isinstance(data, BaseException):
        return None
    try:
        return json.loads(data)
    except ValueError:
        return None


def _group_attrs(data) -> dict | None:
    doc = _json(data)
    if not doc or doc.get("node_type") != "group":
        return None
    return dict(doc.get("attributes") or {})


# -- the snapshot in the manifest ----------------------------------------------------------------
def snapshot_entries(parts: list[Part], before: int | None = None) -> tuple[dict | None, str]:
    """(entries, "") from the newest snapshot among ``parts`` (those numbered below ``before``)
    when nothing was opened after it; (None, why not) otherwise."""
    parts = [p for p in parts if before is None or p.seq < before]
    snaps = [p for p in parts if p.kind == "snapshot"]
    if not snaps:
        return None, "the store has no index yet (no writer has closed its manifest)"
    snap = snaps[-1]
    if not snap.info.get("trusted"):
        return None, "its last index was written while another writer had the store open"
    later = [p for p in parts if p.seq > snap.seq]
    if later:
        who = later[0].info.get("command") or "a writer"
        return None, (f"{who} opened it after its index was written and has not closed it "
                      "(still running, or stopped)")
    if INDEX_COLUMN not in snap.rows:
        return {}, ""
    col = snap.rows[["video_id", INDEX_COLUMN]].dropna()
    return {v: json.loads(e) for v, e in zip(col["video_id"], col[INDEX_COLUMN])}, ""


def refresh(reader: GroupReader, entries: dict, names: list[str], reread=()) -> dict:
    """``entries`` brought up to date with the listing ``names``: gone groups dropped, unknown
    ones and ``reread`` ones read again (in parallel)."""
    present = set(names)
    reread = set(reread)
    out = {v: e for v, e in entries.items() if v in present and v not in reread}
    fresh = reader.describe(sorted(present - set(out)))
    out.update({v: e for v, e in fresh.items() if e is not None})
    return dict(sorted(out.items()))


def load_index(store_path: str, storage_options: dict | None = None, *, arrays: bool = True,
               quiet: bool = False) -> VideoIndex:
    """The store's index (see the module docstring). ``arrays=False``: a fallback scan reads
    only the groups' attributes (one GET each; enough for planning)."""
    reader = GroupReader(store_path, storage_options)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="vsum-meta") as pool:
        listing = pool.submit(reader.names)  # the two reads overlap: each costs round trips
        parts = PartStore(store_path, storage_options).read()
        names = listing.result()
    entries, reason = snapshot_entries(parts)
    if entries is not None:
        return VideoIndex(refresh(reader, entries, names), "index", parts=parts)
    if names and not quiet:
        say(store_path, f"{reason}; reading its {len(names)} video groups, {concurrency()} at a time")
    if arrays:
        found = reader.describe(names)
    else:
        found = {v: (None if a is None else {"attrs": a, "arrays": None})
                 for v, a in reader.attrs(names).items()}
    return VideoIndex({v: e for v, e in found.items() if e is not None}, "scan", reason, parts)


def say(store_path: str, line: str) -> None:
    """One line on stderr, once per store and reason in a process."""
    if (str(store_path), line) not in _SAID:
        _SAID.add((str(store_path), line))
        print(f"vsum: store index of {store_path}: {line}", file=sys.stderr)


def index_for_snapshot(store_path: str, storage_options: dict | None, parts: list[Part],
                       open_seq: int, changed) -> dict:
    """What a closing writer puts in its snapshot: the index as it was when the writer opened,
    with the groups it changed read again; every group read when there was no usable index."""
    base, reason = snapshot_entries(parts, before=open_seq)
    reader = GroupReader(store_path, storage_options)
    names = reader.names()
    if base is None:
        if names and any(p.seq < open_seq for p in parts):  # (a new manifest: nothing to say)
            say(store_path, f"{reason}; rebuilding it from its {len(names)} video groups")
        return {v: e for v, e in reader.describe(names).items() if e is not None}
    return refresh(reader, base, names, reread=changed)
