"""Step scores -> keyshot summary: the community protocol made exact (DESIGN.md §4, steps 1–3).

    upsample_scores   step scores [T] at picks [T]       -> frame scores [n_frames]  (zero-order hold)
    shot_scores       frame scores [n], change points [S, 2] -> shot means [S]        (inclusive ends)
    knapsack          values [S], weights [S], capacity  -> selected shot indices    (exact 0/1)
    select_keyshots   all of the above                   -> summary uint8 [n_frames], shot indices

Pure numpy (+ a numba DP for the knapsack); no store access. Edge cases are defined, not left to
chance: zero-length shots score 0 and weigh 0; scores whose length differs from picks raise a
``ValueError`` naming both lengths; an empty selection is a valid all-zero summary.
"""
from __future__ import annotations

import numpy as np
from numba import njit

DEFAULT_RATIO = 0.15
DSNET_SCALE = 1000  # DSNet: shot value = int(1000 * mean frame score)


def _check_picks(n_steps: int, picks: np.ndarray, n_frames: int) -> np.ndarray:
    picks = np.asarray(picks, dtype=np.int64).ravel()
    if n_steps != len(picks):
        raise ValueError(f"scores have {n_steps} steps but picks have {len(picks)}: "
                         "they must be aligned one score per pick")
    if len(picks) == 0:
        raise ValueError("no picks: cannot upsample an empty score sequence")
    if picks[0] < 0 or picks[-1] >= n_frames:
        raise ValueError(f"picks span [{picks[0]}, {picks[-1]}] outside [0, {n_frames}) frames")
    if len(picks) > 1 and np.any(np.diff(picks) <= 0):
        raise ValueError("picks must be strictly increasing frame indices")
    return picks


def upsample_scores(step_scores, picks, n_frames: int) -> np.ndarray:
    """Zero-order hold: frame f gets the score of the last pick <= f; the last block runs to
    ``n_frames``. Frames before the first pick (picks[0] > 0) take the first score.

    step_scores [T], picks [T] int -> float64 [n_frames]
    """
    scores = np.asarray(step_scores, dtype=np.float64).ravel()
    picks = _check_picks(len(scores), picks, int(n_frames))
    bounds = np.append(picks, n_frames)
    bounds[0] = 0  # hold the first score back to frame 0
    return np.repeat(scores, np.diff(bounds))


def _check_change_points(change_points, n_frames: int) -> np.ndarray:
    cps = np.asarray(change_points, dtype=np.int64).reshape(-1, 2)
    if len(cps) and (cps.min() < 0 or cps.max() >= n_frames):
        raise ValueError(f"change points span [{cps.min()}, {cps.max()}] outside "
                         f"[0, {n_frames}) frames")
    return cps


def shot_lengths(change_points, n_frames: int | None = None) -> np.ndarray:
    """Inclusive [first, last] -> last - first + 1, and 0 for zero-length (last < first) shots."""
    cps = np.asarray(change_points, dtype=np.int64).reshape(-1, 2)
    if n_frames is not None:
        _check_change_points(cps, n_frames)
    return np.maximum(cps[:, 1] - cps[:, 0] + 1, 0)


def shot_scores(frame_scores, change_points) -> np.ndarray:
    """Mean frame score over each shot's inclusive [first, last]; 0 for zero-length shots.

    frame_scores [n_frames], change_points int [S, 2] -> float64 [S]
    """
    fs = np.asarray(frame_scores, dtype=np.float64).ravel()
    cps = _check_change_points(change_points, len(fs))
    csum = np.concatenate([[0.0], np.cumsum(fs)])
    lengths = np.maximum(cps[:, 1] - cps[:, 0] + 1, 0)
    sums = np.where(lengths > 0, csum[np.maximum(cps[:, 1] + 1, cps[:, 0])] - csum[cps[:, 0]], 0.0)
    return np.divide(sums, lengths, out=np.zeros(len(cps)), where=lengths > 0)


