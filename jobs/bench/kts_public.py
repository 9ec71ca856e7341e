"""The baseline ``vsum bench kts`` times: the public KTS code (cpd_nonlin + cpd_auto as DSNet and
VASNet ship it), rewritten here from its description, fed the same float64 kernel as ours.

O(m·n²) time, O(n²) memory: scatters vectorised over full n×n matrices, then a Python loop over
the DP cells (k, l) with one numpy min (and argmin) per cell, run twice: scores for every k,
then the backtracked k*. The scatters are computed once for both passes (the public code
recomputes them in each call), so the baseline is if anything a little faster than the original.
tests/test_kts.py proves it equal to the loop reference in tests/kts_reference.py.
"""
from __future__ import annotations

import numpy as np

_BIG = 1e101  # the public code's "infinity"; scores above 1e99 become inf


def public_scatters(K: np.ndarray) -> np.ndarray:
    """J [n, n]: J[i, j] = scatter of steps i..j (0 below the diagonal)."""
    n = K.shape[0]
    K1 = np.cumsum(np.concatenate(([0.0], np.diag(K))))
    K2 = np.zeros((n + 1, n + 1))
    K2[1:, 1:] = np.cumsum(np.cumsum(K, 0), 1)
    d = np.diag(K2)
    i = np.arange(n)[:, None]
    j = np.arange(n)[None, :]
    num = d[1:][None, :] + d[:-1][:, None] - K2[1:, :-1].T - K2[:-1, 1:]
    J = K1[1:][None, :] - K1[:-1][:, None] - num / np.maximum(j - i + 1, 1).astype(np.float64)
    J[j < i] = 0
    return J


def public_cpd_nonlin(J: np.ndarray, m: int, lmax: int | None = None, backtrack: bool = True,
                      progress=None) -> tuple[np.ndarray, np.ndarray]:
    """(change points [m], scores I[:, n] [m+1]) for exactly m change points (lmin = 1).
    ``progress(k, m)`` is called after each layer k."""
    n = J.shape[0]
    lmax = n if lmax is None else lmax
    I = np.full((m + 1, n + 1), _BIG)
    I[0, 1:lmax + 1] = J[0, :lmax]
    p = np.zeros((m + 1, n + 1), dtype=np.int64) if backtrack else None
    for k in range(1, m + 1):
        for l in range(k + 1, n + 1):
            tmin = max(k, l - lmax)
            c = J[tmin:l, l - 1] + I[k - 1, tmin:l]
            I[k, l] = np.min(c)
            if backtrack:
                p[k, l] = np.argmin(c) + tmin
        if progress is not None:
            progress(k, m)
    cps = np.zeros(m, dtype=np.int64)
    if backtrack:
        cur = n
        for k in range(m, 0, -1):
            cps[k - 1] = p[k, cur]
            cur = cps[k - 1]
    scores = I[:, n].copy()
    scores[scores > 1e99] = np.inf
    return cps, scores


def public_change_points(features: np.ndarray, vmax: float = 1.0, lmax: int | None = None,
                         progress=None) -> np.ndarray:
    """DSNet's call on features [n, D]: K = X Xᵀ on L2-normalised rows, cpd_auto(K, n-1, vmax):
    scores for 0..n-1 change points, penalised, first argmin k*, backtrack. int64 [k*]."""
    from pipeline.kts import linear_kernel, normalized_features

    x = normalized_features(features)
    n = len(x)
    if n < 2:
        return np.zeros(0, np.int64)
    J = public_scatters(linear_kernel(x))
    m = n - 1
    _, scores = public_cpd_nonlin(J, m, lmax, backtrack=False, progress=progress)
    pen = np.zeros(m + 1)
    ncp = np.arange(1, m + 1)
    pen[1:] = (vmax * ncp / (2.0 * n)) * (np.log(float(n) / ncp) + 1)
    m_best = int(np.argmin(scores / float(n) + pen))
    return public_cpd_nonlin(J, m_best, lmax)[0]
