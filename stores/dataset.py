"""Whole videos as training sequences, read from a feature store and cached in memory.

One item = one video: ``{"video_id": str, "x": float32 [T, *feature_shape], "gtscore": float32
[T] | None, "target": float32 [T] or [T, n] | None}``. Feature arrays may be 2-D ``[T, D]`` or
4-D ``[T, C, h, w]`` (ST3D/I3D maps); float16 stores are widened to float32 at read time.
``target`` is the supervised target a head asked for (``stores/targets.py``: gtscore, the
oracle summary, gtsummary keyframes; [T, n] for frame-level heads), present when ``target`` is set.

``MultiStoreDataset`` serves videos of several stores (the augmented and transfer settings) under
one key space: a video of the primary store keeps its id, any other is ``<store URL>::<id>``.
Stores are ``stores.Store`` values (or paths/URLs): each is read with its own storage options.

Caching: when the estimated float32 size of every requested video fits ``cache_bytes`` (default
2 GiB, env ``VSUM_CACHE_BYTES``), each video is read once and kept; otherwise every access
reads it from the store again (memory stays bounded by one batch).
"""
from __future__ import annotations

import os

import numpy as np

from stores import layout
from stores.reader import FeatureStore
from stores.store import Store

DEFAULT_CACHE_BYTES = 2 * 1024**3


class StoreInputError(ValueError):
    """A video lacks what training needs; the message names the store, video and reason."""


class VideoDataset:
    def __init__(self, store: Store | str | FeatureStore, video_ids: list[str], features: str = "googlenet",
                 l2_normalize: bool = False, need_labels: bool = False,
                 cache_bytes: int | None = None, target: str | None = None, n_sub: int = 1):
        self.store = store if isinstance(store, FeatureStore) else FeatureStore(store)
        self.video_ids = list(video_ids)
        self.features = features
        self.l2_normalize = l2_normalize
        self.need_labels = need_labels
        self.target = target
        self.n_sub = int(n_sub)
        complete = set(self.store.video_ids())  # the store's index: one read for all videos
        missing = [v for v in self.video_ids if v not in complete]
        if missing:
            raise StoreInputError(f"{self.store.path}: {len(missing)} video(s) not complete in the "
                                  f"store: {', '.join(missing[:5])}")
        # Shapes from the index too (re-read in parallel only where it lacks them).
        self._shapes = self.store.array_infos(self.video_ids, layout.feature_path(features))
        self._labels = self.store.array_infos(self.video_ids, layout.GTSCORE) if need_labels else {}
        for v in self.video_ids:
            self._check(v)
        self._verified: set[str] = set()  # groups read and found complete (the truth, at read time)
        budget = cache_bytes if cache_bytes is not None else int(
            os.environ.get("VSUM_CACHE_BYTES", DEFAULT_CACHE_BYTES))
        self.cached = self.nbytes() <= budget
        self._cache: dict[str, dict] = {}

    # -- checks ---------------------------------------------------------------------------
    def _check(self, video_id: str) -> None:
        where = f"{self.store.path}/videos/{video_id}"
        info = self._shapes[video_id]
        if info is None:
            have = ", ".join(self.store.feature_names(video_id)) or "none"
            raise StoreInputError(f"{where}: no features {self.features!r} (has: {have})")
        shape = info[0]
        if len(shape) < 2 or shape[0] == 0:
            raise StoreInputError(f"{where}: features {self.features!r} have shape {shape}, "
                                  "expected [T, *feature_shape] with T > 0")
        if self.need_labels:
            if self._labels[video_id] is None:
                raise StoreInputError(f"{where}: no {layout.GTSCORE} (this head needs labels)")
            n = self._labels[video_id][0][0]
            if n != shape[0]:
                raise StoreInputError(f"{where}: {layout.GTSCORE} has {n} steps, features have "
                                      f"{shape[0]}")

    # -- sizes ----------------------------------------------------------------------------
    def feature_shape(self) -> tuple[int, ...]:
        return tuple(self._shapes[self.video_ids[0]][0][1:])

    def nbytes(self) -> int:
        """float32 bytes of every requested video's features."""
        return sum(4 * int(np.prod(self._shapes[v][0])) for v in self.video_ids)

    def lengths(self) -> dict[str, int]:
        return {v: int(self._shapes[v][0][0]) for v in self.video_ids}

    # -- access ---------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.video_ids)

    def __getitem__(self, i: int) -> dict:
        return self.get(self.video_ids[i])

    def get(self, video_id: str) -> dict:
        if video_id in self._cache:
            return self._cache[video_id]
        if video_id not in self._verified:  # listed by the index; the group itself decides
            if not self.store.is_complete(video_id):
                raise StoreInputError(f"{self.store.path}/videos/{video_id}: not complete (the "
                                      "store's index listed it; a writer changed it since)")
            self._verified.add(video_id)
        x = self.store.features(video_id, self.features, l2_normalize=self.l2_normalize)
        x = np.ascontiguousarray(x, dtype=np.float32)
        if not np.isfinite(x).all():
            raise StoreInputError(f"{self.store.path}/videos/{video_id}: features "
                                  f"{self.features!r} contain NaN or inf")
        gt = None
        if self.store.has(video_id, layout.GTSCORE):
            gt = self.store.load(video_id, layout.GTSCORE).astype(np.float32)
            if len(gt) != len(x):  # (with need_labels, _check already refused this)
                gt = None
        item = {"video_id": video_id, "x": x, "gtscore": gt}
        if self.target:
            from stores.targets import supervised_target

            tgt = supervised_target(self.store, video_id, self.target, self.n_sub)
            item["target"] = tgt if tgt is not None and len(tgt) == len(x) else None
        if self.cached:
            self._cache[video_id] = item
        return item


