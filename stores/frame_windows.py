"""Stream raw frame shards from a store as chunk-aligned windows of consecutive steps.

End-to-end heads (CRSum) read ``frames`` uint8 [T, S, S, 3] (chunked 16 steps along time) instead
of precomputed features. A long video is cut into windows of consecutive steps whose boundaries
fall on chunk boundaries, so every window decompresses only its own chunks and no process ever
holds a whole video's frames. Optionally only every k-th pick is kept (the CRSum paper samples
every 60 frames: k = 4 on the default 15-frame picks).

Items are windows ``(video_id, raw_start, raw_stop)``; a batch is ``batch_videos`` windows padded
to the longest, with a mask:

    "x"        uint8   [B, T, S, S, 3]  raw pixels; the model normalises on its device (4x less
                                        traffic between workers and the trainer than float32)
    "mask"     bool    [B, T]           True on real steps
    "gtscore"  float32 [B, T]           0 on padding
    "video_id" list[str]                B entries
    "start"    list[int]                first step of each window, in kept-step units

Workers are started with ``forkserver``/``spawn`` (STACK.md: no ``fork`` around zarr); each opens
the store lazily. Batch order is fixed by a seeded sampler in the parent process, so 0 and N
workers give identical batches.
"""
from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from stores import layout
from stores.location import open_root


@dataclass(frozen=True)
class WindowItem:
    video_id: str
    raw_start: int  # first pick index read (a multiple of the chunk size)
    raw_stop: int  # exclusive
    step_start: int  # raw_start // pick_stride: where this window sits in the kept steps


def window_span(chunk_rows: int, window_steps: int | None, pick_stride: int) -> int | None:
    """Raw picks per window: ``window_steps * pick_stride`` rounded up to a multiple of both the
    chunk size and the stride, so windows start on chunk boundaries and keep a common phase."""
    if not window_steps:
        return None
    unit = math.lcm(chunk_rows, pick_stride)
    return math.ceil(window_steps * pick_stride / unit) * unit


