"""Interop with the eccv16 h5 schema that every public summarization codebase reads.

One h5 group per video (``video_1`` …) with datasets:
    features [T, 1024] float32   gtscore [T]         user_summary [U, n_frames]
    change_points [S, 2]         n_frame_per_seg [S] n_frames ()   picks [T]   n_steps ()
    gtsummary [T]                video_name ()
``gtsummary`` (binary, at picks) is written as: the pick lies in a frame that at least half of
the annotators selected (the public files do not document their rule; this one is stated).
"""
from __future__ import annotations

import h5py
import numpy as np

from stores import layout
from stores.location import open_root
from stores.manifest import Manifest
from stores.reader import FeatureStore
from stores.writer import VideoWriter


def export_h5(store: str, out_path: str, feature: str = "googlenet", l2_normalize: bool = False,
              storage_options=None) -> list[str]:
    """Write every complete video with ``features/<feature>`` to ``out_path``. Keys: the video's
    ``eccv16_key`` attribute when it has one, else ``video_<k>`` in sorted id order."""
    fs = FeatureStore(store, storage_options)
    written = []
    with h5py.File(out_path, "w") as h5:
        for k, vid in enumerate(fs.video_ids(), start=1):
            if not fs.has(vid, layout.feature_path(feature)):
                continue
            attrs = fs.attrs(vid)
            key = attrs.get("eccv16_key") or f"video_{k}"
            g = h5.create_group(key)
            feats = fs.features(vid, feature, l2_normalize=l2_normalize).astype(np.float32)
            picks = fs.load(vid, layout.PICKS).astype(np.int64)
            n_frames = int(attrs["n_frames"])
            g["features"] = feats.reshape(len(feats), -1)
            g["picks"] = picks
            g["n_frames"] = n_frames
            g["n_steps"] = len(picks)
            g["video_name"] = vid
            if fs.has(vid, layout.CHANGE_POINTS):
                g["change_points"] = fs.load(vid, layout.CHANGE_POINTS).astype(np.int64)
                g["n_frame_per_seg"] = fs.load(vid, layout.N_FRAME_PER_SEG).astype(np.int64)
            if fs.has(vid, layout.GTSCORE):
                g["gtscore"] = fs.load(vid, layout.GTSCORE).astype(np.float32)
            if fs.has(vid, layout.USER_SUMMARY):
                us = fs.load(vid, layout.USER_SUMMARY).astype(np.float32)
                g["user_summary"] = us
                g["gtsummary"] = (us.mean(axis=0)[picks] >= 0.5).astype(np.float32)
            written.append(key)
    return written


def import_h5(h5_path: str, store: str, dataset: str | None = None, storage_options=None) -> list[str]:
    """Create one complete video group per h5 group. Ids: ``video_name`` when present, else
    the h5 key; the key is kept as the ``eccv16_key`` attribute for split files."""
    from stores.ids import video_id_for

    root = open_root(store, "a", storage_options)
    ids = []
    manifest = Manifest(store, storage_options, command="vsum store import-h5")  # before any write
    with h5py.File(h5_path, "r") as h5:
        for key in sorted(h5.keys(), key=_natural):
            g = h5[key]
            name = g["video_name"][()] if "video_name" in g else key
            name = name.decode() if isinstance(name, bytes) else str(name)
            vid = video_id_for(name + ".x")
            n_frames = int(g["n_frames"][()])
            picks = np.asarray(g["picks"][...], np.int32)
            w = VideoWriter(root, vid)
            w.begin({"source": f"{h5_path}#{key}", "eccv16_key": key, "dataset": dataset or "",
                     "sample": "from eccv16 h5", "weights": {"googlenet": "from eccv16 h5"}})
            w.write(layout.PICKS, picks)
            w.write(layout.feature_path("googlenet"), np.asarray(g["features"][...], np.float32))
            for src, dst, dt in (("change_points", layout.CHANGE_POINTS, np.int32),
                                 ("n_frame_per_seg", layout.N_FRAME_PER_SEG, np.int32),
                                 ("gtscore", layout.GTSCORE, np.float32),
                                 ("user_summary", layout.USER_SUMMARY, np.uint8)):
                if src in g:
                    w.write(dst, np.asarray(g[src][...], dt))
            fps = 30.0
            w.finish({"n_frames": n_frames, "n_frames_container": n_frames, "n_steps": len(picks),
                      "fps": fps, "duration_s": n_frames / fps, "video_name": name})
            manifest.mark_changed(vid)
            ids.append(vid)
    manifest.close()
    return ids


def _natural(key: str):
    head, _, tail = key.rpartition("_")
    return (head, int(tail)) if tail.isdigit() else (key, 0)
