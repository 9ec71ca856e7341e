"""The per-video work of an evaluation, run on Dask workers: a video's labels read once from its
store, then the exact protocol (``pipeline/metrics.evaluate_video``) for every prediction of it.

    task {store: a stores.Store (its credentials travel with it), video_id,
          preds: [row dicts with the ROW_KEYS and one of
          "scores" [T] step scores at the picks        (runs; kind "steps", the default)
          "scores" [T] or [n_frames], kind "scores"    (external tables: the length tells which)
          "summary" uint8 [n_frames], kind "summary"   (a ready-made keyshot summary, as given)
          and optionally "fm": the file's own F of this video, kept as metric "fm_file"]}
        -> (long rows {ROW_KEYS..., metric, value}, one error line per bad prediction)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# weights: where the features came from (the store's per-video ``weights`` attribute for the
# prediction's extractor, e.g. "random-init(seed=0)"), so every table can say it
GROUP_KEYS = ["method", "head", "features", "weights", "dataset", "setting", "split", "seed"]
ROW_KEYS = GROUP_KEYS + ["selection", "video_id"]


PROTOCOLS = ("keyshot", "crsum-keyframe")
BUDGETS = ("ratio", "P")


@dataclass(frozen=True)
class EvalConfig:
    """How predictions are scored. Defaults: the community's keyshot protocol at 15%.

    protocol   "keyshot" (DESIGN.md §4) | "crsum-keyframe": additionally CRSum's keyframe F
               (``f1_keyframe``: α-quantile summaries of predicted vs ground-truth importance at
               every ``keyframe_stride``-th pick, α = ``ratio``; pipeline/metrics.py)
    budget     "ratio": the keyshot summary holds ``ratio`` of the frames; "P": each video's own
               annotator proportion (3DST-UNet-RL's l = P, Fig. 5b)
    """

    ratio: float = 0.15  # summary length, fraction of frames (the community's 15%)
    quantize: bool = False  # DSNet's int(1000 * mean) shot values
    rank: tuple[str, ...] = ("frame", "pick")  # rank-correlation levels to compute
    diversity: bool = True
    protocol: str = "keyshot"
    budget: str = "ratio"
    keyframe_stride: int = 1  # 4 on 15-frame picks = CRSum's one frame in 60

    def __post_init__(self):
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {PROTOCOLS}, not {self.protocol!r}")
        if self.budget not in BUDGETS:
            raise ValueError(f"budget must be one of {BUDGETS}, not {self.budget!r}")
        if not 0.0 < self.ratio < 1.0 or self.keyframe_stride < 1:
            raise ValueError(f"ratio must be in (0, 1) and keyframe_stride >= 1 "
                             f"(got {self.ratio}, {self.keyframe_stride})")


# -- labels (runs in workers) -------------------------------------------------------------------
_STORES: dict = {}  # URL -> FeatureStore, opened once per worker process


def _store(store):
    """The reader of a ``stores.Store`` (or path/URL), cached per process by URL (one URL is
    one store, whichever credentials reach it)."""
    from stores.store import Store

    store = Store.at(store)
    if store.url not in _STORES:
        _STORES[store.url] = store.reader()
    return _STORES[store.url]


def load_labels(store_path, video_id: str, features: str | None = None) -> dict:
    """Everything the protocol needs for one video: picks [T], n_frames, change_points [S, 2]
    (uniform 2-second segments when the store has none), user_summary [U, n], user_scores
    [U, n] | None, features [T, ...] | None, dataset, and weights: {extractor: the recorded
    weights as one string, e.g. "random-init(seed=0)"} (empty when none are recorded).
    store_path: a ``stores.Store`` or a path/URL."""
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


def split_scores(scores, n_steps: int) -> tuple[np.ndarray, np.ndarray | None]:
    """A prediction's scores -> (step scores [T], sub-scores [T, n] | None). Length T: one score
    per pick. Length n·T (n > 1): a frame-level head's n sub-scores per pick (3DST-UNet-RL's
    L = T × n output); the step score is their mean."""
    s = np.asarray(scores, np.float64).ravel()
    if len(s) == n_steps or n_steps == 0 or len(s) % n_steps:
        return s, None  # (a wrong length is reported by the protocol, naming both lengths)
    sub = s.reshape(n_steps, -1)
    return sub.mean(axis=1), sub


def summary_ratio(lab: dict, cfg: EvalConfig) -> float:
    """The keyshot budget: ``--ratio`` of the frames, or (l = P) the annotators' own proportion."""
    from pipeline.summary import annotator_proportion

    return cfg.ratio if cfg.budget == "ratio" else annotator_proportion(lab["user_summary"])


