"""The manifest's storage: numbered, append-only parts, each written whole and never rewritten.

    <store>/manifest/0000000001.parquet     one part: rows + what kind of part it is
    <store>/manifest/0000000002.parquet
    <store>/manifest.parquet                 the single-file manifest of older stores (part 0)

Part kinds (in the Parquet file's key-value metadata ``vsum_part``, with the writer's ``job`` id):
    open      a writer (a job, an importer, ``vsum kts`` ...) is about to change videos; written
              before its first group write, so a writer that dies leaves this mark behind
    rows      rows a writer saved while it runs (only the rows changed since its last save)
    snapshot  a writer closed: every row merged, plus the store's index column (``index``, one
              JSON entry per video group: stores/index.py) and whether that index is ``trusted``

Writing a part is atomic: one PUT on object storage (created only if that number is free:
``If-None-Match: *``), a private temporary file hard-linked into place on a local disk. A
writer killed mid-write leaves no part (at worst a ``.tmp`` file, which readers skip), so every
part a reader sees is whole. Merging: rows of later parts replace rows of earlier ones (the
newest row of a video wins), so a part written twice (a save repeated after a kill) duplicates
nothing.
"""
from __future__ import annotations

import inspect
import io
import json
import os
import re
import uuid
from dataclasses import dataclass, field

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from stores import layout
from stores.location import fs_and_path

META_KEY = b"vsum_part"
INDEX_COLUMN = "index"
_PART = re.compile(r"^(\d{10})\.parquet$")
EMPTY_COLUMNS = ["video_id", "source", "status", "error"]


@dataclass
class Part:
    seq: int
    kind: str  # open | rows | snapshot
    job: str
    rows: pd.DataFrame
    info: dict = field(default_factory=dict)  # everything in the part's metadata


class PartStore:
    """The parts of one store's manifest: list, read, write, delete."""

    def __init__(self, store_path: str, storage_options: dict | None = None):
        base = str(store_path).rstrip("/")
        self.store_path = base
        self.fs, self.dir = fs_and_path(f"{base}/{layout.MANIFEST_DIR}", storage_options)
        self.legacy = fs_and_path(f"{base}/{layout.MANIFEST}", storage_options)[1]

    # -- reading ---------------------------------------------------------------------------
    def list(self) -> list[tuple[int, str]]:
        """(seq, path) of every part, oldest first; the legacy file is seq 0."""
        out = []
        try:
            names = self.fs.ls(self.dir, detail=False, refresh=True)
        except (FileNotFoundError, NotADirectoryError):
            names = []
        for p in names:
            m = _PART.match(p.rstrip("/").rsplit("/", 1)[-1])
            if m:
                out.append((int(m.group(1)), p))
        if not out and self.fs.exists(self.legacy):  # (gone once a writer has closed)
            out.append((0, self.legacy))
        return sorted(out)

    def read(self, listing: list[tuple[int, str]] | None = None) -> list[Part]:
        """Every part, oldest first; all fetched in one concurrent batch (one GET each)."""
        listing = self.list() if listing is None else listing
        if not listing:
            return []
        blobs = cat_many(self.fs, [p for _, p in listing])
        parts = []
        for seq, path in listing:
            data = blobs.get(path)
            if isinstance(data, FileNotFoundError):
                continue  # removed by a writer's clean-up between the listing and the read
            if isinstance(data, BaseException):
                raise data
            parts.append(_decode(seq, data))
        return parts

    # -- writing ---------------------------------------------------------------------------
    def write(self, seq: int, kind: str, job: str, rows: pd.DataFrame, **info) -> int:
        """Write a part as number ``seq``, or the next free number if another writer took it.
        -> the number used."""
        meta = {"kind": kind, "job": job, **info}
        data = _encode(rows, meta)
        self.fs.makedirs(self.dir, exist_ok=True)
        for _ in range(1000):
            if self._create(f"{self.dir}/{seq:010d}.parquet", data):
                return seq
            seq = max(seq + 1, max((s for s, _ in self.list()), default=0) + 1)
        raise RuntimeError(f"{self.dir}: no free part number after 1000 tries")

    def _create(self, path: str, data: bytes) -> bool:
        """Create ``path`` with ``data`` atomically; False when it already exists."""
        proto = self.fs.protocol if isinstance(self.fs.protocol, str) else self.fs.protocol[0]
        if proto in ("file", "local"):
            tmp = f"{os.path.dirname(path)}/.{os.path.basename(path)}.{uuid.uuid4().hex[:8]}.tmp"
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            try:
                os.link(tmp, path)  # atomic, and fails when the number is taken
                return True
            except FileExistsError:
                return False
            finally:
                os.remove(tmp)
        try:  # object storage: one conditional PUT, whole or nothing
            self.fs.pipe_file(path, data, mode="create")
            return True
        except FileExistsError:
            return False

    def delete(self, seqs) -> None:
        """Remove the parts numbered ``seqs`` (0: the legacy file); one request on S3."""
        paths = [self.legacy if s == 0 else f"{self.dir}/{s:010d}.parquet" for s in sorted(seqs)]
        if paths and getattr(self.fs, "async_impl", False):
            self.fs.rm(paths)  # one batched DELETE; keys already gone are not an error
            return
        for p in paths:
            try:
                self.fs.rm_file(p)
            except FileNotFoundError:
                pass


def cat_many(fs, paths: list[str], batch_size: int | None = None) -> dict:
    """path -> bytes (or the exception) for every path. On an async filesystem (S3 ...) one
    concurrent batch of at most ``batch_size`` GETs at a time, and one request per object (s3fs
    otherwise asks each object's size first, to decide whether to fetch it in parts)."""
    if not paths:
        return {}
    extra = {}
    if getattr(fs, "async_impl", False):
        extra["batch_size"] = batch_size
        if "max_concurrency" in inspect.signature(fs._cat_file).parameters:
            extra["max_concurrency"] = 1
    out = fs.cat(list(paths), on_error="return", **extra)
    return out if isinstance(out, dict) else {paths[0]: out}


# -- encoding ------------------------------------------------------------------------------------
def _encode(rows: pd.DataFrame, meta: dict) -> bytes:
    table = pa.Table.from_pandas(rows.reset_index(drop=True), preserve_index=False)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}),
                                           META_KEY: json.dumps(meta).encode()})
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue()


def _decode(seq: int, data: bytes) -> Part:
    table = pq.read_table(io.BytesIO(data))
    raw = (table.schema.metadata or {}).get(META_KEY)
    meta = json.loads(raw) if raw else {"kind": "rows", "job": "legacy"}  # the old single file
    return Part(seq=seq, kind=meta.get("kind", "rows"), job=meta.get("job", ""),
                rows=table.to_pandas(), info=meta)


# -- merging -------------------------------------------------------------------------------------
def merged_rows(parts: list[Part]) -> pd.DataFrame:
    """One row per video across the parts (later parts win), manifest columns only."""
    frames = [p.rows.drop(columns=[INDEX_COLUMN], errors="ignore") for p in parts if len(p.rows)]
    frames = [f[f["status"].notna()] for f in frames if "status" in f]
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame(columns=EMPTY_COLUMNS)
    df = pd.concat(frames, ignore_index=True)
    df = df.drop_duplicates("video_id", keep="last").sort_values("video_id", kind="stable")
    return df.reset_index(drop=True)