def video_windows(video_id: str, n_raw: int, chunk_rows: int, window_steps: int | None,
                  pick_stride: int = 1) -> list[WindowItem]:
    """Chunk-aligned windows covering picks 0..n_raw (one window when ``window_steps`` is falsy)."""
    span = window_span(chunk_rows, window_steps, pick_stride) or max(n_raw, 1)
    return [WindowItem(video_id, a, min(a + span, n_raw), a // pick_stride)
            for a in range(0, n_raw, span)]


def kept_steps(n_raw: int, pick_stride: int) -> int:
    return math.ceil(n_raw / pick_stride)


def _store_ref(store) -> tuple[str, dict | None]:
    """(path, storage_options) from a FeatureStore or a plain path (picklable for workers)."""
    if hasattr(store, "path"):
        return str(store.path), getattr(store, "storage_options", None)
    return str(store), None


class FrameWindowDataset(Dataset):
    """Map-style dataset: item i = window ``items[i]`` read from the store."""

    def __init__(self, store, items: list[WindowItem], pick_stride: int = 1,
                 with_labels: bool = True):
        self.path, self.storage_options = _store_ref(store)
        self.items = list(items)
        self.pick_stride = int(pick_stride)
        self.with_labels = with_labels
        self._root = None  # opened lazily in each worker (zarr handles are not shipped)

    def __len__(self) -> int:
        return len(self.items)

    def __getstate__(self):
        return {**self.__dict__, "_root": None}

    def _group(self, video_id: str):
        if self._root is None:
            self._root = open_root(self.path, "r", self.storage_options)
        return self._root[layout.video_group_path(video_id)]

    def __getitem__(self, i: int) -> dict:
        it = self.items[i]
        g = self._group(it.video_id)
        sl = slice(it.raw_start, it.raw_stop, self.pick_stride)
        frames = np.asarray(g[layout.FRAMES][sl])  # uint8 [t, S, S, 3]
        if self.with_labels:
            if layout.GTSCORE not in g:
                raise ValueError(f"{self.path}: video {it.video_id} has no {layout.GTSCORE}")
            gt = np.asarray(g[layout.GTSCORE][sl], np.float32)
        else:
            gt = np.zeros(len(frames), np.float32)
        return {"x": frames, "gtscore": gt, "video_id": it.video_id, "start": it.step_start}


def collate_windows(samples: list[dict]) -> dict:
    """Pad windows to the longest: see the module docstring for the batch layout."""
    T = max(len(s["x"]) for s in samples)
    B, frame_shape = len(samples), samples[0]["x"].shape[1:]
    x = torch.zeros((B, T, *frame_shape), dtype=torch.uint8)
    mask = torch.zeros((B, T), dtype=torch.bool)
    gt = torch.zeros((B, T), dtype=torch.float32)
    for b, s in enumerate(samples):
        n = len(s["x"])
        x[b, :n] = torch.from_numpy(s["x"])
        gt[b, :n] = torch.from_numpy(s["gtscore"])
        mask[b, :n] = True
    return {"x": x, "mask": mask, "gtscore": gt,
            "video_id": [s["video_id"] for s in samples], "start": [s["start"] for s in samples]}


class EpochBatchSampler(Sampler):
    """Batches of item indices; a new seeded permutation each pass (epoch e uses seed + e)."""

    def __init__(self, n_items: int, batch_size: int, shuffle: bool, seed: int = 0):
        self.n_items, self.batch_size, self.shuffle, self.seed = n_items, batch_size, shuffle, seed
        self.epoch = 0

    def __iter__(self) -> Iterator[list[int]]:
        order = (np.random.default_rng(self.seed + self.epoch).permutation(self.n_items)
                 if self.shuffle else np.arange(self.n_items))
        self.epoch += 1
        for a in range(0, self.n_items, self.batch_size):
            yield order[a : a + self.batch_size].tolist()

    def __len__(self) -> int:
        return math.ceil(self.n_items / self.batch_size)


@dataclass(frozen=True)
class LoaderOptions:
    window_steps: int | None = 64  # kept steps per window; None/0 = whole videos
    pick_stride: int = 1  # keep every k-th pick
    batch_videos: int = 8
    num_workers: int = 2
    start_method: str = "forkserver"  # or "spawn"; never fork around zarr
    prefetch_factor: int = 2
    shuffle: bool = True
    seed: int = 0
    pin_memory: bool = False


def list_windows(store, video_ids: list[str], opts: LoaderOptions) -> list[WindowItem]:
    """Every window of every video, in video order. Bad videos: one clear line, then raise."""
    root = store.root if hasattr(store, "root") else open_root(str(store), "r")
    path, _ = _store_ref(store)
    items: list[WindowItem] = []
    for vid in video_ids:
        g = root[layout.video_group_path(vid)]
        if layout.FRAMES not in g:
            raise ValueError(f"{path}: video {vid} has no '{layout.FRAMES}' array "
                             f"(extract with frame shards to train end-to-end heads)")
        arr = g[layout.FRAMES]
        if arr.ndim != 4 or arr.shape[-1] != 3 or arr.dtype != np.uint8:
            raise ValueError(f"{path}: video {vid} frames are {arr.dtype} {arr.shape}, "
                             f"expected uint8 [T, S, S, 3]")
        items += video_windows(vid, arr.shape[0], arr.chunks[0], opts.window_steps,
                               opts.pick_stride)
    return items


def make_frame_loader(store, video_ids: list[str], opts: LoaderOptions,
                      with_labels: bool = True) -> DataLoader:
    """A DataLoader of padded window batches (re-iterable: one pass = one epoch)."""
    items = list_windows(store, video_ids, opts)
    ds = FrameWindowDataset(store, items, opts.pick_stride, with_labels)
    workers = int(opts.num_workers)
    extra = {}
    if workers > 0:
        extra = {"multiprocessing_context": opts.start_method, "persistent_workers": True,
                 "prefetch_factor": opts.prefetch_factor}
    return DataLoader(ds, batch_sampler=EpochBatchSampler(len(items), opts.batch_videos,
                                                          opts.shuffle, opts.seed),
                      collate_fn=collate_windows, num_workers=workers,
                      pin_memory=opts.pin_memory, **extra)


def n_picks(store, video_id: str) -> int:
    """Steps of the video's frame shards (= its picks)."""
    root = store.root if hasattr(store, "root") else open_root(str(store), "r")
    return int(root[layout.video_group_path(video_id)][layout.FRAMES].shape[0])


def iter_video_windows(store, video_id: str, window_steps: int | None, pick_stride: int = 1
                       ) -> Iterator[tuple[int, np.ndarray]]:
    """(first kept step, uint8 [t, S, S, 3]) for consecutive windows of one video, in order.
    Used at prediction time; holds one window at a time."""
    opts = LoaderOptions(window_steps=window_steps, pick_stride=pick_stride)
    ds = FrameWindowDataset(store, list_windows(store, [video_id], opts), pick_stride,
                            with_labels=False)
    for i in range(len(ds)):
        s = ds[i]
        yield s["start"], s["x"]
