"""The per-video work of an evaluation, run on Dask workers: a video's labels read once from its
store, then the exact protocol (``pipeline/metrics.evaluate_video``) for every prediction of it.

    task {store, video_id, preds: [row dicts with "scores" [T] and the ROW_KEYS]}
        -> (long rows {ROW_KEYS..., metric, value}, one error line per bad prediction)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# weights: where the features came from (the store's per-video ``weights`` attribute for the
# prediction's extractor, e.g. "random-init(seed=0)"), so every table can say it
GROUP_KEYS = ["method", "head", "features", "weights", "dataset", "setting", "split", "seed"]
ROW_KEYS = GROUP_KEYS + ["selection", "video_id"]


@dataclass(frozen=True)
class EvalConfig:
    ratio: float = 0.15  # summary length, fraction of frames (the community's 15%)
    quantize: bool = False  # DSNet's int(1000 * mean) shot values
    rank: tuple[str, ...] = ("frame", "pick")  # rank-correlation levels to compute
    diversity: bool = True


# -- labels (runs in workers) -------------------------------------------------------------------
_STORES: dict = {}


def _store(path: str):
    from stores.reader import FeatureStore

    if path not in _STORES:
        _STORES[path] = FeatureStore(path)
    return _STORES[path]


def load_labels(store_path: str, video_id: str, features: str | None = None) -> dict:
    """Everything the protocol needs for one video: picks [T], n_frames, change_points [S, 2]
    (uniform 2-second segments when the store has none), user_summary [U, n], user_scores
    [U, n] | None, features [T, ...] | None, dataset, and weights: {extractor: the recorded
    weights as one string, e.g. "random-init(seed=0)"} (empty when none are recorded)."""
    from pipeline.summary import uniform_segments
    from stores import layout

    st = _store(store_path)
    if not st.is_complete(video_id):
        raise LookupError(f"{store_path}: no complete video {video_id!r}")
    a = st.attrs(video_id)
    n = int(a["n_frames"])
    if not st.has(video_id, layout.USER_SUMMARY):
        raise LookupError(f"{store_path}/{video_id}: no labels (run vsum import first)")
    cps = None
    if st.has(video_id, layout.CHANGE_POINTS):
        cps = st.load(video_id, layout.CHANGE_POINTS).reshape(-1, 2)
    if cps is None or len(cps) == 0:
        cps = uniform_segments(n, float(a.get("fps") or 30.0))
    feats = None
    for name in ([features] if features else []) + ["googlenet"]:
        if name and st.has(video_id, layout.feature_path(name)) and name != layout.FRAMES:
            feats = st.load(video_id, layout.feature_path(name))
            break
    return {
        "picks": st.load(video_id, layout.PICKS).astype(np.int64), "n_frames": n,
        "change_points": cps.astype(np.int64),
        "user_summary": st.load(video_id, layout.USER_SUMMARY),
        "user_scores": st.load(video_id, layout.USER_SCORES)
        if st.has(video_id, layout.USER_SCORES) else None,
        "features": feats, "dataset": str(a.get("dataset", "")), "fps": a.get("fps"),
        "weights": {k: weights_label(v) for k, v in (a.get("weights") or {}).items()}
        if isinstance(a.get("weights"), dict) else {},
    }


def weights_label(value) -> str:
    """A store's recorded weights of one extractor as one string ("" when none): a name, a
    path, "random-init(seed=0)", or a small dict (name, hash, ...) written compactly."""
    if value is None:
        return ""
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return str(value)


def _long_rows(meta: dict, metrics: dict) -> list[dict]:
    return [{**meta, "metric": m, "value": float(v)} for m, v in metrics.items()]


def evaluate_predictions(task: dict, cfg: EvalConfig) -> tuple[list[dict], list[str]]:
    """One video, every prediction of it. task: {store, video_id, preds: [row dicts]}."""
    from pipeline.metrics import evaluate_video

    rows, errors = [], []
    try:
        lab = load_labels(task["store"], task["video_id"], task["preds"][0].get("features"))
    except (LookupError, ValueError, OSError) as exc:
        return [], [f"{task['store']}/{task['video_id']}: {str(exc).splitlines()[0]}"]
    for p in task["preds"]:
        try:
            m = evaluate_video(p["scores"], lab["picks"], lab["n_frames"], lab["change_points"],
                               lab["user_summary"], lab["user_scores"],
                               lab["features"] if cfg.diversity else None,
                               ratio=cfg.ratio, quantize=cfg.quantize, rank=cfg.rank)
        except ValueError as exc:
            errors.append(f"{p['method']} {task['video_id']}: {str(exc).splitlines()[0]}")
            continue
        meta = {k: p.get(k, "") for k in ROW_KEYS}
        meta["dataset"] = meta["dataset"] or lab["dataset"]
        meta["weights"] = meta["weights"] or lab["weights"].get(meta["features"], "")
        rows += _long_rows(meta, m)
    return rows, errors


