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

- ``J`` is built from one streamed pass over ``K``, in ``K``'s own buffer (``kts_scatters``):
  one n×n float64 array in all (415 MB at n = 7200). The public code holds ``K``, the 2-D
  cumulative sum and ``J`` as full n×n matrices (2.3 GB peak at n = 7200).
- The search (``kts_search``) expands only the (k, l) cells of the DP that can lie on a winning
  path, with bounds that are proofs (rounding included), not heuristics: an upper bound from
  concrete splits, the penalty's floor, and a backward lower bound on what the rest of the
  video must cost. On video-like input that is a narrow band around the best path.
- With a maximum segment length L (``max_segment_steps``, an approximation of KTS: no segment
  may be longer), ``J`` is a band built from per-segment sums (O(n·L) memory, no n×n matrix at
  all): for very long videos. Same scatters, but rounded differently from the public code, so
  exact agreement with the public code under the same bound is then up to near-ties.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pipeline.kts_scatters import band_scatters, band_segment_error, full_segment_error, scatters_in_place
from pipeline.kts_search import cpd_auto, penalties

__all__ = ["KERNELS", "KTSParams", "change_points_steps", "kts_segments", "linear_kernel",
           "normalized_features", "penalties", "search", "steps_to_segments"]

KERNELS = ("linear",)


@dataclass(frozen=True)
class KTSParams:
    """cpd_auto's options; the defaults are DSNet's recipe (vmax = 1, up to n−1 change points)."""

    vmax: float = 1.0
    max_change_points: int | None = None  # None = n-1 (cpd_auto's m)
    min_segment_steps: int = 1
    max_segment_steps: int | None = None  # None = exact KTS; a bound approximates it (long videos)
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


def search(features: np.ndarray, params: KTSParams = KTSParams()):
    """The cpd_auto search on features [T, D] (see ``change_points_steps``): a
    ``kts_search.Search`` (change points, k*, layers expanded, candidates evaluated), or None
    when there is nothing to cut (too short, or constant)."""
    if params.center:
        f = np.asarray(features, dtype=np.float64)
        features = f - f.mean(axis=0, keepdims=True)
    x = normalized_features(features)
    n = len(x)
    if n < 2 * params.min_segment_steps:
        return None  # too short to cut (n = 1 included): one segment
    m, lmin, lmax = _check_params(params, n)
    if lmax >= n and not (x != x[0]).any():
        return None  # constant (or all-zero): nothing to cut, k* = 0
    if lmax < n:  # banded: O(n·L) memory, for very long videos
        error = band_segment_error(lmax, x.shape[1])
        J = band_scatters(x, lmax)
        del x
        return cpd_auto(J, lmax - 1, n, m, lmin, lmax, params.vmax, error)
    K = np.ascontiguousarray(linear_kernel(x))  # (x @ x.T already is: no copy)
    del x
    K1 = np.cumsum(np.concatenate(([0.0], np.diag(K))))
    J = scatters_in_place(K, K1)  # J takes K's place: one n×n float64 array in all
    del K
    return cpd_auto(J, n, n, m, lmin, lmax, params.vmax, full_segment_error(n))


def change_points_steps(features: np.ndarray, params: KTSParams = KTSParams()) -> np.ndarray:
    """Step indices where a new segment starts, ascending, int64 [k*] (empty = one segment).

    features: [T, D] (or [T, C, h, w], averaged over space). Fewer than 2·min_segment_steps
    steps (T = 1 included) and constant features (all rows equal after normalisation, all-zero
    included) give one segment; NaN/inf and unsatisfiable length bounds raise ValueError."""
    found = search(features, params)
    return np.zeros(0, dtype=np.int64) if found is None else found.change_points


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