REF_SEP = "::"


def ref_key(store: str, video_id: str, primary: str) -> str:
    """The training key of a video: its id in the primary store, ``<store>::<id>`` elsewhere."""
    return video_id if str(store) == str(primary) else f"{store}{REF_SEP}{video_id}"


def split_key(key: str, primary: str) -> tuple[str, str]:
    """ref_key's inverse -> (store, video id)."""
    store, sep, vid = key.rpartition(REF_SEP)
    return (store, vid) if sep else (str(primary), key)


class MultiStoreDataset:
    """Videos of several stores under one key space (``ref_key``); one ``VideoDataset`` per
    store, so every check and the cache work per store. ``get(key)`` -> an item whose
    ``video_id`` is the key.

    ``others``: the Stores that keys of other stores name (by URL); a URL not among them is
    read with the primary's storage options (one command has one set of credentials)."""

    def __init__(self, primary: Store | str, keys: list[str], features: str,
                 others: list[Store] | tuple = (), **kwargs):
        primary = Store.at(primary)
        self.primary = primary.url
        known = {s.url: s for s in map(Store.at, others)}
        known[primary.url] = primary
        by_store: dict[str, list[str]] = {}
        for k in keys:
            store, vid = split_key(k, self.primary)
            by_store.setdefault(store, []).append(vid)
        self.parts = {s: VideoDataset(known.get(s) or Store(s, primary.storage_options), ids,
                                      features, **kwargs)
                      for s, ids in by_store.items()}

    def store_of(self, key: str) -> tuple[FeatureStore, str]:
        store, vid = split_key(key, self.primary)
        return self.parts[store].store, vid

    def get(self, key: str) -> dict:
        store, vid = split_key(key, self.primary)
        item = self.parts[store].get(vid)
        return item if item["video_id"] == key else {**item, "video_id": key}


def collate(items: list[dict], device=None) -> dict:
    """Pad a list of items into a batch (the HeadSpec batch contract).

    -> {"x": float32 [B, T, *shape], "mask": bool [B, T], "gtscore": float32 [B, T] (zeros where a
    video has none), "has_gtscore": bool [B], "video_id": list[str]}, plus "target" float32
    [B, T] or [B, T, n] and "has_target" bool [B] when the items carry a target.
    """
    import torch

    b = len(items)
    t = max(len(it["x"]) for it in items)
    shape = items[0]["x"].shape[1:]
    x = torch.zeros((b, t, *shape), dtype=torch.float32)
    mask = torch.zeros((b, t), dtype=torch.bool)
    gt = torch.zeros((b, t), dtype=torch.float32)
    has_gt = torch.zeros(b, dtype=torch.bool)
    for i, it in enumerate(items):
        n = len(it["x"])
        x[i, :n] = torch.from_numpy(it["x"])
        mask[i, :n] = True
        if it["gtscore"] is not None:
            gt[i, :n] = torch.from_numpy(it["gtscore"])
            has_gt[i] = True
    batch = {"x": x, "mask": mask, "gtscore": gt, "has_gtscore": has_gt,
             "video_id": [it["video_id"] for it in items]}
    if any("target" in it for it in items):
        batch["target"], batch["has_target"] = _pad_targets(items, t)
    return to_device(batch, device) if device is not None else batch


def to_device(batch: dict, device) -> dict:
    """Move every tensor value of a batch to ``device`` (other values unchanged)."""
    import torch

    return {k: (v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v)
            for k, v in batch.items()}


def _pad_targets(items: list[dict], t: int):
    """[B, T] or [B, T, n] zero-padded targets and which items have one."""
    import torch

    ref = next((it["target"] for it in items if it.get("target") is not None), None)
    tail = () if ref is None else tuple(ref.shape[1:])
    out = torch.zeros((len(items), t, *tail), dtype=torch.float32)
    has = torch.zeros(len(items), dtype=torch.bool)
    for i, it in enumerate(items):
        if it.get("target") is not None:
            out[i, : len(it["target"])] = torch.from_numpy(np.asarray(it["target"], np.float32))
            has[i] = True
    return out, has