def score_video(scores, lab: dict, cfg: EvalConfig) -> dict[str, float]:
    """Every metric of one prediction of one video (labels from ``load_labels``)."""
    from pipeline.metrics import evaluate_video, evaluate_video_keyframe
    from pipeline.summary import upsample_subscores

    step, sub = split_scores(scores, len(lab["picks"]))
    frames = None if sub is None else upsample_subscores(sub, lab["picks"], lab["n_frames"])
    m = evaluate_video(step, lab["picks"], lab["n_frames"], lab["change_points"],
                       lab["user_summary"], lab["user_scores"],
                       lab["features"] if cfg.diversity else None, ratio=summary_ratio(lab, cfg),
                       quantize=cfg.quantize, rank=cfg.rank, frame_scores=frames)
    if cfg.protocol == "crsum-keyframe":
        m.update(evaluate_video_keyframe(step, lab["picks"], lab["user_summary"],
                                         lab["user_scores"], alpha=cfg.ratio,
                                         stride=cfg.keyframe_stride))
    return m


def evaluate_predictions(task: dict, cfg: EvalConfig) -> tuple[list[dict], list[str]]:
    """One video, every prediction of it. task: {store (a Store), video_id, preds: [row dicts]}."""
    rows, errors = [], []
    try:
        lab = load_labels(task["store"], task["video_id"], task["preds"][0].get("features"))
    except (LookupError, ValueError, OSError) as exc:
        return [], [f"{task['store']}/{task['video_id']}: {str(exc).splitlines()[0]}"]
    for p in task["preds"]:
        try:
            m = evaluate_one(p, lab, cfg)
        except ValueError as exc:
            errors.append(f"{p['method']} {task['video_id']}: {str(exc).splitlines()[0]}")
            continue
        if p.get("fm") is not None:
            m["fm_file"] = float(p["fm"])  # the file's own F, reported beside ours
        meta = {k: p.get(k, "") for k in ROW_KEYS}
        meta["dataset"] = meta["dataset"] or lab["dataset"]
        meta["weights"] = meta["weights"] or lab["weights"].get(meta["features"], "")
        rows += _long_rows(meta, m)
    return rows, errors


def evaluate_one(p: dict, lab: dict, cfg: EvalConfig) -> dict[str, float]:
    """One prediction of one video (see the module docstring for its kinds) -> metrics."""
    from pipeline.metrics import evaluate_video

    picks, n = lab["picks"], lab["n_frames"]
    feats = lab["features"] if cfg.diversity else None
    args = (picks, n, lab["change_points"], lab["user_summary"], lab["user_scores"], feats)
    kind = p.get("kind", "steps")
    if kind == "summary":
        summary = np.asarray(p["summary"], np.uint8).ravel()
        if len(summary) != n:
            raise ValueError(f"summary has {len(summary)} frames but the video has {n}")
        return evaluate_video(None, *args, summary=summary, rank=())
    if kind == "steps":  # a run's scores: one per pick, or a frame-level head's n per pick
        return score_video(p["scores"], lab, cfg)
    scores = np.asarray(p["scores"], np.float64).ravel()
    if len(scores) == len(picks):
        return score_video(scores, lab, cfg)
    if len(scores) != n:
        raise ValueError(f"{len(scores)} scores match neither the {len(picks)} picks nor the "
                         f"{n} frames of the video")
    # frame scores [n_frames]: they replace the zero-order hold; the pick level uses them at the picks
    return evaluate_video(scores[picks], *args, ratio=summary_ratio(lab, cfg), quantize=cfg.quantize,
                          rank=cfg.rank, frame_scores=scores)


