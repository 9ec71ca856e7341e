"""KTS segment costs ("scatters") and how far their rounding can move them.

J[t, e] = within-segment kernel scatter of steps t..e (inclusive), the cost KTS minimises:

    J[t, e] = Σ_{i=t..e} K[i, i] − (1 / (e−t+1)) · Σ_{i, j = t..e} K[i, j]

Both layouts put J[t, e] at ``col(e, stride) + t`` of a flat float64 array:

- full (stride n): every t <= e, in the lower triangle of K's own n×n buffer, which it replaces
  (``scatters_in_place``: no second n×n array; 415 MB at n = 7200). Computed from the 2-D
  cumulative sum of K with the same operations, in the same order, as the public numpy code,
  so every value is bitwise the public one.
- banded (stride L−1): segments of at most L steps, [n·L]; built from per-segment sums of the
  features (no n×n matrix; rounded differently from the public code).

The error bounds say how far one computed scatter can be from its exact value; a split into
s segments is then off by at most s times that. The exact search uses them to prune only what
provably cannot change the answer.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

_ROWS = 64  # rows of K2 per block in scatters_in_place: [64, n+1] float64, 3.7 MB at n = 7200


@njit(cache=True)
def filled(n, value):
    """np.full(n, value) as float64, compiled: numba takes ~0.5 s to compile each np.full or
    np.zeros call, and every first run after an install pays for it."""
    a = np.empty(n)
    for i in range(n):
        a[i] = value
    return a


@njit(cache=True)
def col(e, stride):
    """Offset of column e (segments ending at step e) in J: J[t, e] = J[col(e, stride) + t]."""
    return e * stride


@njit(cache=True)
def _cumulative_rows(flat, n, colsum, rows, r0, r1):
    """K2[r, :] for r in [r0, r1) into rows[r − r0] (K2 = cumsum(cumsum(K, 0), 1) with a zero
    border): running column sums, then a running row sum, the same additions in the same order
    as numpy's cumsum. Reads K's rows r0−1 .. r1−2 (K = flat [n·n], row-major)."""
    for r in range(r0, r1):
        row = rows[r - r0]
        row[0] = 0.0
        acc = 0.0
        base = (r - 1) * n
        for b in range(n):
            colsum[b] = colsum[b] + flat[base + b]
            acc = acc + colsum[b]
            row[b + 1] = acc


@njit(cache=True)
def _scatter(K1, a, diag_t, row_t, d, t, e):
    """J[t, e] from K2[e+1, e+1] = a, K2[t, t], K2[e+1, t], K2[t, e+1] = d: the public form."""
    return (K1[e + 1] - K1[t]) - (((a + diag_t) - row_t) - d) / float(e - t + 1)


def scatters_in_place(K: np.ndarray, K1: np.ndarray) -> np.ndarray:
    """J with stride n in K's own buffer (K [n, n] C-contiguous is destroyed), from K and
    K1 = cumsum of diag(K) with a leading 0 [n+1]; returns the buffer flat, [n·n]."""
    if not K.flags.c_contiguous:
        raise ValueError("scatters_in_place needs a C-contiguous kernel")
    flat = K.reshape(-1)  # a view
    _scatters_into(flat, K.shape[0], K1)
    return flat


@njit(cache=True)
def _scatters_into(flat, n, K1):
    """scatters_in_place on K's buffer ``flat`` [n·n].

    Rows of K2 come in blocks of _ROWS. Row r needs K's row r−1; once a block is done, those K
    rows are free: J's column e (segments ending at e) goes to row e, left of the diagonal, and
    K2[t, c] (c beyond the block, needed to finish segment [t, c−1] later) is parked right of
    the diagonal in row t−1, at column c−1. Segments that start before the block are finished
    in 64×64 tiles, so both the parked values and J are read and written a cache line at a time."""
    colsum = filled(n, 0.0)  # cumsum(K, 0) up to the current row
    diag = filled(n + 1, 0.0)  # K2[t, t]
    rows = np.empty((_ROWS, n + 1))
    for r0 in range(1, n + 1, _ROWS):
        r1 = min(r0 + _ROWS, n + 1)
        _cumulative_rows(flat, n, colsum, rows, r0, r1)  # from here on K's rows < r1 − 1 are free
        for r in range(r0, r1):
            diag[r] = rows[r - r0, r]
        for r in range(r0, r1):  # segments inside the block: K2[t, r] is still in ``rows``
            e = r - 1
            for t in range(r0, r):
                flat[e * n + t] = _scatter(K1, rows[r - r0, r], diag[t], rows[r - r0, t],
                                           rows[t - r0, r], t, e)
        for t0 in range(0, r0, _ROWS):  # segments from before the block: parked K2[t, r]
            for r in range(r0, r1):
                e = r - 1
                for t in range(t0, min(t0 + _ROWS, r0)):
                    d = flat[(t - 1) * n + e] if t > 0 else 0.0
                    flat[e * n + t] = _scatter(K1, rows[r - r0, r], diag[t], rows[r - r0, t], d, t, e)
        for r in range(r0, r1):  # park K2[r, c] for the rows c of later blocks
            for c in range(r1, n + 1):
                flat[(r - 1) * n + c - 1] = rows[r - r0, c]
    return flat


@njit(cache=True)
def band_scatters(x: np.ndarray, L: int) -> np.ndarray:
    """J for segments of at most L steps, stride L−1, [n·L] float64, from L2-normalised
    features x [n, d]. Memory O(n·L), time O(n·L·d).

    Each segment's sum is accumulated from its own first step, so no n×n matrix and no long
    cumulative sum is involved (the rounding differs from the public code's, which has no
    length bound; the values are the same scatters)."""
    n, d = x.shape
    J = filled(n * L, 0.0)
    acc = np.empty(d)
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
            J[col(e, L - 1) + t] = sq - dot / float(e - t + 1)
    return J


def full_segment_error(n: int) -> float:
    """Bound on |computed − exact| of one scatter of ``scatters_in_place`` (cost·n units).

    With |K| <= 1, K2[a, b] sums a·b terms through partial sums <= n², so it is off by at most
    (a²b + ab²)·eps/4 <= n³·eps/2; a scatter combines four of them over its length (>= 1), so it
    is off by <= 2n³·eps. We allow twice that: 4n³·eps (1.6e-4 at n = 7200). Loose, but a proof."""
    return 4.0 * np.finfo(np.float64).eps * float(n) ** 3 + 1e-12


def band_segment_error(L: int, d: int) -> float:
    """The same bound for a banded scatter: a segment of len <= L steps sums len rows of norm 1,
    so its sum is off by <= sqrt(d)·len²·eps, its squared norm by <= (2·sqrt(d)·len³ + d·len²)·eps,
    and the scatter (over len) by <= (2·sqrt(d)·L² + d·L + 2·L²)·eps. Twice that again."""
    return 2 * np.finfo(np.float64).eps * (2 * math.sqrt(d) * L * L + d * L + 2 * L * L) + 1e-12
