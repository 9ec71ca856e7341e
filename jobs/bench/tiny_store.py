"""Many complete video groups, fast: tiny arrays, no extraction (a local store).

    ids = write_tiny_store("/tmp/s.zarr", 5000)    # video groups v00000 ... v04999 + manifest

Each video: 8 steps (picks 0, 15, ..., 105 of 120 frames), ``features/googlenet`` [8, 16],
two KTS-style segments, ``labels/gtscore`` [8] and ``labels/user_summary`` [2, 120], and the
attributes an extracted video has (source, frame counts, ``config_hash``, weights, dataset).

The first video is written by the store writer (``VideoWriter``, ``complete`` last); the others
are copies of its files with their own ``source`` attribute (the writer needs ~0.1-0.3 s per
video through Zarr on a busy 2-core machine; a copy needs a millisecond), all while a real
``Manifest`` is open, which ``close()``s at the end, so the store has its index. Used by
``vsum bench scale --latency-ms`` and the latency tests, which then serve it over S3.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from stores import layout
from stores.location import open_root
from stores.manifest import Manifest
from stores.writer import VideoWriter

CONFIG_HASH = "tiny-store-v1"
N_FRAMES, EVERY, DIM = 120, 15, 16


def tiny_video_ids(n: int) -> list[str]:
    return [f"v{i:05d}" for i in range(n)]


def tiny_sources(n: int, prefix: str = "s3://media/videos") -> list[str]:
    """Input paths whose video ids are the store's (for planning a re-run)."""
    return [f"{prefix}/{vid}.mp4" for vid in tiny_video_ids(n)]


def write_tiny_video(root, vid: str, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    picks = np.arange(0, N_FRAMES, EVERY, dtype=np.int32)
    t = len(picks)
    w = VideoWriter(root, vid)
    w.begin({"source": f"s3://media/videos/{vid}.mp4", "config_hash": CONFIG_HASH,
             "weights": {"googlenet": "random-init"}, "dataset": "tiny",
             "sample": f"every {EVERY} frames"})
    w.write(layout.PICKS, picks)
    w.write(layout.feature_path("googlenet"), rng.standard_normal((t, DIM)).astype(np.float32))
    cps = np.array([[0, 59], [60, N_FRAMES - 1]], dtype=np.int32)
    w.write(layout.CHANGE_POINTS, cps)
    w.write(layout.N_FRAME_PER_SEG, (cps[:, 1] - cps[:, 0] + 1).astype(np.int32))
    w.write(layout.GTSCORE, rng.random(t).astype(np.float32))
    w.write(layout.USER_SUMMARY, (rng.random((2, N_FRAMES)) < 0.15).astype(np.uint8))
    info = {"n_frames": N_FRAMES, "n_frames_container": N_FRAMES, "fps": 30.0,
            "duration_s": N_FRAMES / 30.0, "n_steps": t, "width": 32, "height": 32, "rotation": 0}
    w.finish(info)
    return {"video_id": vid, "source": f"s3://media/videos/{vid}.mp4", "status": "complete",
            "error": "", **info}


def write_tiny_store(store: str, n: int) -> list[str]:
    """``n`` complete tiny videos in the local ``store`` (created when missing) -> their ids."""
    root = open_root(store, "a")
    manifest = Manifest(store, command="write_tiny_store")
    ids = tiny_video_ids(n)
    first = write_tiny_video(root, ids[0], seed=0)
    manifest.update(first)
    videos = Path(store) / layout.VIDEOS
    group = json.loads((videos / ids[0] / "zarr.json").read_text())
    for vid in ids[1:]:
        shutil.copytree(videos / ids[0], videos / vid)
        source = f"s3://media/videos/{vid}.mp4"
        group["attributes"]["source"] = source
        (videos / vid / "zarr.json").write_text(json.dumps(group, indent=2))
        manifest.update({**first, "video_id": vid, "source": source})
    manifest.close()
    return ids
