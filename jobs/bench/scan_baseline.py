"""The baseline of ``vsum bench scale --latency-ms``: the reads vsum made before the store had
an index (commit 1a55a22), one group after another.

``OneByOne`` is that version's ``FeatureStore`` listing and access (every call opens the video's
group again); the three functions are what planning, ``vsum store info`` and opening for
training read with it. Same answers as the indexed paths (the benchmark checks), same requests
as before, nothing slowed down on purpose.
"""
from __future__ import annotations

import numpy as np

from stores import layout
from stores.location import open_root


class OneByOne:
    def __init__(self, path: str, storage_options: dict | None = None):
        self.path = str(path)
        self.root = open_root(self.path, "r", storage_options)

    def all_video_ids(self) -> list[str]:
        if layout.VIDEOS not in self.root:
            return []
        return sorted(name for name, _ in self.root[layout.VIDEOS].groups())

    def video_ids(self) -> list[str]:
        return [v for v in self.all_video_ids() if self.is_complete(v)]

    def is_complete(self, video_id: str) -> bool:
        try:
            return bool(self.group(video_id).attrs.get(layout.COMPLETE, False))
        except KeyError:
            return False

    def group(self, video_id: str):
        return self.root[layout.video_group_path(video_id)]

    def attrs(self, video_id: str) -> dict:
        return dict(self.group(video_id).attrs)

    def has(self, video_id: str, path: str) -> bool:
        return path in self.group(video_id)

    def array(self, video_id: str, path: str):
        return self.group(video_id)[path]

    def feature_names(self, video_id: str) -> list[str]:
        g = self.group(video_id)
        names = sorted(n for n, _ in g[layout.FEATURES].arrays()) if layout.FEATURES in g else []
        return names + ([layout.FRAMES] if layout.FRAMES in g else [])


def plan_done(store: str, storage_options: dict | None, chash: str) -> set[str]:
    """What ``plan_work`` read: every group's attributes -> the ids already done."""
    fs = OneByOne(store, storage_options)
    attrs = {v: fs.attrs(v) for v in fs.all_video_ids()}
    return {v for v, a in attrs.items() if a.get(layout.COMPLETE) and a.get("config_hash") == chash}


def info_lines(store: str, storage_options: dict | None) -> list[str]:
    """The per-video lines of ``vsum store info``."""
    fs = OneByOne(store, storage_options)
    out = []
    for vid in fs.video_ids():
        a = fs.attrs(vid)
        arrays = ", ".join(f"{n}{list(fs.array(vid, layout.feature_path(n)).shape)}"
                           for n in fs.feature_names(vid))
        segs = fs.array(vid, layout.CHANGE_POINTS).shape[0] if fs.has(vid, layout.CHANGE_POINTS) else 0
        out.append(f"  {vid}: {a.get('n_frames')} frames @ {a.get('fps', 0):.2f} fps, "
                   f"T={a.get('n_steps')}, {segs} segments, {arrays}, weights={a.get('weights')}")
    return out


def open_for_training(store: str, storage_options: dict | None, features: str = "googlenet") -> tuple:
    """The split index (every complete video's attributes) and the training dataset's checks
    with labels (features present, T > 0, gtscore of T steps, float32 size) -> (ids, bytes)."""
    fs = OneByOne(store, storage_options)
    datasets = {v: fs.attrs(v).get("dataset") for v in fs.video_ids()}
    ids = sorted(datasets)
    complete = set(fs.video_ids())
    assert all(v in complete for v in ids)
    path = layout.feature_path(features)
    for v in ids:
        assert fs.has(v, path)
        shape = fs.array(v, path).shape
        assert len(shape) >= 2 and shape[0] > 0
        assert fs.has(v, layout.GTSCORE) and fs.array(v, layout.GTSCORE).shape[0] == shape[0]
    return ids, sum(4 * int(np.prod(fs.array(v, path).shape)) for v in ids)