@njit(cache=True)
def _knapsack_dp(values, weights, capacity, tol):  # pragma: no cover - compiled
    n = len(values)
    best = np.zeros(capacity + 1)
    take = np.zeros((n, capacity + 1), dtype=np.bool_)
    for i in range(n):
        w = weights[i]
        v = values[i]
        if w > capacity or v <= 0.0:
            continue  # a non-positive value never strictly improves a solution
        for c in range(capacity, w - 1, -1):
            cand = best[c - w] + v
            if cand > best[c] + tol:
                best[c] = cand
                take[i, c] = True
    chosen = np.zeros(n, dtype=np.bool_)
    c = capacity
    for i in range(n - 1, -1, -1):
        if take[i, c]:
            chosen[i] = True
            c -= weights[i]
    return chosen


def knapsack(values, weights, capacity: int, quantize: bool = False) -> np.ndarray:
    """Exact 0/1 knapsack: the subset of items maximising sum(values) with sum(weights) <= capacity.

    values [S] float, weights [S] int >= 0, capacity int >= 0 -> sorted selected indices int64 [k].
    Float64 DP over capacities. Ties are deterministic: an item is taken only when it strictly
    improves the best value of the items before it at that capacity (improvements below
    1e-12 x sum|values| count as ties), so among equal-value optima the later items stay out —
    the same rule as DSNet's table backtrack. ``quantize=True`` first maps values to
    ``int(1000 * v)`` as DSNet does, which turns near-equal shot means into exact ties.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    w = np.asarray(weights).ravel()
    if len(v) != len(w):
        raise ValueError(f"knapsack: {len(v)} values but {len(w)} weights")
    if len(w) and (np.any(w < 0) or (w.dtype.kind == "f" and np.any(w != np.round(w)))):
        raise ValueError("knapsack: weights must be non-negative integers")
    if not np.all(np.isfinite(v)):
        raise ValueError("knapsack: values must be finite (got NaN or inf)")
    capacity = int(capacity)
    if capacity < 0:
        raise ValueError(f"knapsack: capacity {capacity} < 0")
    if len(v) == 0:
        return np.zeros(0, dtype=np.int64)
    if quantize:
        v = np.trunc(DSNET_SCALE * v)
        tol = 0.0
    else:
        tol = 1e-12 * max(1.0, float(np.abs(v).sum()))
    chosen = _knapsack_dp(v, w.astype(np.int64), capacity, tol)
    return np.flatnonzero(chosen)


def summary_from_shots(change_points, selected, n_frames: int) -> np.ndarray:
    """Binary frame summary uint8 [n_frames] with the frames of the selected shots set to 1."""
    cps = np.asarray(change_points, dtype=np.int64).reshape(-1, 2)[np.asarray(selected, np.int64)]
    cps = cps[cps[:, 1] >= cps[:, 0]]
    edges = np.zeros(int(n_frames) + 1, dtype=np.int64)
    np.add.at(edges, cps[:, 0], 1)  # +1 where a shot starts, -1 after it ends
    np.add.at(edges, cps[:, 1] + 1, -1)
    return (np.cumsum(edges[:-1]) > 0).astype(np.uint8)


def select_keyshots(step_scores, picks, n_frames: int, change_points,
                    ratio: float = DEFAULT_RATIO, quantize: bool = False):
    """The whole protocol: upsample -> shot means -> knapsack at ``int(ratio * n_frames)``.

    step_scores [T], picks [T], change_points [S, 2]
    -> (summary uint8 [n_frames], selected shot indices int64 [k])
    """
    n_frames = int(n_frames)
    frame_scores = upsample_scores(step_scores, picks, n_frames)
    values = shot_scores(frame_scores, change_points)
    weights = shot_lengths(change_points)
    selected = knapsack(values, weights, int(ratio * n_frames), quantize=quantize)
    return summary_from_shots(change_points, selected, n_frames), selected


def uniform_segments(n_frames: int, fps: float, seconds: float = 2.0) -> np.ndarray:
    """Fallback shots when no KTS exists: consecutive ``seconds``-long blocks, the last one
    shorter. -> int32 [S, 2] inclusive [first, last]."""
    n_frames = int(n_frames)
    size = max(1, round(float(fps) * seconds))
    starts = np.arange(0, n_frames, size, dtype=np.int64)
    ends = np.minimum(starts + size, n_frames) - 1
    return np.stack([starts, ends], axis=1).astype(np.int32)
