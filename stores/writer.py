"""Write one video's group: streaming, chunk-aligned appends; ``complete`` written last.

A writer that dies leaves ``complete == False`` (or no attribute), which every reader treats as
absent; a rerun calls ``VideoWriter.begin`` again, which deletes the leftovers first.
"""
from __future__ import annotations

import numpy as np
import zarr
from zarr.codecs import BloscCodec

from stores import layout

COMPRESSOR = BloscCodec(cname="zstd", clevel=5, shuffle="bitshuffle")
# Write every chunk, even all-zero ones: a missing chunk then always means damage
# (`vsum store check` counts chunks), never "equal to the fill value".
ARRAY_CONFIG = {"write_empty_chunks": True}


class AppendArray:
    """An array grown along axis 0 in whole chunks, so no chunk is rewritten.

    Rows are buffered until a chunk is full; ``close()`` writes the tail. Memory held: at most
    one chunk of rows.
    """

    def __init__(self, group: zarr.Group, path: str, row_shape: tuple[int, ...], dtype,
                 chunk_rows: int | None = None):
        self.chunk_rows = chunk_rows or layout.chunk_steps(path)
        self.array = group.create_array(
            path,
            shape=(0, *row_shape),
            chunks=(self.chunk_rows, *row_shape),
            dtype=dtype,
            compressors=COMPRESSOR,
            config=ARRAY_CONFIG,
            overwrite=True,
        )
        self._pending: list[np.ndarray] = []
        self._n_pending = 0
        self.n_rows = 0

    def append(self, rows: np.ndarray) -> None:
        """rows: [B, *row_shape]"""
        self._pending.append(np.asarray(rows, dtype=self.array.dtype))
        self._n_pending += len(rows)
        if self._n_pending >= self.chunk_rows:
            self._flush(whole_chunks_only=True)

    def _flush(self, whole_chunks_only: bool) -> None:
        if not self._pending:
            return
        block = np.concatenate(self._pending, axis=0)
        n = (len(block) // self.chunk_rows) * self.chunk_rows if whole_chunks_only else len(block)
        if n:
            start = self.n_rows
            self.array.resize((start + n, *self.array.shape[1:]))
            self.array[start : start + n] = block[:n]
            self.n_rows += n
        rest = block[n:]
        self._pending = [rest] if len(rest) else []
        self._n_pending = len(rest)

    def close(self) -> int:
        self._flush(whole_chunks_only=False)
        return self.n_rows


class VideoWriter:
    """Owns ``videos/<video_id>`` while it is being (re)written by exactly one process."""

    def __init__(self, root: zarr.Group, video_id: str):
        self.root = root
        self.video_id = video_id
        self.group: zarr.Group | None = None

    def begin(self, attrs: dict) -> zarr.Group:
        """Delete any leftover group of this id and start a fresh, incomplete one."""
        path = layout.video_group_path(self.video_id)
        if path in self.root:
            del self.root[path]
        self.group = self.root.create_group(path, overwrite=True)
        self.group.attrs.update({**attrs, layout.COMPLETE: False})
        return self.group

    def appender(self, path: str, row_shape: tuple[int, ...], dtype, chunk_rows=None) -> AppendArray:
        return AppendArray(self.group, path, tuple(row_shape), dtype, chunk_rows)

    def write(self, path: str, data: np.ndarray, chunk_rows: int | None = None) -> zarr.Array:
        """Write a whole (small) array at once, chunked along axis 0."""
        return write_array(self.group, path, data, chunk_rows)

    def finish(self, attrs: dict) -> None:
        """Final attributes, then ``complete = True`` as the very last write."""
        self.group.attrs.update(attrs)
        self.group.attrs[layout.COMPLETE] = True


def write_array(group: zarr.Group, path: str, data: np.ndarray, chunk_rows: int | None = None):
    """Create-or-replace ``group/path`` with ``data`` (used for small arrays: picks, segments,
    labels). Zero-length arrays are allowed."""
    data = np.asarray(data)
    rows = chunk_rows or layout.chunk_steps(path)
    chunks = (max(1, min(rows, len(data) or 1)), *data.shape[1:]) if data.ndim else ()
    arr = group.create_array(path, shape=data.shape, chunks=chunks or None, dtype=data.dtype,
                             compressors=COMPRESSOR, config=ARRAY_CONFIG, overwrite=True)
    if data.size:
        arr[...] = data
    return arr


def discard_video(root: zarr.Group, video_id: str) -> str:
    """Remove a failed video's partial group (it never reads as complete either way). Returns
    "" or why the removal failed, for the video's error line."""
    path = layout.video_group_path(video_id)
    try:
        if path in root:
            del root[path]
    except (KeyError, OSError) as e:
        return f"its partial group could not be removed ({type(e).__name__}); it stays incomplete"
    return ""
