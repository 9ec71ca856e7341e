"""Summary metrics (DESIGN.md §4, steps 4–5): F-score against annotators, rank correlations,
diversity, and ``evaluate_video`` — the one per-video function both ``vsum evaluate`` and
``vsum baselines`` map over videos.

Definitions (all pure numpy/scipy, no store access):
- F-score on binary frame vectors: P = overlap/|summary|, R = overlap/|user|, F = 2PR/(P+R),
  and F = 0 whenever overlap is 0 (this covers an empty summary and an empty user summary).
- Annotator reduction: "avg" (TVSum, the default) or "max" (SumMe).
- Rank correlation, Kendall tau-b and Spearman rho (average ranks for ties):
    *frame* level (Otani et al., CVPR 2019): zero-order-hold frame scores vs each annotator's
      frame scores, averaged over annotators;
    *pick* level (CA-SUM / PGL-SUM): step scores vs each annotator's scores at the picks.
  A constant input has no ranking: the correlation is NaN and is left out of averages.
- Keyframe F (CRSum, eqs. 2, 10, 11): the α-upper-quantile summary of the predicted scores
  against the α-upper-quantile summary of the ground-truth importance, both on the same sampled
  frames; one F per video (no annotator reduction).
- Diversity: mean pairwise (1 - cosine similarity) of the features of the selected steps
  (higher = more diverse; DSNet reports the mean similarity itself); 0 with fewer than 2 steps.
"""
from __future__ import annotations

import numpy as np
from numba import njit
from scipy import stats

from pipeline.summary import (
    DEFAULT_RATIO,
    quantile_summary,
    select_keyshots,
    select_keyshots_frames,
    upsample_scores,
)

METRICS = ("f1_avg", "f1_max", "kendall_tau_frame", "spearman_rho_frame",
           "kendall_tau_pick", "spearman_rho_pick", "diversity")
KEYFRAME_METRIC = "f1_keyframe"  # CRSum's protocol (keyframe_f_score)
RANK_LEVELS = ("frame", "pick")


