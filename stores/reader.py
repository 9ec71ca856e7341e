"""Read a store: list complete videos, load arrays and attributes.

Only groups whose ``complete`` attribute is true exist for a reader. Listing comes from the
store's index (stores/index.py: one read for every video's status, attributes and array
shapes); a video's own group stays the truth for ``is_complete``, ``attrs`` and its data.
"""
from __future__ import annotations

import os

import numpy as np
import zarr

from pipeline.errors import StoreError, StoreNotFound
from stores import layout
from stores.index import VideoIndex, load_index
from stores.location import is_url, open_root
from stores.store import Store


class FeatureStore:
    """Raises ``StoreNotFound`` when nothing is at ``path`` and ``StoreError`` when what is
    there is not a vsum store (one line each, naming the path)."""

    def __init__(self, path: str | Store, storage_options: dict | None = None):
        if isinstance(path, Store):  # the handle carries its own options
            path, storage_options = path.url, path.storage_options
        self.path = str(path)
        self.storage_options = storage_options
        try:
            self.root = open_root(self.path, "r", storage_options)
        except FileNotFoundError:  # zarr: no such path, or no Zarr group there
            if is_url(self.path) or not os.path.exists(self.path):
                raise StoreNotFound("no such store", self.path) from None
            raise StoreError("not a vsum store (no Zarr group there)", self.path) from None
        if "vsum_schema" not in self.root.attrs:
            raise StoreError("not a vsum store (a Zarr group without vsum_schema)", self.path)

    # -- listing (the index: one read for every video) ------------------------------------
    _index: VideoIndex | None = None

    def index(self, refresh: bool = False) -> VideoIndex:
        """Every group's attributes (and array shapes when the manifest's snapshot has them),
        read once per handle; ``refresh=True`` reads it again."""
        if self._index is None or refresh:
            self._index = load_index(self.path, self.storage_options, arrays=False)
        return self._index

    def all_video_ids(self) -> list[str]:
        """Every video group, complete or not (for checks and resume logic)."""
        return self.index().ids()

    def video_ids(self) -> list[str]:
        """Complete videos only, sorted."""
        return self.index().complete_ids()

    def all_attrs(self) -> dict[str, dict]:
        """video id -> attributes of every group, from the index (planning, listing)."""
        ix = self.index()
        return {v: ix.attrs(v) for v in ix.ids()}

    def array_infos(self, video_ids: list[str], path: str) -> dict[str, tuple | None]:
        """video id -> (shape, dtype) of ``path`` (None: no such array), from the index. Videos
        whose entry lacks the array are read from their groups, in parallel: the index may
        predate a tool that added it, or hold attributes only (a scan for listing)."""
        ix = self.index()
        self._reread([v for v in video_ids if v not in ix.entries or ix.array(v, path) is None])
        return {v: (ix.array(v, path) if v in ix.entries else None) for v in video_ids}

    def arrays_of(self, video_ids: list[str]) -> list[dict[str, tuple]]:
        """Each video's arrays {path: (shape, dtype)}, from the index (read in parallel for
        videos it has no shapes of)."""
        ix = self.index()
        self._reread([v for v in video_ids if not ix.knows_arrays(v)])
        return [ix.arrays(v) if v in ix.entries else {} for v in video_ids]

    def _reread(self, video_ids: list[str]) -> None:
        if video_ids:
            from stores.index import GroupReader

            fresh = GroupReader(self.path, self.storage_options).describe(video_ids)
            self.index().entries.update({v: e for v, e in fresh.items() if e is not None})

    def is_complete(self, video_id: str) -> bool:
        try:
            return bool(self.group(video_id).attrs.get(layout.COMPLETE, False))
        except KeyError:
            return False

    # -- access ---------------------------------------------------------------------------
    def group(self, video_id: str) -> zarr.Group:
        return self.root[layout.video_group_path(video_id)]

    def attrs(self, video_id: str) -> dict:
        return dict(self.group(video_id).attrs)

    def has(self, video_id: str, path: str) -> bool:
        return f"{layout.video_group_path(video_id)}/{path}" in self.root  # one read, not two

    def array(self, video_id: str, path: str) -> zarr.Array:
        """Lazy array handle (slice it to read chunks); opens the array's node directly."""
        return self.root[f"{layout.video_group_path(video_id)}/{path}"]

    def load(self, video_id: str, path: str) -> np.ndarray:
        return self.array(video_id, path)[...]

    def features(self, video_id: str, name: str = "googlenet", l2_normalize: bool = False) -> np.ndarray:
        """[T, *feature_shape]; optional L2 normalisation over the channel axis (read-time option)."""
        x = self.load(video_id, layout.feature_path(name))
        if l2_normalize:
            x = x.astype(np.float32)
            norm = np.linalg.norm(x.reshape(len(x), x.shape[1], -1), axis=1, keepdims=True)
            x = (x.reshape(len(x), x.shape[1], -1) / np.maximum(norm, 1e-12)).reshape(x.shape)
        return x

    def feature_names(self, video_id: str) -> list[str]:
        g = self.group(video_id)
        names = sorted(n for n, _ in g[layout.FEATURES].arrays()) if layout.FEATURES in g else []
        return names + ([layout.FRAMES] if layout.FRAMES in g else [])
