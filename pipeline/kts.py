"""Kernel Temporal Segmentation (Potapov et al., ECCV 2014): exact, and fast on long videos.

The community's algorithm (``cpd_nonlin`` + ``cpd_auto`` as shipped with DSNet, VASNet, …):

    K          = X Xᵀ, X = L2-normalised features at the picks            [n, n]
    J[t, e]    = within-segment kernel scatter of steps t..e (inclusive)
    I[k, l]    = min cost of cutting steps 0..l-1 into k+1 segments       (dynamic programme)
    cost(k)    = I[k, n]/n + vmax·k/(2n)·(log(n/k) + 1)                   (cpd_auto's penalty)
    k*         = argmin cost(k), k = 0..m;  change points = backtracked segment starts

Without a segment-length bound (the default), every floating-point value that decides an
argmin is computed with the same operations, in the same order, as the public numpy code fed a
float64 kernel, so the change points are identical (not merely close). (DSNet feeds a float32
kernel, whose float32 2-D cumulative sums lose whole units at n in the thousands; we keep
float64 throughout.) What differs is how the work is arranged:

- ``J`` is built from one streamed pass over ``K`` into a packed triangle (n²/2 float64, 207 MB
  at n = 7200); ``K`` is freed before the DP. The public code holds ``K``, the 2-D cumulative
  sum and ``J`` as full n×n matrices (2.3 GB peak at n = 7200).
- The DP is compiled (numba) and tiled: a block of 64 columns of ``J`` stays in cache while a
  group of 64 layers k is advanced over it (four layers per load where they are independent),
  so ``J`` is streamed once per group of layers, not once per layer.
- Layers that provably cannot win are never computed: cost(k) ≥ penalty(k) − (rounding bound)
  and the penalty grows with k, so once penalty(k) exceeds the best cost found, no larger k wins.
- With a maximum segment length L, ``J`` is a band built from per-segment sums (O(n·L) memory,
  no n×n matrix at all) and each layer costs O(n·L): for very long videos. Same scatters, but
  rounded differently from the public code, so exact agreement is then up to near-ties.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

# The public code initialises the DP table with this "infinity" and maps scores above 1e99 to inf.
_BIG = 1e101
KERNELS = ("linear",)
_SENTINEL = 1e300  # marks (t, l) pairs outside the allowed segment lengths in a DP tile
_LAYER_GROUP = 64  # layers advanced per pass over J (at most this many are computed in vain)
_COL_BLOCK = 64  # columns of J per tile: [n, 64] float64 (3.7 MB at n = 7200), in cache


@dataclass(frozen=True)
class KTSParams:
    """cpd_auto's options; the defaults are DSNet's recipe (vmax = 1, up to n−1 change points)."""

    vmax: float = 1.0
    max_change_points: int | None = None  # None = n-1 (cpd_auto's m)
    min_segment_steps: int = 1
    max_segment_steps: int | None = None  # None = exact, unbounded
    kernel: str = "linear"  # on L2-normalised features (DSNet recipe)
    # Subtract the video's mean feature before normalising. Off by default (not DSNet's
    # recipe); useful when every step shares one dominant direction, e.g. features from a
    # random-init fallback, where the plain linear kernel is nearly constant and finds no cuts.
    center: bool = False

    def __post_init__(self):  # the checks that do not depend on the video's length
        if self.kernel not in KERNELS:
            raise ValueError(f"KTS kernel {self.kernel!r} is not one of {KERNELS}")
        if not (math.isfinite(self.vmax) and self.vmax >= 0):
            raise ValueError(f"KTS vmax must be a finite number >= 0, got {self.vmax}")
        if self.min_segment_steps < 1:
            raise ValueError(f"KTS min_segment_steps must be >= 1, got {self.min_segment_steps}")
        if self.max_segment_steps is not None and self.max_segment_steps < self.min_segment_steps:
            raise ValueError(f"KTS max_segment_steps ({self.max_segment_steps}) < "
                             f"min_segment_steps ({self.min_segment_steps})")
        if self.max_change_points is not None and self.max_change_points < 0:
            raise ValueError(f"KTS max_change_points must be >= 0, got {self.max_change_points}")

# -- inputs ----------------------------------------------------------------------------------
def normalized_features(features: np.ndarray) -> np.ndarray:
    """[T, D] float64, each row L2-normalised (zero rows stay zero).

    ``features``: [T, D], or [T, C, ...] (a spatial map), which is first averaged over the
    trailing axes to [T, C]. Raises ValueError on non-finite values or an empty input."""
    x = np.asarray(features)
    if x.ndim < 2 or x.shape[0] == 0 or x[0].size == 0:
        raise ValueError(f"KTS needs features of shape [T, D] with T >= 1, got {x.shape}")
    if x.ndim > 2:  # [T, C, h, w] -> [T, C] by spatial mean
        x = x.reshape(x.shape[0], x.shape[1], -1).mean(axis=2, dtype=np.float64)  # no f64 copy
    x = x.astype(np.float64)  # always a fresh copy: we normalise in place
    if not np.isfinite(x).all():
        raise ValueError("KTS features contain NaN or infinite values")
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    x /= np.where(norm > 0, norm, 1.0)
    return x


def linear_kernel(x: np.ndarray) -> np.ndarray:
    """K = x xᵀ, [n, n] float64 (``x`` from ``normalized_features``)."""
    return x @ x.T


def penalties(n: int, m: int, vmax: float) -> np.ndarray:
    """cpd_auto's penalty for 0..m change points, [m+1], written as the public code writes it."""
    pen = np.zeros(m + 1)
    ncp = np.arange(1, m + 1)
    pen[1:] = (vmax * ncp / (2.0 * n)) * (np.log(float(n) / ncp) + 1)
    return pen


