"""What the report shows of one video: its labels, and for every method the frame scores and the
keyshots the protocol selects from them (the same functions the evaluation uses).

    curves [(store, video_id, step_scores [T], method)]  ->  [VideoView], one per (store, video)
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from jobs.eval_tasks import EvalConfig, load_labels


@dataclass
class MethodView:
    method: str
    step_scores: np.ndarray  # float [T]
    frame_scores: np.ndarray  # float64 [n_frames], zero-order hold from the picks
    summary: np.ndarray  # uint8 [n_frames], the selected keyshots
    selected: list[int]  # indices into the video's change points, ascending
    f1: float = float("nan")  # this method's F1 on this video (from the per-video table)


@dataclass
class VideoView:
    store: object  # a stores.Store (what the evaluation tasks held) or a path
    video_id: str
    dataset: str
    fps: float
    n_frames: int
    picks: np.ndarray  # int64 [T]
    change_points: np.ndarray  # int64 [S, 2], inclusive frame ranges
    user_scores: np.ndarray  # float64 [U, n_frames], each annotator scaled to [0, 1]
    chosen: np.ndarray  # bool [n_frames]: in at least half of the annotators' summaries
    methods: list[MethodView] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return self.n_frames / self.fps


def _scaled_users(lab: dict) -> np.ndarray:
    """Annotators' frame scores on one [0, 1] scale (TVSum's 1-5 and 0/1 summaries alike)."""
    ref = lab["user_scores"] if lab["user_scores"] is not None else lab["user_summary"]
    ref = np.asarray(ref, np.float64)
    lo, hi = float(ref.min()), float(ref.max())
    return (ref - lo) / (hi - lo) if hi > lo else np.zeros_like(ref)


def build_views(curves, f1_of: dict | None = None, cfg: EvalConfig = EvalConfig()) -> list[VideoView]:
    """One VideoView per (store, video), in first-seen order; ``f1_of[(method, video_id)]`` fills
    each method's F1. Raises LookupError/ValueError for a video without labels."""
    from pipeline.summary import select_keyshots, upsample_scores

    views: dict[tuple[str, str], VideoView] = {}
    for store, vid, scores, method in curves:
        key = (store, vid)
        if key not in views:
            lab = load_labels(store, vid)
            views[key] = VideoView(store, vid, lab["dataset"], float(lab["fps"] or 30.0),
                                   lab["n_frames"], lab["picks"], lab["change_points"],
                                   _scaled_users(lab),
                                   np.asarray(lab["user_summary"], np.float64).mean(axis=0) >= 0.5)
        v = views[key]
        scores = np.asarray(scores, np.float64)
        summary, selected = select_keyshots(scores, v.picks, v.n_frames, v.change_points,
                                            cfg.ratio, cfg.quantize)
        v.methods.append(MethodView(method, scores, upsample_scores(scores, v.picks, v.n_frames),
                                    np.asarray(summary, np.uint8), sorted(int(s) for s in selected),
                                    float((f1_of or {}).get((method, vid), float("nan")))))
    return list(views.values())
