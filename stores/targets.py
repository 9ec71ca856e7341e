"""Supervised training targets read from a store's labels (the heads' ``sup_target`` field).

    "gtscore"  labels/gtscore [T]: the mean annotator score at the picks (today's default)
    "oracle"   the oracle summary (``pipeline.summary.oracle_summary``) of the annotators'
               summaries: the greedy selection that maximally agrees with all of them (the
               target of dppLSTM, SUM-FCN and 3DST-UNet-RL §IV.B), 0/1
    "gtsummary"  0/1 keyframes at the picks: the dataset's own ``labels/gtsummary`` (kept by
               ``vsum store import-h5``), else the frames that at least half of the annotators
               selected (the rule ``vsum store export-h5`` writes as eccv16's ``gtsummary``)

With ``n_sub`` > 1 (a frame-level head: n sub-scores per step) the target is [T, n]: the
frame-level oracle (or annotator mean) averaged over each sub-score's frames
(``pipeline.summary.part_means``); ``gtscore`` has no frame level and is repeated per sub-score.
"""
from __future__ import annotations

import numpy as np

from pipeline.summary import oracle_summary, part_means
from stores import layout

TARGETS = ("gtscore", "oracle", "gtsummary")
GTSUMMARY = layout.GTSUMMARY


def supervised_target(store, video_id: str, kind: str = "gtscore", n_sub: int = 1) -> np.ndarray | None:
    """store: a FeatureStore. -> float32 [T] (n_sub == 1) or [T, n_sub]; None when the store
    lacks the labels the target needs (the trainer then names the video)."""
    if kind not in TARGETS:
        raise ValueError(f"sup_target must be one of {TARGETS}, not {kind!r}")
    if kind == "gtscore":
        if not store.has(video_id, layout.GTSCORE):
            return None
        g = store.load(video_id, layout.GTSCORE).astype(np.float32)
        return g if n_sub == 1 else np.repeat(g[:, None], n_sub, axis=1)
    if kind == "gtsummary" and n_sub == 1 and store.has(video_id, GTSUMMARY):
        return (store.load(video_id, GTSUMMARY) > 0.5).astype(np.float32)
    if not store.has(video_id, layout.USER_SUMMARY):
        return None
    users = store.load(video_id, layout.USER_SUMMARY)
    picks = store.load(video_id, layout.PICKS).astype(np.int64)
    if kind == "oracle":
        if n_sub == 1:
            return oracle_summary(users[:, picks]).astype(np.float32)
        frames = oracle_summary(users)
    else:
        frames = ((users > 0).mean(axis=0) >= 0.5).astype(np.float32)
        if n_sub == 1:
            return frames[picks].astype(np.float32)
    return part_means(frames, picks, n_sub).astype(np.float32)
