"""The peer's KTS: the cubic ``cpd_auto`` recipe that DSNet's ``make_dataset`` path runs per video,
written in our own code for ``vsum bench extract --peer`` (not ``pipeline.kts``, which is ours).

    K = X Xᵀ on the peer's L2-normalised float32 features            [n, n]
    scatter[i, j] = Σ_{t=i..j} K[t, t] − (Σ_{s,t=i..j} K[s, t]) / (j − i + 1)   (0 for j < i)
    best[k, l]   = min_t scatter[t, l−1] + best[k−1, t]     a Python loop over (k, l), numpy min
    cost(k)      = best[k, n] / n + vmax·k/(2n)·(log(n/k) + 1),  k = 0..n−1
    change points: the DP run again for k* = argmin cost, with back-pointers

Like the public code: full n×n matrices, the DP over every k up to m = n − 1 (O(m·n²) time),
and run twice (scores for every k, then the backtracked k*). Faithful, not tuned: this is the
baseline users run.
"""
from __future__ import annotations

import numpy as np

_INF = 1e101  # the public code's "infinity" in the DP table


def scatter_matrix(K: np.ndarray) -> np.ndarray:
    """Within-segment scatter for every (first, last) pair of steps: [n, n], 0 below the diagonal."""
    n = len(K)
    diag_cum = np.concatenate([[0.0], np.cumsum(np.diag(K))])  # Σ K[t, t] over t < a
    block = np.zeros((n + 1, n + 1))
    block[1:, 1:] = np.cumsum(np.cumsum(K, axis=0), axis=1)  # Σ K[:a, :b]
    first = np.arange(n)[:, None]
    last = np.arange(n)[None, :]
    inner = (np.diag(block)[1:][None, :] + np.diag(block)[:-1][:, None]
             - block[1:, :-1].T - block[:-1, 1:])  # Σ K over [first..last]²
    length = (last - first + 1).astype(np.float32) + (last == first - 1).astype(np.float32)
    scatter = diag_cum[1:][None, :] - diag_cum[:-1][:, None] - inner / length
    scatter[last < first] = 0
    return scatter


def segment_dp(K: np.ndarray, m: int, backtrack: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Best cut of n steps into k + 1 segments for k = 0..m -> (change points [m] of the k = m
    solution (zeros without ``backtrack``), scores [m + 1] = best within-segment scatter)."""
    m = int(m)
    n = len(K)
    scatter = scatter_matrix(K)
    best = np.full((m + 1, n + 1), _INF)
    best[0, 1:] = scatter[0, :]
    prev = np.zeros((m + 1, n + 1), dtype=int) if backtrack else None
    for k in range(1, m + 1):
        for end in range(k + 1, n + 1):  # segment k ends at step end - 1
            costs = scatter[k:end, end - 1] + best[k - 1, k:end]
            best[k, end] = np.min(costs)
            if backtrack:
                prev[k, end] = np.argmin(costs) + k
    cps = np.zeros(m, dtype=int)
    if backtrack:
        cur = n
        for k in range(m, 0, -1):
            cps[k - 1] = cur = prev[k, cur]
    scores = best[:, n].copy()
    scores[scores > 1e99] = np.inf
    return cps, scores


def cpd_auto(K: np.ndarray, max_cps: int, vmax: float = 1.0) -> np.ndarray:
    """Change points (segment starts, in steps) with their number chosen by the penalty."""
    n = len(K)
    _, scores = segment_dp(K, max_cps, backtrack=False)
    ks = np.arange(1, max_cps + 1)
    penalty = np.zeros(max_cps + 1)
    penalty[1:] = vmax * ks / (2.0 * n) * (np.log(float(n) / ks) + 1)
    k_best = int(np.argmin(scores / float(n) + penalty))
    cps, _ = segment_dp(K, k_best)
    return cps


def peer_segments(features: np.ndarray, n_frames: int, every: int
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """features [T, D] (L2-normalised) -> (change_points [S, 2] inclusive frames,
    n_frame_per_seg [S], picks [T]) as the eccv16 files store them."""
    T = len(features)
    picks = np.arange(T) * every
    cps = cpd_auto(features @ features.T, T - 1, 1.0) * every
    bounds = np.concatenate([[0], cps, [n_frames]])
    begin, end = bounds[:-1], bounds[1:]
    return np.stack([begin, end - 1], axis=1), end - begin, picks
