"""Read a store: list complete videos, load arrays and attributes.

Only groups whose ``complete`` attribute is true exist for a reader.
"""
from __future__ import annotations

import os

import numpy as np
import zarr

from pipeline.errors import StoreError, StoreNotFound
from stores import layout
from stores.location import is_url, open_root


class FeatureStore:
    """Raises ``StoreNotFound`` when nothing is at ``path`` and ``StoreError`` when what is
    there is not a vsum store (one line each, naming the path)."""

    def __init__(self, path: str, storage_options: dict | None = None):
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

    # -- listing --------------------------------------------------------------------------
    def all_video_ids(self) -> list[str]:
        """Every video group, complete or not (for checks and resume logic)."""
        if layout.VIDEOS not in self.root:
            return []
        return sorted(name for name, _ in self.root[layout.VIDEOS].groups())

    def video_ids(self) -> list[str]:
        """Complete videos only, sorted."""
        return [v for v in self.all_video_ids() if self.is_complete(v)]

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
        return path in self.group(video_id)

    def array(self, video_id: str, path: str) -> zarr.Array:
        """Lazy array handle (slice it to read chunks)."""
        return self.group(video_id)[path]

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
