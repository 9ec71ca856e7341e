"""The store contract (DESIGN.md §3) as names, in one place.

    <name>.zarr/                 attrs: vsum_schema, created_by
      videos/<video_id>/         attrs: source, n_frames, ..., complete (written LAST)
        picks                    int32   [T]
        features/<extractor>     [T, *feature_shape]
        frames                   uint8   [T, H, W, 3]
        segments/change_points   int32   [S, 2]   inclusive [first, last] frame indices
        segments/n_frame_per_seg int32   [S]
        labels/gtscore           float32 [T]
        labels/user_summary      uint8   [U, n_frames]
        labels/user_scores       float32 [U, n_frames]
        labels/gtsummary         float32 [T]      the dataset's own keyframes (eccv16 h5 import)
      manifest/NNNNNNNNNN.parquet  append-only parts: one row per video (status, error,
                                 timings) and the store's index (stores/manifest_parts.py)
"""
from __future__ import annotations

SCHEMA_VERSION = 1
VIDEOS = "videos"
PICKS = "picks"
FEATURES = "features"
FRAMES = "frames"
CHANGE_POINTS = "segments/change_points"
N_FRAME_PER_SEG = "segments/n_frame_per_seg"
GTSCORE = "labels/gtscore"
USER_SUMMARY = "labels/user_summary"
USER_SCORES = "labels/user_scores"
GTSUMMARY = "labels/gtsummary"  # float32 [T], 0/1 at the picks (the eccv16 h5 ``gtsummary``)
MANIFEST_DIR = "manifest"
MANIFEST = "manifest.parquet"  # the single-file manifest of older stores (still read)
COMPLETE = "complete"

DEFAULT_SAMPLE_EVERY = 15  # eccv16 convention: picks = 0, 15, 30, ...

# Rows per chunk along time, chosen so one chunk is ~0.5–2 MB uncompressed.
CHUNK_STEPS = {"features/googlenet": 256, "frames": 16, "picks": 4096}
DEFAULT_CHUNK_STEPS = 64


def feature_path(name: str) -> str:
    return FRAMES if name == FRAMES else f"{FEATURES}/{name}"


def chunk_steps(array_path: str) -> int:
    return CHUNK_STEPS.get(array_path, DEFAULT_CHUNK_STEPS)


def video_group_path(video_id: str) -> str:
    return f"{VIDEOS}/{video_id}"
