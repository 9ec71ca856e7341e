"""Step scores -> keyshot summary: the community protocol made exact (DESIGN.md §4, steps 1–3).

    upsample_scores   step scores [T] at picks [T]       -> frame scores [n_frames]  (zero-order hold)
    shot_scores       frame scores [n], change points [S, 2] -> shot means [S]        (inclusive ends)
    knapsack          values [S], weights [S], capacity  -> selected shot indices    (exact 0/1)
    select_keyshots   all of the above                   -> summary uint8 [n_frames], shot indices
    upsample_subscores  n sub-scores per step [T, n]    -> frame scores (frame-level output)
    annotator_proportion, quantile_summary, oracle_summary: budgets and targets of the papers

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
    return select_keyshots_frames(frame_scores, change_points, ratio, quantize)


def select_keyshots_frames(frame_scores, change_points, ratio: float = DEFAULT_RATIO,
                           quantize: bool = False):
    """Steps 2–3 of the protocol on frame scores [n_frames] (already upsampled, or a head's
    frame-level output) -> (summary uint8 [n_frames], selected shot indices int64 [k])."""
    n_frames = len(frame_scores)
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


def subscore_parts(picks, n_frames: int, n: int) -> np.ndarray:
    """Frames per sub-score when each step's frame block (pick t to the next pick; the last block
    runs to ``n_frames``) is split into n near-equal consecutive parts (``np.array_split``'s
    sizes: part j of L frames has L // n + (j < L % n)). -> int64 [T, n], rows sum to the
    block lengths (the first block starts at frame 0)."""
    picks = np.asarray(picks, dtype=np.int64).ravel()
    bounds = np.append(picks, int(n_frames))
    bounds[0] = 0
    lengths = np.diff(bounds)
    j = np.arange(int(n))
    return lengths[:, None] // n + (j[None, :] < (lengths % n)[:, None])


def upsample_subscores(sub_scores, picks, n_frames: int) -> np.ndarray:
    """Frame-level output: n sub-scores per step (3DST-UNet's L = T × n latent scores) -> one
    score per frame; part j of step t's frame block (``subscore_parts``) takes sub-score j.
    With n = 1 this is ``upsample_scores``.

    sub_scores [T, n], picks [T] -> float64 [n_frames]
    """
    sub = np.asarray(sub_scores, dtype=np.float64)
    sub = sub.reshape(len(sub), -1)
    picks = _check_picks(len(sub), picks, int(n_frames))
    parts = subscore_parts(picks, n_frames, sub.shape[1])
    return np.repeat(sub.ravel(), parts.ravel())


def part_means(frame_values, picks, n: int) -> np.ndarray:
    """The inverse view: the mean of ``frame_values`` [n_frames] over every sub-score's part ->
    float64 [T, n]; a part with no frame (a block shorter than n) takes its block's first frame."""
    v = np.asarray(frame_values, dtype=np.float64).ravel()
    parts = subscore_parts(picks, len(v), n).ravel()
    starts = np.concatenate([[0], np.cumsum(parts)[:-1]])
    csum = np.concatenate([[0.0], np.cumsum(v)])
    ends = starts + parts
    sums = csum[ends] - csum[starts]
    first = v[np.minimum(starts, len(v) - 1)]
    out = np.where(parts > 0, sums / np.maximum(parts, 1), first)
    return out.reshape(-1, int(n))


def annotator_proportion(user_summary) -> float:
    """l = P of 3DST-UNet-RL (Fig. 5b): the mean over annotators of the fraction of frames each
    one selected. user_summary [U, n_frames] (nonzero = selected) -> float in [0, 1]."""
    u = np.atleast_2d(np.asarray(user_summary))
    if u.size == 0:
        return float("nan")
    return float(np.mean(np.count_nonzero(u, axis=1) / u.shape[1]))


def quantile_summary(scores, alpha: float = DEFAULT_RATIO) -> np.ndarray:
    """CRSum's keyframe summary (eqs. 1–2): the items whose score is strictly above the α-upper
    quantile s_α of the scores, i.e. ``s > quantile(s, 1 − α)`` (numpy's linear interpolation).
    Ties at s_α stay out, so a constant score vector selects nothing.

    scores [N] -> bool [N]
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"quantile_summary: alpha must be in (0, 1), got {alpha}")
    s = np.asarray(scores, dtype=np.float64).ravel()
    if len(s) == 0:
        return np.zeros(0, dtype=bool)
    return s > np.quantile(s, 1.0 - alpha)


def oracle_summary(user_summaries) -> np.ndarray:
    """The "oracle" summary that maximally agrees with every annotator (Gong et al. 2014; the
    supervised target of dppLSTM, SUM-FCN and 3DST-UNet-RL §IV.B): greedy forward selection.
    Start empty; repeatedly add the item that most increases the mean F-score over annotators;
    stop when no item increases it. Ties go to the earliest item.

    user_summaries [U, N] binary (items: frames, or steps at the picks) -> uint8 [N]

    Adding item i changes annotator u's F to 2(o_u + y_ui)/(|S| + 1 + |Y_u|), so items with the
    same column y_·i are interchangeable: the greedy runs over the distinct columns (a few
    hundred even for every frame of a video), taking each column's items in time order.
    """
    u = np.atleast_2d(np.asarray(user_summaries)) > 0  # [U, N]
    n_items = u.shape[1]
    chosen = np.zeros(n_items, dtype=np.uint8)
    if n_items == 0:
        return chosen
    cols, inverse, counts = np.unique(u.T, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.ravel()
    members = [np.flatnonzero(inverse == k) for k in range(len(cols))]  # each in time order
    y = cols.T.astype(np.float64)  # [U, K]
    n_user = u.sum(axis=1).astype(np.float64)  # [U]
    taken = np.zeros(len(cols), dtype=np.int64)
    overlap = np.zeros(len(u))
    size, best = 0, 0.0
    while size < n_items:
        cand = (2.0 * (overlap[:, None] + y) / (size + 1 + n_user[:, None])).mean(axis=0)  # [K]
        cand[taken >= counts] = -np.inf
        top = cand.max()
        if not top > best + 1e-12:
            break
        ties = np.flatnonzero(cand >= top - 1e-12)
        k = min(ties, key=lambda c: members[c][taken[c]])  # the earliest next item
        chosen[members[k][taken[k]]] = 1
        taken[k] += 1
        overlap += y[:, k]
        size += 1
        best = float(top)
    return chosen