# -- F-score ---------------------------------------------------------------------------------
def f_scores_per_user(summary, user_summaries) -> np.ndarray:
    """summary [n] binary, user_summaries [U, n] binary (nonzero = selected)
    -> F per annotator float64 [U]."""
    s = np.asarray(summary).ravel()
    u = np.asarray(user_summaries)
    u = u.reshape(1, -1) if u.ndim == 1 else u
    if u.shape[1] != len(s):
        raise ValueError(f"summary has {len(s)} frames but user summaries have {u.shape[1]}")
    sel = np.flatnonzero(s)
    overlap = np.count_nonzero(u[:, sel], axis=1).astype(np.float64)  # [U]
    n_user = np.count_nonzero(u, axis=1)
    p = overlap / max(len(sel), 1)
    r = overlap / np.maximum(n_user, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(overlap > 0, 2 * p * r / (p + r), 0.0)


def f_score(summary, user_summary) -> float:
    """F between two binary frame vectors [n]; 0 when they do not overlap."""
    return float(f_scores_per_user(summary, np.asarray(user_summary).reshape(1, -1))[0])


def reduce_users(per_user: np.ndarray, reduce: str = "avg") -> float:
    if reduce not in ("avg", "max"):
        raise ValueError(f"reduce must be 'avg' or 'max', not {reduce!r}")
    if len(per_user) == 0:
        return float("nan")
    return float(per_user.mean() if reduce == "avg" else per_user.max())


def f_score_users(summary, user_summaries, reduce: str = "avg") -> float:
    """F against every annotator [U, n], reduced with 'avg' (TVSum) or 'max' (SumMe)."""
    return reduce_users(f_scores_per_user(summary, user_summaries), reduce)


# -- rank correlation --------------------------------------------------------------------------
def _runs(x: np.ndarray, y: np.ndarray):
    """Joint run-length compression: frame-level scores are piecewise constant (one value per
    pick, TVSum annotators per ~2 s), so pairs are counted per run, weighted by run length.
    -> xr [R], yr [R], w int64 [R]"""
    change = np.flatnonzero((x[1:] != x[:-1]) | (y[1:] != y[:-1])) + 1
    starts = np.concatenate([[0], change])
    w = np.diff(np.append(starts, len(x))).astype(np.int64)
    return x[starts], y[starts], w


def _weighted_avg_ranks(v: np.ndarray, w: np.ndarray):
    """Average ranks (ties shared) of the values ``v`` repeated ``w`` times -> ranks [R],
    tied-pair count sum t(t-1)/2 over distinct values."""
    _, inv = np.unique(v, return_inverse=True)
    tot = np.bincount(inv, weights=w)
    ranks = (np.cumsum(tot) - tot) + (tot + 1) / 2
    return ranks[inv], float((tot * (tot - 1) / 2).sum())


@njit(cache=True)
def _signed_pairs(xr, yr, w):  # pragma: no cover - compiled
    """sum over run pairs r < s of w_r w_s sign(x_r - x_s) sign(y_r - y_s): concordant - discordant."""
    s = 0.0
    n = len(xr)
    for i in range(n):
        acc = 0.0
        for j in range(i + 1, n):
            dx = xr[i] - xr[j]
            dy = yr[i] - yr[j]
            if dx != 0.0 and dy != 0.0:
                acc += w[j] if (dx > 0.0) == (dy > 0.0) else -w[j]
        s += w[i] * acc
    return s


MAX_RUNS = 3000  # above this many joint runs, scipy's O(n log n) tau is faster than pairs


def _as_pair(x, y, name):
    x, y = np.asarray(x, np.float64).ravel(), np.asarray(y, np.float64).ravel()
    if len(x) != len(y):
        raise ValueError(f"{name}: lengths differ ({len(x)} vs {len(y)})")
    return x, y


def kendall_tau(x, y) -> float:
    """Kendall tau-b between two score vectors (= scipy.stats.kendalltau); NaN when either is
    constant. Computed exactly on joint runs of equal values, which is fast for the piecewise
    constant frame-level scores of this protocol."""
    x, y = _as_pair(x, y, "kendall_tau")
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    xr, yr, w = _runs(x, y)
    if len(xr) > MAX_RUNS:
        return float(stats.kendalltau(x, y).statistic)
    n = float(len(x))
    n0 = n * (n - 1) / 2
    _, n1 = _weighted_avg_ranks(xr, w)
    _, n2 = _weighted_avg_ranks(yr, w)
    s = _signed_pairs(xr, yr, w.astype(np.float64))
    return float(np.clip(s / np.sqrt((n0 - n1) * (n0 - n2)), -1.0, 1.0))


def spearman_rho(x, y) -> float:
    """Spearman rho (Pearson on average ranks, = scipy.stats.spearmanr); NaN when either is
    constant. Exact on joint runs (weighted ranks and moments)."""
    x, y = _as_pair(x, y, "spearman_rho")
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    xr, yr, w = _runs(x, y)
    rx, _ = _weighted_avg_ranks(xr, w)
    ry, _ = _weighted_avg_ranks(yr, w)
    wf = w.astype(np.float64)
    mx, my = (wf * rx).sum() / wf.sum(), (wf * ry).sum() / wf.sum()
    cov = (wf * (rx - mx) * (ry - my)).sum()
    den = np.sqrt((wf * (rx - mx) ** 2).sum() * (wf * (ry - my) ** 2).sum())
    return float(np.clip(cov / den, -1.0, 1.0)) if den > 0 else float("nan")


def _nanmean(values) -> float:
    a = np.asarray(values, np.float64)
    a = a[np.isfinite(a)]
    return float(a.mean()) if len(a) else float("nan")


def _users(scores, user_scores):
    x = np.asarray(scores, np.float64).ravel()
    us = np.atleast_2d(np.asarray(user_scores, np.float64))
    if us.shape[1] != len(x):
        raise ValueError(f"scores have {len(x)} entries but user scores have {us.shape[1]}")
    return x, us


def kendall_tau_users(scores, user_scores) -> float:
    """scores [n] vs each row of user_scores [U, n]: tau-b averaged over annotators."""
    x, us = _users(scores, user_scores)
    return _nanmean([kendall_tau(x, u) for u in us])


def spearman_rho_users(scores, user_scores) -> float:
    """scores [n] vs each row of user_scores [U, n]: rho averaged over annotators."""
    x, us = _users(scores, user_scores)
    return _nanmean([spearman_rho(x, u) for u in us])


def kendall_tau_frame(step_scores, picks, n_frames, user_scores) -> float:
    """Otani et al.: tau-b of zero-order-hold frame scores vs annotators' frame scores [U, n]."""
    return kendall_tau_users(upsample_scores(step_scores, picks, n_frames), user_scores)


def spearman_rho_frame(step_scores, picks, n_frames, user_scores) -> float:
    return spearman_rho_users(upsample_scores(step_scores, picks, n_frames), user_scores)


def kendall_tau_pick(step_scores, picks, user_scores) -> float:
    """CA-SUM/PGL-SUM: tau-b of step scores [T] vs annotators' scores at the picks [U, T]."""
    us = np.atleast_2d(np.asarray(user_scores))[:, np.asarray(picks, np.int64)]
    return kendall_tau_users(step_scores, us)


def spearman_rho_pick(step_scores, picks, user_scores) -> float:
    us = np.atleast_2d(np.asarray(user_scores))[:, np.asarray(picks, np.int64)]
    return spearman_rho_users(step_scores, us)


# -- CRSum's keyframe protocol ------------------------------------------------------------------
def gt_importance(user_summary, user_scores=None) -> np.ndarray:
    """Ground-truth importance per frame: the mean annotator score (TVSum, user_scores [U, n]),
    else the fraction of annotators who selected the frame (SumMe, user_summary [U, n]) ->
    float64 [n]."""
    ref = user_scores if user_scores is not None else (np.asarray(user_summary) > 0)
    return np.atleast_2d(np.asarray(ref, np.float64)).mean(axis=0)


def keyframe_f_score(pred_scores, gt_scores, alpha: float = DEFAULT_RATIO) -> float:
    """F between the α-upper-quantile summaries of the predicted and ground-truth scores (CRSum
    eqs. 2, 10, 11). pred_scores [N], gt_scores [N] (the same sampled frames). F = 0 when the two
    summaries share nothing (including when either is empty)."""
    pred, gt = _as_pair(pred_scores, gt_scores, "keyframe_f_score")
    s, g = quantile_summary(pred, alpha), quantile_summary(gt, alpha)
    overlap = int(np.count_nonzero(s & g))
    if overlap == 0:
        return 0.0
    p, r = overlap / int(s.sum()), overlap / int(g.sum())
    return 2 * p * r / (p + r)


def evaluate_video_keyframe(step_scores, picks, user_summary, user_scores=None, *,
                            alpha: float = DEFAULT_RATIO, stride: int = 1) -> dict[str, float]:
    """CRSum's protocol for one video: keep every ``stride``-th pick (4 on 15-frame picks = the
    paper's one frame in 60), take the predicted step scores and the ground-truth importance
    (``gt_importance``) at those frames, and score their α-quantile summaries.

    step_scores [T], picks [T], user_summary [U, n_frames], user_scores [U, n_frames] | None
    -> {"f1_keyframe": F}
    """
    scores = np.asarray(step_scores, np.float64).ravel()
    picks = np.asarray(picks, np.int64).ravel()
    if len(scores) != len(picks):
        raise ValueError(f"scores have {len(scores)} steps but picks have {len(picks)}")
    if stride < 1:
        raise ValueError(f"keyframe stride must be >= 1, got {stride}")
    gt = gt_importance(user_summary, user_scores)[picks[::stride]]
    return {KEYFRAME_METRIC: keyframe_f_score(scores[::stride], gt, alpha)}


# -- diversity ---------------------------------------------------------------------------------
def diversity(features, selected_steps) -> float:
    """Mean pairwise (1 - cosine similarity) over the selected steps.

    features [T, D] (or [T, C, h, w], averaged over space first), selected_steps bool [T]
    -> float in [0, 2]; 0.0 when fewer than 2 steps are selected.
    """
    f = np.asarray(features, np.float64)
    if f.ndim > 2:
        f = f.reshape(f.shape[0], f.shape[1], -1).mean(axis=2)
    sel = np.asarray(selected_steps).ravel().astype(bool)
    if len(sel) != len(f):
        raise ValueError(f"diversity: {len(sel)} selection flags for {len(f)} feature steps")
    x = f[sel]
    k = len(x)
    if k < 2:
        return 0.0
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    sim_sum = float((x.sum(axis=0) ** 2).sum() - (x**2).sum())  # sum over i != j of cos(i, j)
    return 1.0 - sim_sum / (k * (k - 1))


# -- one video ---------------------------------------------------------------------------------
def evaluate_video(step_scores, picks, n_frames: int, change_points, user_summary,
                   user_scores=None, features=None, *, ratio: float = DEFAULT_RATIO,
                   quantize: bool = False, rank: tuple[str, ...] = RANK_LEVELS,
                   summary=None, frame_scores=None) -> dict[str, float]:
    """Every metric of METRICS for one video; NaN where an input is missing.

    step_scores [T], picks [T], change_points [S, 2], user_summary [U, n_frames],
    user_scores [U, n_frames] | None, features [T, ...] | None.
    ``summary`` (uint8 [n_frames]) skips keyshot selection: baselines that are summaries
    rather than scores pass it directly. ``frame_scores`` [n_frames] (a head's frame-level
    output) replaces the zero-order hold of the step scores for the keyshot summary and the
    frame-level rank correlation; the pick level still uses ``step_scores``.
    """
    n_frames = int(n_frames)
    if frame_scores is not None:
        frame_scores = np.asarray(frame_scores, np.float64).ravel()
        if len(frame_scores) != n_frames:
            raise ValueError(f"frame scores have {len(frame_scores)} entries for {n_frames} frames")
    if summary is None:
        if frame_scores is None:
            summary, _ = select_keyshots(step_scores, picks, n_frames, change_points, ratio, quantize)
        else:
            summary, _ = select_keyshots_frames(frame_scores, change_points, ratio, quantize)
    per_user = f_scores_per_user(summary, user_summary)
    out = dict.fromkeys(METRICS, float("nan"))
    out["f1_avg"] = reduce_users(per_user, "avg")
    out["f1_max"] = reduce_users(per_user, "max")
    if user_scores is not None and step_scores is not None:
        us = np.atleast_2d(np.asarray(user_scores, np.float64))
        if "frame" in rank:
            frame = upsample_scores(step_scores, picks, n_frames) if frame_scores is None else frame_scores
            out["kendall_tau_frame"] = kendall_tau_users(frame, us)
            out["spearman_rho_frame"] = spearman_rho_users(frame, us)
        if "pick" in rank:
            at_picks = us[:, np.asarray(picks, np.int64)]
            out["kendall_tau_pick"] = kendall_tau_users(step_scores, at_picks)
            out["spearman_rho_pick"] = spearman_rho_users(step_scores, at_picks)
    if features is not None:
        out["diversity"] = diversity(features, np.asarray(summary)[np.asarray(picks, np.int64)] > 0)
    return out