# -- compiled kernels ------------------------------------------------------------------------
@njit(cache=True)
def _packed_scatters(K: np.ndarray, K1: np.ndarray) -> np.ndarray:
    """J packed by segment end: J[t, e] (t <= e) at ``e(e+1)/2 + t``; [n(n+1)/2] float64.

    K2 = cumsum(cumsum(K, 0), 1) with a zero border, as the public code builds it, is produced
    one row at a time (running column sums, then a running row sum: the same additions in the
    same order as numpy's cumsum). Row r of K2 completes every segment ending at e = r-1; its
    entries right of the diagonal (K2[r, e+1], needed when segment r..e completes later) are
    parked in J's own slots until then."""
    n = K.shape[0]
    J = np.empty(n * (n + 1) // 2)
    colsum = np.zeros(n)  # cumsum(K, 0) row r-1
    row = np.zeros(n + 1)  # K2[r, :]
    diag = np.zeros(n + 1)  # K2[t, t]
    for r in range(1, n + 1):
        acc = 0.0
        for b in range(n):
            colsum[b] = colsum[b] + K[r - 1, b]
            acc = acc + colsum[b]
            row[b + 1] = acc
        diag[r] = row[r]
        # finish every segment [t, e] with e = r-1: it needs K2[e+1, t] = row[t] now and
        # K2[t, e+1], parked in J's slot when row t was built (zero for t = 0)
        e = r - 1
        off = e * (e + 1) // 2
        a = row[r]
        for t in range(e + 1):
            d = J[off + t] if t > 0 else 0.0
            J[off + t] = (K1[e + 1] - K1[t]) - (((a + diag[t]) - row[t]) - d) / float(e - t + 1)
        # park K2[r, c] (c > r) for segment [t=r, e=c-1]
        for c in range(r + 1, n + 1):
            J[(c - 1) * c // 2 + r] = row[c]
    return J


@njit(cache=True)
def _band_scatters(x: np.ndarray, L: int) -> np.ndarray:
    """J for segments of at most L steps, banded: J[t, e] (e - t < L) at ``(e+1)(L-1) + t``;
    [n·L] float64 (slots with t < 0 unused). Memory O(n·L), time O(n·L·D).

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


@njit(cache=True)
def _col(e, band):
    """Offset of column e (segments ending at step e) in J: J[t, e] = J[_col(e, band) + t]."""
    return e * (e + 1) // 2 if band == 0 else (e + 1) * (band - 1)


@njit(cache=True, fastmath={"nnan", "nsz"})
def _minplus(tile, prev, acc, t0, t1, w):
    """acc[j] = min(acc[j], tile[t, j] + prev[t]) for t in [t0, t1), j < w: one layer."""
    for t in range(t0, t1):
        p = prev[t]
        row = tile[t]
        for j in range(w):
            acc[j] = min(acc[j], row[j] + p)


@njit(cache=True, fastmath={"nnan", "nsz"})
def _minplus4(tile, I, k, acc, t0, t1):
    """_minplus for the four layers k..k+3 at once over a full-width tile: each row of the tile
    is loaded once for four layers (the loop is bound by reading the tile)."""
    p0, p1, p2, p3 = I[k - 1], I[k], I[k + 1], I[k + 2]
    a0, a1, a2, a3 = acc[0], acc[1], acc[2], acc[3]
    for t in range(t0, t1):
        row = tile[t]
        q0, q1, q2, q3 = p0[t], p1[t], p2[t], p3[t]
        for j in range(_COL_BLOCK):
            r = row[j]
            a0[j] = min(a0[j], r + q0)
            a1[j] = min(a1[j], r + q1)
            a2[j] = min(a2[j], r + q2)
            a3[j] = min(a3[j], r + q3)


@njit(cache=True, fastmath={"nnan", "nsz"})
def _dp_layers(J, band, I, k0, k1, n, lmin, lmax):
    """Fill rows k0..k1-1 of I [m+1, n+1] (rows < k0 are final).

    I[k, l] = min over t of J[t, l-1] + I[k-1, t], t in [max(k·lmin, l-lmax), l-lmin].

    Tiled for the cache: the columns l of one block are copied once into ``tile`` [t, j] (t-major,
    so the inner loop runs along j, elementwise, and vectorises), then every layer of the group
    is advanced over that block, so J is read from memory once per group of layers. Candidates
    t before the block only read rows of layer k-1 that earlier blocks finished, so four layers
    take them together; the small triangle of t inside the block then goes layer by layer.
    The only floating-point operation is the addition the public code does, and a min is exact
    in any order. Pairs (t, l) outside the allowed segment lengths hold a sentinel larger than
    any real candidate."""
    for k in range(k0, k1):
        I[k, :] = _BIG
    if k0 == 0:
        for l in range(lmin, lmax + 1):
            I[0, l] = J[_col(l - 1, band)]  # J[0, l-1]
    first = max(k0, 1)
    if first >= k1:
        return
    tile = np.empty((n, _COL_BLOCK))
    acc = np.empty((4, _COL_BLOCK))  # apart from I, so the compiler sees no aliasing
    for c0 in range(1, n + 1, _COL_BLOCK):
        c1 = min(c0 + _COL_BLOCK, n + 1)
        w = c1 - c0
        if c1 - 1 < (first + 1) * lmin:
            continue  # no column of this block is reachable by a layer of this group
        t_lo = max(first * lmin, c0 - lmax)
        t_hi = c1 - lmin  # exclusive: the last column's latest start is (c1-1) - lmin
        for j in range(w):
            l = c0 + j
            off = _col(l - 1, band)
            for t in range(t_lo, t_hi):
                ok = l - lmax <= t <= l - lmin
                tile[t, j] = J[off + t] if ok else _SENTINEL
        t_mid = min(c0, t_hi)  # rows before the block: layer k-1 is final there
        for k in range(first, k1, 4):
            kb = min(4, k1 - k)
            acc[:, :] = _SENTINEL
            if kb == 4 and w == _COL_BLOCK:
                for q in range(3):  # t where only the lower layers may start a segment
                    lo = max((k + q) * lmin, t_lo)
                    _minplus(tile, I[k + q - 1], acc[q], lo, min(max((k + 3) * lmin, t_lo), t_mid), w)
                _minplus4(tile, I, k, acc, max((k + 3) * lmin, t_lo), t_mid)
            else:
                for q in range(kb):
                    _minplus(tile, I[k + q - 1], acc[q], max((k + q) * lmin, t_lo), t_mid, w)
            for q in range(kb):  # t inside the block: needs layer k+q-1 of this block, in order
                kq = k + q
                _minplus(tile, I[kq - 1], acc[q], max(kq * lmin, t_lo, c0), t_hi, w)
                for j in range(w):
                    # columns not reachable with kq+1 segments of >= lmin steps keep "inf"
                    I[kq, c0 + j] = acc[q, j] if c0 + j >= (kq + 1) * lmin else _BIG


@njit(cache=True)
def _backtrack(J, band, I, m_best, n, lmin, lmax):
    """Change points (segment starts, ascending) of the best m_best-change-point split; first
    minimum on ties, like np.argmin in the public code."""
    cps = np.zeros(m_best, dtype=np.int64)
    cur = n
    for k in range(m_best, 0, -1):
        tmin = max(k * lmin, cur - lmax)
        tmax = cur - lmin + 1
        off = _col(cur - 1, band)
        best = J[off + tmin] + I[k - 1, tmin]
        arg = tmin
        for t in range(tmin + 1, tmax):
            v = J[off + t] + I[k - 1, t]
            if v < best:
                best = v
                arg = t
        cps[k - 1] = arg
        cur = arg
    return cps


# -- driver ----------------------------------------------------------------------------------
def _check_params(params: KTSParams, n: int) -> tuple[int, int, int]:
    """(m, lmin, lmax) resolved for n >= 2·lmin steps; one clear ValueError when the bounds
    cannot cut n steps (KTSParams checked the rest)."""
    lmin = int(params.min_segment_steps)
    lmax = n if params.max_segment_steps is None else min(int(params.max_segment_steps), n)
    m = n - 1 if params.max_change_points is None else int(params.max_change_points)
    m = min(m, n // lmin - 1)  # more segments than n/lmin cannot all be lmin long
    if (m + 1) * lmax < n:
        raise ValueError(f"KTS: {n} steps cannot be cut into at most {m + 1} segments of at "
                         f"most max_segment_steps={lmax}")
    return m, lmin, lmax


def _rounding_slack(n: int) -> float:
    """Upper bound on how far below the penalty a computed cost can fall through rounding.

    With |K| <= 1, an entry K2[a, b] is a sum of a·b terms of partial sums <= n², so it is off
    by at most (a²b + ab²)·eps/2 <= n³·eps; a scatter combines four of them (<= ~4n³·eps), and
    a cost I[k, n]/n sums at most n scatters over n (<= ~4n³·eps). We allow twice that. At
    n = 7200 it is 3e-4: a few extra layers buy a proof instead of a heuristic."""
    return 8.0 * np.finfo(np.float64).eps * float(n) ** 3 + 1e-12


def _band_rounding_slack(L: int, d: int) -> float:
    """The same bound for banded scatters: a segment of len <= L steps sums len rows of norm 1,
    so its sum is off by <= sqrt(d)·len²·eps, its squared norm by <= (2·sqrt(d)·len³ + d·len²)·eps,
    and the scatter (over len) by <= (2·sqrt(d)·L² + d·L + 2·L²)·eps. Twice that again."""
    return 2 * np.finfo(np.float64).eps * (2 * math.sqrt(d) * L * L + d * L + 2 * L * L) + 1e-12


def _auto_from_scatters(J, band, n, m, lmin, lmax, vmax, slack) -> np.ndarray:
    """cpd_auto on scatters J (packed triangle if band == 0, else banded): the best number of
    change points k* (never computing a layer that provably cannot win: ``slack`` bounds the
    rounding error of a cost), then its backtracked change points [k*] int64."""
    pen = penalties(n, m, vmax)
    # lower bound on the penalty of every k' >= k (it grows with k; the suffix min makes the
    # bound hold even if rounding made it dip), so searchsorted finds where pruning may start
    pen_floor = np.minimum.accumulate(pen[::-1])[::-1]
    I = np.empty((m + 1, n + 1))  # rows are touched (and so use memory) only when computed
    done = 0  # rows 0..done-1 of I are final
    best_k, best_cost = -1, np.inf
    while done <= m:
        # smallest k whose penalty alone already exceeds the best cost: no k from there on wins
        k_stop = int(np.searchsorted(pen_floor, best_cost + slack, side="right"))
        if done >= k_stop:
            break
        k1 = min(done + _LAYER_GROUP, k_stop, m + 1)
        _dp_layers(J, band, I, done, k1, n, lmin, lmax)
        scores = I[done:k1, n].copy()
        scores[scores > 1e99] = np.inf
        costs = scores / float(n) + pen[done:k1]
        j = int(np.argmin(costs))  # first minimum, as np.argmin over all k in cpd_auto
        if costs[j] < best_cost:
            best_k, best_cost = done + j, float(costs[j])
        done = k1
    if best_k < 0 or not np.isfinite(best_cost):
        raise ValueError("KTS: no feasible segmentation for these segment-length bounds")
    return _backtrack(J, band, I, best_k, n, lmin, lmax)


def change_points_steps(features: np.ndarray, params: KTSParams = KTSParams()) -> np.ndarray:
    """Step indices where a new segment starts, ascending, int64 [k*] (empty = one segment).

    features: [T, D] (or [T, C, h, w], averaged over space). Fewer than 2·min_segment_steps
    steps (T = 1 included) and constant features (all rows equal after normalisation, all-zero
    included) give one segment; NaN/inf and unsatisfiable length bounds raise ValueError."""
    if params.center:
        f = np.asarray(features, dtype=np.float64)
        features = f - f.mean(axis=0, keepdims=True)
    x = normalized_features(features)
    n = len(x)
    if n < 2 * params.min_segment_steps:
        return np.zeros(0, dtype=np.int64)  # too short to cut (n = 1 included): one segment
    m, lmin, lmax = _check_params(params, n)
    if lmax >= n and not (x != x[0]).any():
        return np.zeros(0, dtype=np.int64)  # constant (or all-zero): nothing to cut, k* = 0
    if lmax < n:  # banded: O(n·L) memory, O(m·n·L) time, for very long videos
        slack = _band_rounding_slack(lmax, x.shape[1])
        J = _band_scatters(x, lmax)
        del x
        return _auto_from_scatters(J, lmax, n, m, lmin, lmax, params.vmax, slack)
    K = linear_kernel(x)
    del x
    K1 = np.cumsum(np.concatenate(([0.0], np.diag(K))))
    J = _packed_scatters(K, K1)
    del K  # from here on only J (n²/2) and the DP rows that are actually computed
    return _auto_from_scatters(J, 0, n, m, lmin, lmax, params.vmax, _rounding_slack(n))


def steps_to_segments(cps: np.ndarray, picks: np.ndarray, n_frames: int
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Change-point steps -> (change_points int32 [S, 2] inclusive frames, n_frame_per_seg int32
    [S]). Segment s starts at picks[cps[s-1]] (frame 0 for the first) and ends one frame before
    the next start; the last ends at n_frames-1."""
    starts = np.concatenate(([0], np.asarray(picks, dtype=np.int64)[np.asarray(cps, dtype=np.int64)]))
    ends = np.concatenate((starts[1:], [int(n_frames)]))
    change_points = np.stack([starts, ends - 1], axis=1).astype(np.int32)
    return change_points, (ends - starts).astype(np.int32)


def _check_picks(picks: np.ndarray, n_steps: int, n_frames: int) -> np.ndarray:
    picks = np.asarray(picks)
    if picks.ndim != 1 or len(picks) != n_steps:
        raise ValueError(f"KTS: picks has shape {picks.shape}, features have {n_steps} steps")
    if n_steps and (picks[0] < 0 or picks[-1] >= n_frames or (np.diff(picks) <= 0).any()):
        raise ValueError(f"KTS: picks must increase strictly within [0, n_frames={n_frames})")
    return picks.astype(np.int64)


def kts_segments(features: np.ndarray, picks: np.ndarray, n_frames: int,
                 params: KTSParams = KTSParams()) -> tuple[np.ndarray, np.ndarray]:
    """features [T, D] float (2-D features at the picks; flatten [T, C, h, w] by spatial mean
    first if given 4-D); picks int [T] original-frame indices; returns
    change_points int32 [S, 2] (inclusive [first, last] frames, covering 0..n_frames-1 exactly)
    and n_frame_per_seg int32 [S]."""
    features = np.asarray(features)
    n_frames = int(n_frames)
    if n_frames < 1:
        raise ValueError(f"KTS: n_frames must be >= 1, got {n_frames}")
    picks = _check_picks(picks, len(features), n_frames)
    cps = change_points_steps(features, params)
    return steps_to_segments(cps, picks, n_frames)
