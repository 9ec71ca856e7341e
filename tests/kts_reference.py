"""The references KTS is tested against: cpd_nonlin + cpd_auto written the plainest way.

``loop_cpd_auto``: double loops for the scatters, a full DP table, np.min/np.argmin per cell,
the obviously-correct form (seconds at n = 60). ``public_cpd_auto``: the public numpy code's
own arrangement (vectorised scatters over full n×n matrices, one numpy min per DP cell), for
the sizes the loop form is too slow for; tests prove the two equal. Both take the kernel K
[n, n] (built by ``kernel_of``, the pipeline's own kernel: the references check the search,
not the kernel).
"""
from __future__ import annotations

import numpy as np

BIG = 1e101  # the public code's "infinity" in the DP table; scores above 1e99 become inf


def kernel_of(features: np.ndarray) -> np.ndarray:
    """K = X Xᵀ on L2-normalised features [n, D] -> [n, n], as the pipeline builds it."""
    from pipeline.kts import linear_kernel, normalized_features

    return linear_kernel(normalized_features(features))


def penalties(n: int, m: int, vmax: float) -> np.ndarray:
    """cpd_auto's penalty for 0..m change points: vmax·k/(2n)·(log(n/k) + 1)."""
    pen = np.zeros(m + 1)
    ncp = np.arange(1, m + 1)
    pen[1:] = (vmax * ncp / (2.0 * n)) * (np.log(float(n) / ncp) + 1)
    return pen


# -- the loop form -----------------------------------------------------------------------------
def loop_scatters(K: np.ndarray) -> np.ndarray:
    """J[i, j] = sum_t K[t,t] - (sum_{s,t} K[s,t]) / len over steps i..j, via the 2-D cumsum."""
    n = len(K)
    K1 = np.cumsum(np.concatenate(([0.0], np.diag(K))))
    K2 = np.zeros((n + 1, n + 1))
    K2[1:, 1:] = np.cumsum(np.cumsum(K, 0), 1)
    J = np.zeros((n, n))
    for i in range(n):
        for j in range(i, n):
            J[i, j] = K1[j + 1] - K1[i] - (K2[j + 1, j + 1] + K2[i, i] - K2[j + 1, i] - K2[i, j + 1]) / (j - i + 1)
    return J


def loop_dp(J: np.ndarray, m: int, lmin: int = 1, lmax: int | None = None):
    """I[k, l]: best cost of steps 0..l-1 in k+1 segments of length in [lmin, lmax]; arg[k, l]:
    the start of the last segment (first minimum on ties)."""
    n = len(J)
    lmax = n if lmax is None else lmax
    I = np.full((m + 1, n + 1), BIG)
    arg = np.zeros((m + 1, n + 1), dtype=int)
    for l in range(lmin, min(lmax, n) + 1):
        I[0, l] = J[0, l - 1]
    for k in range(1, m + 1):
        for l in range((k + 1) * lmin, n + 1):
            ts = list(range(max(k * lmin, l - lmax), l - lmin + 1))
            c = np.array([J[t, l - 1] + I[k - 1, t] for t in ts])
            I[k, l] = c.min()
            arg[k, l] = ts[int(np.argmin(c))]
    return I, arg


def loop_cpd_auto(K: np.ndarray, m: int, vmax: float = 1.0, lmin: int = 1,
                  lmax: int | None = None) -> np.ndarray:
    """Change points [k*] int64 of cpd_auto(K, m, vmax) with segment lengths in [lmin, lmax]."""
    n = len(K)
    if n < 2:
        return np.zeros(0, np.int64)
    I, arg = loop_dp(loop_scatters(K), m, lmin, lmax)
    scores = I[:, n].copy()
    scores[scores > 1e99] = np.inf
    k_best = int(np.argmin(scores / float(n) + penalties(n, m, vmax)))
    cps, cur = [], n
    for k in range(k_best, 0, -1):
        cur = arg[k, cur]
        cps.append(cur)
    return np.array(cps[::-1], dtype=np.int64)


# -- the public code's arrangement ---------------------------------------------------------------
def public_scatters(K: np.ndarray) -> np.ndarray:
    """J [n, n] (0 below the diagonal), vectorised over full n×n temporaries."""
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


def _public_nonlin(J: np.ndarray, m: int, lmin: int, lmax: int | None, backtrack: bool):
    n = J.shape[0]
    lmax = n if lmax is None else lmax
    I = np.full((m + 1, n + 1), BIG)
    I[0, lmin:lmax + 1] = J[0, lmin - 1:lmax]
    p = np.zeros((m + 1, n + 1), dtype=np.int64)
    for k in range(1, m + 1):
        for l in range((k + 1) * lmin, n + 1):
            tmin = max(k * lmin, l - lmax)
            c = J[tmin:l - lmin + 1, l - 1] + I[k - 1, tmin:l - lmin + 1]
            I[k, l] = np.min(c)
            if backtrack:
                p[k, l] = np.argmin(c) + tmin
    cps, cur = np.zeros(m, dtype=np.int64), n
    if backtrack:
        for k in range(m, 0, -1):
            cps[k - 1] = p[k, cur]
            cur = cps[k - 1]
    scores = I[:, n].copy()
    scores[scores > 1e99] = np.inf
    return cps, scores


def public_cpd_auto(K: np.ndarray, m: int, vmax: float = 1.0, lmin: int = 1,
                    lmax: int | None = None) -> np.ndarray:
    """cpd_auto as the public code runs it: scores for 0..m change points, penalised, first
    argmin k*, then cpd_nonlin again with k* for the backtracked change points."""
    n = K.shape[0]
    if n < 2:
        return np.zeros(0, np.int64)
    J = public_scatters(K)
    _, scores = _public_nonlin(J, m, lmin, lmax, backtrack=False)
    k_best = int(np.argmin(scores / float(n) + penalties(n, m, vmax)))
    return _public_nonlin(J, k_best, lmin, lmax, backtrack=True)[0]


def reference_change_points(features: np.ndarray, vmax: float = 1.0) -> np.ndarray:
    """DSNet's call on features [n, D]: cpd_auto(X Xᵀ, n-1, vmax) in the public arrangement."""
    return public_cpd_auto(kernel_of(features), len(features) - 1, vmax)
