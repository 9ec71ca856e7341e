"""KTS segment costs ("scatters") and how far their rounding can move a path's cost.

J[t, e] = within-segment kernel scatter of steps t..e (inclusive), the cost KTS minimises:

    J[t, e] = Σ_{i=t..e} K[i, i] − (1 / (e−t+1)) · Σ_{i, j = t..e} K[i, j]

Two layouts, both addressed by ``col(e, band) + t``:

- packed (band == 0): every t <= e, packed by segment end, ``e(e+1)/2 + t``; n(n+1)/2 float64
  (207 MB at n = 7200). Computed from the 2-D cumulative sum of K with the same operations, in
  the same order, as the public numpy code, so every value is bitwise the public one.
- banded (band == L): segments of at most L steps, ``(e+1)(L−1) + t``; n·L float64, built from
  per-segment sums of the features (no n×n matrix; rounded differently from the public code).

The error bounds say how far one computed scatter can be from its exact value; a split into
s segments is then off by at most s times that. The exact search uses them to prune only what
provably cannot change the answer.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

_ROWS = 64  # rows of K2 per block in packed_scatters: [64, n+1] float64, 3.7 MB at n = 7200


@njit(cache=True)
def col(e, band):
    """Offset of column e (segments ending at step e) in J: J[t, e] = J[col(e, band) + t]."""
    return e * (e + 1) // 2 if band == 0 else (e + 1) * (band - 1)


@njit(cache=True)
def packed_scatters(K: np.ndarray, K1: np.ndarray) -> np.ndarray:
    """J packed by segment end, [n(n+1)/2] float64, from K [n, n] and K1 = cumsum of diag(K)
    with a leading 0 [n+1].

    K2 = cumsum(cumsum(K, 0), 1) with a zero border, as the public code builds it, is produced
    one row at a time (running column sums, then a running row sum: the same additions in the
    same order as numpy's cumsum). Row r of K2 completes every segment ending at e = r-1, which
    also needs K2[t, r] from the earlier row t. Rows come in blocks of _ROWS kept whole
    [_ROWS, n+1]; when a block is done, the entries a later row will need are parked in J's own
    slots (segment [t, c-1] at col(c-1) + t, contiguous in t: no cache miss per entry)."""
    n = K.shape[0]
    J = np.empty(n * (n + 1) // 2)
    colsum = np.zeros(n)  # cumsum(K, 0) row r-1
    diag = np.zeros(n + 1)  # K2[t, t]
    rows = np.zeros((_ROWS, n + 1))  # K2[r, :] for the rows r of the block
    for r0 in range(1, n + 1, _ROWS):
        r1 = min(r0 + _ROWS, n + 1)
        for r in range(r0, r1):
            row = rows[r - r0]
            acc = 0.0
            for b in range(n):
                colsum[b] = colsum[b] + K[r - 1, b]
                acc = acc + colsum[b]
                row[b + 1] = acc
            diag[r] = row[r]
            # finish every segment [t, e] with e = r-1: it needs K2[e+1, t] = row[t] now and
            # K2[t, r]: zero for t = 0, parked in J for earlier blocks, in ``rows`` for this one
            e = r - 1
            off = e * (e + 1) // 2
            a = row[r]
            for t in range(e + 1):
                d = 0.0 if t == 0 else (J[off + t] if t < r0 else rows[t - r0, r])
                J[off + t] = (K1[e + 1] - K1[t]) - (((a + diag[t]) - row[t]) - d) / float(e - t + 1)
        for c in range(r1, n + 1):  # park K2[r, c] for the rows c of later blocks
            off = (c - 1) * c // 2
            for r in range(r0, r1):
                J[off + r] = rows[r - r0, c]
    return J


@njit(cache=True)
def band_scatters(x: np.ndarray, L: int) -> np.ndarray:
    """J for segments of at most L steps, banded, [n·L] float64 (slots with t < 0 unused), from
    L2-normalised features x [n, d]. Memory O(n·L), time O(n·L·d).

    Each segment's sum is accumulated from its own first step, so no n×n matrix and no long
    cumulative sum is involved (the rounding differs from the public code's, which has no
    length bound; the values are the same scatters)."""
    n, d = x.shape
    J = np.zeros(n * L)
    acc = np.zeros(d)
    for t in range(n):
        acc[:] = 0.0
        sq = 0.0
        for e in range(t, min(t + L, n)):
            dot = 0.0
            for c in range(d):
                v = x[e, c]
                sq += v * v
                acc[c] += v
                dot += acc[c] * acc[c]
            J[(e + 1) * (L - 1) + t] = sq - dot / float(e - t + 1)
    return J


def packed_segment_error(n: int) -> float:
    """Bound on |computed − exact| of one packed scatter J[t, e] (cost·n units).

    With |K| <= 1, K2[a, b] sums a·b terms through partial sums <= n², so it is off by at most
    (a²b + ab²)·eps/4 <= n³·eps/2; a scatter combines four of them over its length (>= 1), so it
    is off by <= 2n³·eps. We allow twice that: 4n³·eps (1.6e-4 at n = 7200). Loose, but a proof."""
    return 4.0 * np.finfo(np.float64).eps * float(n) ** 3 + 1e-12


def band_segment_error(L: int, d: int) -> float:
    """The same bound for a banded scatter: a segment of len <= L steps sums len rows of norm 1,
    so its sum is off by <= sqrt(d)·len²·eps, its squared norm by <= (2·sqrt(d)·len³ + d·len²)·eps,
    and the scatter (over len) by <= (2·sqrt(d)·L² + d·L + 2·L²)·eps. Twice that again."""
    return 2 * np.finfo(np.float64).eps * (2 * math.sqrt(d) * L * L + d * L + 2 * L * L) + 1e-12
