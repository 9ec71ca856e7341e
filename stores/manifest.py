"""The Parquet manifest: one row per video, written by the job driver only.

Columns: video_id, source, status ("complete" | "failed" | "skipped"), error (one line),
n_frames, n_frames_container, fps, duration_s, n_steps, worker (host:pid), node (Ray node id
prefix), started/finished (epoch seconds, inside the worker), plus ``sec_<stage>`` timings.
Ray's own retries of a crashed worker are not counted in the row. Rewritten atomically after
each batch of results, so a killed driver leaves the previous consistent version; one row per
video (the newest result wins).
"""
from __future__ import annotations

import io

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from stores import layout
from stores.location import fs_and_path, is_url

STATUSES = ("complete", "failed", "skipped")


def manifest_uri(store_path: str) -> str:
    return f"{str(store_path).rstrip('/')}/{layout.MANIFEST}"


def read_manifest(store_path: str, storage_options: dict | None = None) -> pd.DataFrame:
    fs, path = fs_and_path(manifest_uri(store_path), storage_options)
    if not fs.exists(path):
        return pd.DataFrame(columns=["video_id", "source", "status", "error"])
    with fs.open(path, "rb") as f:
        return pq.read_table(f).to_pandas()


class Manifest:
    """In-driver view of the manifest; ``update`` replaces a video's row, ``save`` persists."""

    def __init__(self, store_path: str, storage_options: dict | None = None):
        self.store_path = str(store_path)
        self.storage_options = storage_options
        df = read_manifest(self.store_path, storage_options)
        self.rows: dict[str, dict] = {r["video_id"]: r for r in df.to_dict("records")}

    def update(self, row: dict) -> None:
        self.rows[row["video_id"]] = {**self.rows.get(row["video_id"], {}), **row}

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(list(self.rows.values()))

    def save(self) -> None:
        fs, path = fs_and_path(manifest_uri(self.store_path), self.storage_options)
        buf = io.BytesIO()
        pq.write_table(pa.Table.from_pandas(self.frame(), preserve_index=False), buf)
        data = buf.getvalue()
        if is_url(self.store_path):
            fs.pipe_file(path, data)  # one PUT: atomic on object stores
        else:
            fs.makedirs(fs._parent(path), exist_ok=True)
            tmp = path + ".tmp"
            fs.pipe_file(tmp, data)
            fs.mv(tmp, path)  # rename: atomic on a local disk
