"""Interop with the eccv16 h5 schema that every public summarization codebase reads.

One h5 group per video (``video_1`` …) with datasets:
    features [T, 1024] float32   gtscore [T]         user_summary [U, n_frames]
    change_points [S, 2]         n_frame_per_seg [S] n_frames ()   picks [T]   n_steps ()
    gtsummary [T]                video_name ()
``gtsummary`` (binary, at picks) is written as: the pick lies in a frame that at least half of
the annotators selected (the public files do not document their rule; this one is stated).

Keys: a video keeps the ``eccv16_key`` its importer recorded (so public split files still name
it); every other video gets ``video_<n>`` with n above every recorded key, so keys are unique
whatever mix of annotated and unannotated videos a store holds. The key -> video id mapping is
written beside the file (``<out>.keys.json``) and each group's ``video_name`` holds its id.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from pipeline.errors import InputError, StoreError, UsageError
from stores import layout
from stores.reader import FeatureStore
from stores.writer import VideoWriter

_VIDEO_N = re.compile(r"^video_(\d+)$")
REQUIRED_H5 = ("features", "picks", "n_frames")


# -- keys ----------------------------------------------------------------------------------------
def eccv16_keys(recorded: dict[str, str | None]) -> dict[str, str]:
    """video id -> unique h5 key. ``recorded``: video id -> its ``eccv16_key`` attr (or None).

    A recorded key is kept by the first video (in id order) that claims it; the others, and
    videos without one, get ``video_<n>`` numbered after the largest recorded ``video_<n>``
    (never reusing a number a public split file may mean for another video)."""
    taken: dict[str, str] = {}
    for vid in sorted(recorded):
        key = recorded[vid]
        if key and key not in taken.values():
            taken[vid] = str(key)
    numbers = [int(m.group(1)) for k in taken.values() if (m := _VIDEO_N.match(k))]
    n = max(numbers, default=0)
    out = {}
    for vid in sorted(recorded):
        if vid not in taken:
            n += 1
            taken[vid] = f"video_{n}"
        out[vid] = taken[vid]
    return out


def keys_path(out_path: str | Path) -> Path:
    """``demo.h5`` -> ``demo.keys.json`` (the key -> video id mapping beside the file)."""
    p = Path(out_path)
    return p.with_name(p.stem + ".keys.json") if p.suffix else p.with_name(p.name + ".keys.json")


def _natural(key: str):
    head, _, tail = key.rpartition("_")
    return (head, int(tail)) if tail.isdigit() else (key, 0)


# -- export --------------------------------------------------------------------------------------
def _exportable(fs: FeatureStore, feature: str) -> list[str]:
    """Complete videos holding ``features/<feature>``; a UsageError naming the store's features
    when none does (an empty file that exits 0 helps nobody)."""
    path = layout.feature_path(feature)
    vids = [v for v in fs.video_ids() if fs.has(v, path)]
    if not vids:
        have = sorted({n for v in fs.video_ids() for n in fs.feature_names(v)})
        raise UsageError(f"no complete video has features/{feature} (this store has: "
                         f"{', '.join(have) or 'no complete videos'})", fs.path)
    return vids


def _write_group(g, fs: FeatureStore, vid: str, feature: str, l2_normalize: bool) -> None:
    attrs = fs.attrs(vid)
    feats = fs.features(vid, feature, l2_normalize=l2_normalize).astype(np.float32)
    picks = fs.load(vid, layout.PICKS).astype(np.int64)
    g["features"] = feats.reshape(len(feats), -1)
    g["picks"] = picks
    g["n_frames"] = int(attrs["n_frames"])
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


def export_h5(store, out_path: str, feature: str = "googlenet", l2_normalize: bool = False,
              storage_options=None) -> list[str]:
    """Write every complete video with ``features/<feature>`` of ``store`` (a path or URL, or a
    ``stores.Store``) to ``out_path`` (keys: see the module docstring) and the mapping to
    ``keys_path(out_path)``; returns the keys written. The h5 appears only when whole
    (written beside it, then renamed)."""
    fs = FeatureStore(store, storage_options)
    vids = _exportable(fs, feature)
    if not Path(out_path).resolve().parent.is_dir():
        raise UsageError("cannot write the h5 file: its folder does not exist", out_path)
    keys = eccv16_keys({v: fs.attrs(v).get("eccv16_key") for v in vids})
    tmp = f"{out_path}.tmp"
    try:
        with h5py.File(tmp, "w") as h5:
            for vid in vids:
                _write_group(h5.create_group(keys[vid]), fs, vid, feature, l2_normalize)
        os.replace(tmp, out_path)
        mapping = {k: v for v, k in sorted(keys.items(), key=lambda kv: _natural(kv[1]))}
        keys_path(out_path).write_text(json.dumps(mapping, indent=1) + "\n")
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise UsageError(f"cannot write the h5 file ({e.strerror or e})", out_path) from None
    return sorted(keys.values(), key=_natural)


# -- import --------------------------------------------------------------------------------------
@dataclass
class H5Import:
    ids: list[str] = field(default_factory=list)  # store ids written
    failed: list[str] = field(default_factory=list)  # one line per group skipped


OPTIONAL_H5 = (("change_points", layout.CHANGE_POINTS, np.int32),
               ("n_frame_per_seg", layout.N_FRAME_PER_SEG, np.int32),
               ("gtscore", layout.GTSCORE, np.float32),
               ("user_summary", layout.USER_SUMMARY, np.uint8),
               ("gtsummary", layout.GTSUMMARY, np.float32))  # the dataset's own keyframes [T]


def _read_group(g) -> dict:
    """One eccv16 group -> {"name", "n_frames", "picks", "features", optional label arrays};
    ValueError (one line) when it lacks a required dataset or cannot be read."""
    if not isinstance(g, h5py.Group):
        raise ValueError("not a group")
    missing = [k for k in REQUIRED_H5 if k not in g]
    if missing:
        raise ValueError(f"lacks {', '.join(missing)}")
    try:
        name = g["video_name"][()] if "video_name" in g else g.name.rsplit("/", 1)[-1]
        out = {"name": name.decode() if isinstance(name, bytes) else str(name),
               "n_frames": int(g["n_frames"][()]),
               "picks": np.asarray(g["picks"][...], np.int32),
               "features": np.asarray(g["features"][...], np.float32)}
        out.update({dst: np.asarray(g[src][...], dt) for src, dst, dt in OPTIONAL_H5 if src in g})
    except (OSError, TypeError) as e:  # a damaged dataset or a wrong type
        raise ValueError(f"unreadable ({' '.join(str(e).split())})") from None
    if out["features"].ndim != 2 or len(out["features"]) != len(out["picks"]):
        raise ValueError(f"features {out['features'].shape} do not match {len(out['picks'])} picks")
    return out


def _write_video(root, h5_path: str, key: str, data: dict, dataset: str | None) -> str:
    from stores.ids import video_id_for

    vid = video_id_for(data["name"] + ".x")
    n_frames, picks = data["n_frames"], data["picks"]
    w = VideoWriter(root, vid)
    w.begin({"source": f"{h5_path}#{key}", "eccv16_key": key, "dataset": dataset or "",
             "sample": "from eccv16 h5", "weights": {"googlenet": "from eccv16 h5"}})
    w.write(layout.PICKS, picks)
    w.write(layout.feature_path("googlenet"), data["features"])
    for _, dst, _ in OPTIONAL_H5:
        if dst in data:
            w.write(dst, data[dst])
    fps = 30.0
    w.finish({"n_frames": n_frames, "n_frames_container": n_frames, "n_steps": len(picks),
              "fps": fps, "duration_s": n_frames / fps, "video_name": data["name"]})
    return vid


def open_h5(h5_path: str) -> h5py.File:
    """The h5 file for reading, or one InputError line (missing, not HDF5, no groups)."""
    if not os.path.isfile(h5_path):
        raise InputError("no such file", h5_path)
    try:
        h5 = h5py.File(h5_path, "r")
    except OSError:
        raise InputError("not an HDF5 file", h5_path) from None
    if not any(isinstance(h5[k], h5py.Group) for k in h5):
        h5.close()
        raise InputError("no video groups (expected the eccv16 schema: video_1, video_2, …)", h5_path)
    return h5


def import_h5(h5_path: str, store, dataset: str | None = None, storage_options=None,
              log=None) -> H5Import:
    """Create one complete video group per h5 group. Ids: ``video_name`` when present, else
    the h5 key; the key is kept as the ``eccv16_key`` attribute for split files. ``dataset``
    (recorded per video, what prefixed split keys resolve against) defaults to the name in an
    eccv16 file name (``eccv16_dataset_tvsum_google_pool5.h5`` -> tvsum). A group lacking a
    required dataset is one line on ``log`` (stderr) and is skipped. ``store``: a path or URL,
    or a ``stores.Store``."""
    import sys

    from stores.splits import eccv16_dataset_name
    from stores.store import Store

    store = Store.at(store, storage_options)

    dataset = dataset or eccv16_dataset_name(h5_path) or ""
    result = H5Import()
    with open_h5(h5_path) as h5:
        try:
            root = store.root()
            manifest = store.manifest("vsum store import-h5")  # before any write
        except OSError as e:
            raise StoreError(f"cannot create or open the store ({e.strerror or e})", store.url) from None
        for key in sorted(h5.keys(), key=_natural):
            try:
                data = _read_group(h5[key])
            except ValueError as e:  # one bad group: one line, go on with the rest
                line = f"{h5_path}#{key}: {e}"
                print(line, file=log or sys.stderr)
                result.failed.append(line)
                continue
            try:
                result.ids.append(_write_video(root, h5_path, key, data, dataset))
                manifest.mark_changed(result.ids[-1])
            except OSError as e:  # the store, not this video: stop (the index stays marked open)
                raise StoreError(f"cannot write video {key} ({e.strerror or e})", store.url) from None
        manifest.close()
    return result
