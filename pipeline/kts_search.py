"""cpd_auto's search, exact and pruned: the k* minimising cost(k) = I[k, n]/n + pen(k), and
the change points of the best split into k* + 1 segments.

    I[k, l] = min over t of I[k−1, t] + J[t, l−1]     (k+1 segments covering steps 0..l−1)

The public code fills I for every k <= m and every l: O(m·n²) additions. Here a node (k, t) is
expanded only if some path through it could still win, and every value that is computed is
computed with the same additions as the public code, so those values, k* and the backtracked
change points are bitwise the public ones. Why the pruning is exact (costs in cost units):

1. Upper bound U: the cost of a few concrete splits (the best split for a price per cut, for
   several prices), scored as cpd_auto scores them. The winner costs at most U; each finished
   layer's own cost lowers U further.
2. A split with K change points costs at least pen(K) (scatters are >= 0), so no K with
   pen(K) > U + margin wins: layers stop at M, the largest K left.
3. What follows a node: a path through (k, t) ending with K = k + j change points costs at least
   (I[k, t] + R_j(t))/n + pen(K), R_j(t) = the best cost of steps t..n−1 in j segments. pen is
   concave, so on an interval [a, b] of K it lies above a line α + γK; then
   R_j(t) + n·pen(K) >= P_γ(t) + n(α + γk), with P_γ(t) = min_j R_j(t) + nγj (one backward DP,
   every line at once). A node whose bound exceeds n(U + margin) on every line is not expanded.
4. Candidate t of layer k is dropped at column l once I[k−1, t] + J[t, l−1] + P_γ(l) − nγ +
   n(α + γk) > n(U + margin) on every line: a segment's scatter is at least the sum of its
   parts' (J[t, l'−1] >= J[t, l−1] + J[l, l'−1]) and P_γ(l) <= J[l, l'−1] + nγ + P_γ(l'), so no
   later column l' can use t on a path within the bound either.

Rounding: each computed scatter is within ε of its exact value (``kts_scatters``), so a path
with K <= M change points, and each bound above as applied to it, is off by at most
E = (M + 3)·ε/n. With margin = 5E (the argument needs 2E + 2ε/n), every node of every path
that costs at most U + margin − (E + 2ε/n) is expanded with all its candidates, so I is exact
there. Every K whose computed cost is at most U ends such a path; any other K costs more than
U >= the minimum both here and in the public code, so the first-minimum k* and the
first-minimum backtrack see only exact values.

On video-like input the nodes that survive form a narrow band around the best path (~O(n·w)
work for a band of w steps instead of O(m·n²)); on input with no structure (random rows) the
bounds are loose and the work grows towards the public code's, but stays exact.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import numba
import numpy as np
from numba import njit

from pipeline.kts_scatters import col, filled

MARGIN_ERRORS = 5.0  # margin = 5 × the rounding bound E of a path (module docstring)
_MAX_LINES = 16  # lines under the penalty (each costs one O(n²/2) backward DP)
_LINE_TOL = 4.0  # how close a line stays to the penalty, at least (in cost·n units)


def _threads() -> int:
    """Threads to use: NUMBA_NUM_THREADS (default: the CPUs), at most OMP_NUM_THREADS when set
    (what a Ray task is given; BLAS follows it too)."""
    n = numba.config.NUMBA_NUM_THREADS
    omp = os.environ.get("OMP_NUM_THREADS", "").strip()
    if omp.isdigit() and int(omp) > 0:
        n = min(n, int(omp))
    return max(1, n)


def _in_threads(fn, calls: list[tuple]) -> list:
    """[fn(*args) for args in calls] on up to ``_threads()`` threads (fn is compiled with nogil:
    the threads run in parallel). Plain threads rather than numba's parallel loops: no spinning
    barriers on a busy machine, and far less to compile."""
    workers = min(len(calls), _threads())
    if workers <= 1:
        return [fn(*args) for args in calls]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda args: fn(*args), calls))


class Search(NamedTuple):
    change_points: np.ndarray  # int64 [k*], segment starts, ascending
    k_best: int
    layers: int  # layers k expanded (M + 1 at most)
    evaluated: int  # (t, l) candidates evaluated; the public code: (n−1)n(n+1)/6 for m = n−1


def penalties(n: int, m: int, vmax: float) -> np.ndarray:
    """cpd_auto's penalty for 0..m change points, [m+1], written as the public code writes it."""
    pen = np.zeros(m + 1)
    ncp = np.arange(1, m + 1)
    pen[1:] = (vmax * ncp / (2.0 * n)) * (np.log(float(n) / ncp) + 1)
    return pen


# -- 1. upper bound: the best split for a price per cut ---------------------------------------
@njit(cache=True, nogil=True)
def _priced_split(J, stride, n, lmin, lmax, price):
    """(cuts, cost) of a split minimising Σ J + price·cuts, its cost summed left to right as the
    layered DP sums it; (-1, inf) if no split fits [lmin, lmax]. A candidate t is retired once
    F[t] + J[t, l−1] >= F[l] + price (then l beats it at every column from l + lmin on, by
    superadditivity). Rounding may retire a near-tie: this is an upper bound, not the answer."""
    F = filled(n + 1, np.inf)
    F[0] = 0.0
    start = np.empty(n + 1, np.int64)
    live = np.empty(n + 1, np.int64)
    val = np.empty(n + 1)
    expiry = np.empty(n + 1, np.int64)  # last column a candidate may still serve
    for i in range(n + 1):
        expiry[i] = n + 1
    n_live = 0
    for l in range(lmin, n + 1):
        if F[l - lmin] < np.inf:
            live[n_live] = l - lmin
            n_live += 1
        off = col(l - 1, stride)
        best, arg = np.inf, -1
        for i in range(n_live):
            t = live[i]
            val[i] = F[t] + J[off + t] + (price if t > 0 else 0.0)
            if val[i] < best:
                best, arg = val[i], t
        F[l], start[l] = best, arg
        keep = 0
        for i in range(n_live):
            t = live[i]
            if val[i] >= best + price:
                expiry[t] = min(expiry[t], l + lmin - 1)
            if l + 1 - t <= lmax and l + 1 <= expiry[t]:
                live[keep] = t
                keep += 1
        n_live = keep
    if F[n] == np.inf:
        return -1, np.inf
    cuts = 0
    cur = start[n]
    while cur > 0:
        cuts += 1
        cur = start[cur]
    starts = np.empty(cuts + 1, np.int64)
    cur = n
    for i in range(cuts, -1, -1):
        cur = start[cur]
        starts[i] = cur
    total = J[col((starts[1] if cuts else n) - 1, stride)]  # first segment, as I[0, l]
    for i in range(1, cuts + 1):
        end = starts[i + 1] if i < cuts else n
        total = total + J[col(end - 1, stride) + starts[i]]
    return cuts, total


def upper_bound(J, stride: int, n: int, m: int, lmin: int, lmax: int, pen: np.ndarray) -> float:
    """U: the lowest cpd_auto cost among a few concrete splits with at most m change points
    (inf if none fits). Prices per cut (I units) are the penalty's slopes at K = 1, 2, 4, …, m,
    0 and "more than any scatter"; then four around the best K."""

    def price(K: int) -> float:
        return float(n) * (pen[K + 1] - pen[K]) if K < m else 0.0

    def best_of(prices):
        splits = _in_threads(_priced_split, [(J, stride, n, lmin, lmax, float(p)) for p in prices])
        cuts = np.array([c for c, _ in splits], dtype=np.int64)
        totals = np.array([t for _, t in splits])
        ok = (cuts >= 0) & (cuts <= m)
        if not ok.any():
            return np.inf, -1
        costs = totals[ok] / float(n) + pen[cuts[ok]]  # as cpd_auto scores a split
        i = int(np.argmin(costs))
        return float(costs[i]), int(cuts[ok][i])

    grid = sorted({2**i for i in range(int(np.log2(max(m, 1))) + 1)} | {m})
    U, K = best_of([price(K) for K in grid] + [2.0 * n + 1.0])
    if K > 0:
        near = sorted({min(m, max(1, round(K * 2.0**s))) for s in (-0.5, -0.25, 0.25, 0.5)})
        U = min(U, best_of([price(k) for k in near])[0])
    return U


# -- 2./3. lines under the penalty and the backward bound -------------------------------------
def _line_under(pen: np.ndarray, a: int, b: int) -> tuple[float, float, float]:
    """(α, γ, gap): the chord slope γ of pen on K = a..b, α so that α + γK <= pen[K] there
    (computed, not assumed from concavity), and the largest gap between them."""
    ks = np.arange(a, b + 1)
    gamma = (pen[b] - pen[a]) / (b - a) if b > a else 0.0
    dev = pen[a:b + 1] - gamma * ks
    return float(dev.min()), float(gamma), float(dev.max() - dev.min())


def penalty_lines(pen: np.ndarray, M: int, tol: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lines α + γK below pen covering K = 1..M, each within ``tol`` of it (cost units), at most
    _MAX_LINES of them (tol doubles until they fit): (alpha [G], gamma [G], last K [G])."""
    while True:
        lines, a = [], 1
        while a <= M and len(lines) <= _MAX_LINES:
            step, b = 1, a  # widest b with gap <= tol: doubling, then bisection
            while b < M and _line_under(pen, a, min(a + step, M))[2] <= tol:
                b, step = min(a + step, M), 2 * step
            lo, hi = b, min(a + step, M)
            while hi - lo > 1:
                mid = (lo + hi) // 2
                lo, hi = (mid, hi) if _line_under(pen, a, mid)[2] <= tol else (lo, mid)
            alpha, gamma, _ = _line_under(pen, a, lo)
            lines.append((alpha, gamma, lo))
            a = lo + 1
        if len(lines) <= _MAX_LINES:
            alpha, gamma, last = (np.array(v) for v in zip(*lines))
            return alpha, gamma, last.astype(np.int64)
        tol *= 2


@njit(cache=True, nogil=True, fastmath={"nnan", "nsz"})
def _remainder_lines(J, stride, n, lmax, prices, P, lines):
    """Backward DP for the lines given (rows of P, in place): e from n down pushes
    J[t, e−1] + price + P[e] to every t it can start from (P[e] is final once every e' > e has
    pushed). J's column e−1 is contiguous in t: the inner loop vectorises."""
    for e in range(n, 0, -1):
        off = col(e - 1, stride)
        t0 = max(0, e - lmax)
        for i in lines:
            q = P[i, e] + prices[i]
            row = P[i]
            for t in range(t0, e):
                row[t] = min(row[t], J[off + t] + q)


def remainder_bounds(J, stride: int, n: int, lmax: int, prices: np.ndarray) -> np.ndarray:
    """P [G, n+1]: P[i, t] = min over splits of steps t..n−1 into segments of 1..lmax steps of
    Σ J + prices[i]·segments (P[:, n] = 0), for every price. The lines are shared out between
    the threads (each reads J once)."""
    G = len(prices)
    P = np.full((G, n + 1), np.inf)
    P[:, n] = 0.0
    groups = min(G, _threads())
    _in_threads(_remainder_lines, [(J, stride, n, lmax, prices, P, np.arange(g, G, groups))
                                   for g in range(groups)])
    return P


# -- 4. the layered DP over the nodes that can win --------------------------------------------
@njit(cache=True)
def _bounds_at(P, a_I, g_I, first, k, l):
    """(what a node (k, l) still costs at least, the same for a later column via it): the min
    over lines i >= first of P[i, l] + n(α + γk), and of P[i, l] − nγ + n(α + γk)."""
    alive, drop = np.inf, np.inf
    for i in range(first, len(a_I)):
        v = P[i, l] + (a_I[i] + g_I[i] * k)
        alive = min(alive, v)
        drop = min(drop, v - g_I[i])
    return alive, drop


@njit(cache=True)
def _grown(a, used, more):
    """a copy of a[:used] in an array with room for at least ``more`` after it (doubling)."""
    b = np.empty(max(2 * len(a), used + more))
    for i in range(used):  # a loop, not b[:used] = a[:used]: slice assignment takes seconds to compile
        b[i] = a[i]
    return b


@njit(cache=True)
def _first_layer(J, stride, n, lmin, lmax, P, a_I, g_I, thr, vals, cands):
    """Layer 0 (one segment, steps 0..l−1) into vals[0:], its expandable nodes into cands:
    (values written, expandable nodes)."""
    used, n_cands = 0, 0
    for l in range(lmin, min(lmax, n) + 1):
        vals[used] = J[col(l - 1, stride)]
        if l <= n - lmin and vals[used] + _bounds_at(P, a_I, g_I, 0, 0, l)[0] <= thr:
            cands[n_cands] = l
            n_cands += 1
        used += 1
    return used, n_cands


@njit(cache=True)
def _next_layer(J, stride, n, k, lmin, lmax, vals, used, prev_lo, prev_off, cands, n_cands, nxt,
                live, P, a_I, g_I, first, thr):
    """Layer k, column by column from the first expandable node of layer k−1 (``cands``), into
    vals[used:]: each column's min over the live candidates; a candidate enters when its segment
    reaches lmin steps and leaves when it exceeds lmax or the drop bound (module docstring,
    step 4). Columns with no live candidate before the next one enters hold inf. Returns
    (values written so far, expandable nodes written to nxt, I[k, n] or inf, candidates
    evaluated)."""
    n_live, n_next, ci, evaluated = 0, 0, 0, 0
    last = np.inf
    l = cands[0] + lmin
    while l <= n:
        while ci < n_cands and cands[ci] + lmin <= l:
            live[n_live] = cands[ci]
            n_live += 1
            ci += 1
        if n_live == 0 and ci == n_cands:
            break
        off = col(l - 1, stride)
        alive_b, drop_b = _bounds_at(P, a_I, g_I, first, k, l) if l < n else (0.0, 0.0)
        best = np.inf
        keep = 0
        for i in range(n_live):
            t = live[i]
            v = vals[prev_off + t - prev_lo] + J[off + t]
            best = min(best, v)
            if l - t < lmax and v + drop_b <= thr:
                live[keep] = t
                keep += 1
        evaluated += n_live
        n_live = keep
        vals[used] = best
        used += 1
        if l == n:
            last = best
        elif l <= n - lmin and best < np.inf and best + alive_b <= thr:
            nxt[n_next] = l
            n_next += 1
        l += 1
    return used, n_next, last, evaluated


@njit(cache=True)
def _expand(J, stride, n, M, lmin, lmax, pen, pen_floor, P, a_I, g_I, last_K, U, margin):
    """Layers k = 0..M of I over the nodes that can win (module docstring, steps 2-4).

    Returns (vals, row_lo, row_hi, row_off, costs [M+1], evaluated, layers): layer k holds
    I[k, l] for l in [row_lo[k], row_hi[k]) at vals[row_off[k] + l − row_lo[k]] (inf where
    pruned); costs[k] is cpd_auto's score of k change points, inf where column n was not
    reached. Each layer's own cost lowers U (and so the bounds) for the layers after it."""
    nf = float(n)
    vals = np.empty(8 * (n + 1))
    row_lo = np.empty(M + 1, np.int64)
    row_off = np.empty(M + 1, np.int64)
    row_hi = np.empty(M + 1, np.int64)
    row_off[0] = 0
    costs = filled(M + 1, np.inf)
    cands = np.empty(n + 1, np.int64)  # expandable nodes of the layer just done
    nxt = np.empty(n + 1, np.int64)
    live = np.empty(n + 1, np.int64)
    used, n_cands = _first_layer(J, stride, n, lmin, lmax, P, a_I, g_I, nf * (U + margin), vals, cands)
    row_lo[0], row_hi[0] = lmin, lmin + used
    if lmax >= n:
        costs[0] = vals[used - 1] / nf + pen[0]
        U = min(U, costs[0])
    evaluated, layers, first = 0, 1, 0  # first: the lines that still cover some K >= k
    for k in range(1, M + 1):
        if n_cands == 0 or pen_floor[k] > U + margin:
            break
        while last_K[first] < k:
            first += 1
        row_lo[k], row_off[k] = cands[0] + lmin, used
        if used + (n + 1 - row_lo[k]) > len(vals):  # room for this layer's widest row
            vals = _grown(vals, used, n + 1 - row_lo[k])
        used, n_cands, last, done = _next_layer(
            J, stride, n, k, lmin, lmax, vals, used, row_lo[k - 1], row_off[k - 1], cands, n_cands,
            nxt, live, P, a_I, g_I, first, nf * (U + margin))
        row_hi[k] = row_lo[k] + (used - row_off[k])
        cands, nxt = nxt, cands
        costs[k] = last / nf + pen[k]
        U = min(U, costs[k])
        evaluated += done
        layers += 1
    return vals[:used], row_lo[:layers], row_hi[:layers], row_off[:layers], costs, evaluated, layers


@njit(cache=True)
def _backtrack(J, stride, vals, row_lo, row_hi, row_off, k_best, n, lmin, lmax):
    """Change points (segment starts, ascending) of the best k_best-change-point split; first
    minimum on ties, like np.argmin in the public code (pruned nodes cannot be a minimum)."""
    cps = np.empty(k_best, dtype=np.int64)
    cur = n
    for k in range(k_best, 0, -1):
        lo, hi, ro = row_lo[k - 1], row_hi[k - 1], row_off[k - 1]
        off = col(cur - 1, stride)
        best, arg = np.inf, -1
        for t in range(max(k * lmin, cur - lmax, lo), min(cur - lmin + 1, hi)):
            v = vals[ro + t - lo] + J[off + t]
            if v < best:
                best, arg = v, t
        cps[k - 1] = arg
        cur = arg
    return cps


def cpd_auto(J, stride: int, n: int, m: int, lmin: int, lmax: int, vmax: float,
             segment_error: float) -> Search:
    """cpd_auto on scatters J (J[t, e] at e·stride + t; ``kts_scatters``) with at most
    m change points and segments of lmin..lmax steps; ``segment_error``: how far one computed
    scatter can be from its exact value. Raises ValueError if no split fits the bounds."""
    pen = penalties(n, m, vmax)
    U = upper_bound(J, stride, n, m, lmin, lmax, pen)
    # a lower bound on pen(k') for every k' >= k (suffix min: holds even where rounding dips)
    pen_floor = np.ascontiguousarray(np.minimum.accumulate(pen[::-1])[::-1])

    def last_k(margin: float) -> int:  # the largest k whose penalty alone may still win
        if not np.isfinite(U):
            return m
        return max(0, min(m, int(np.searchsorted(pen_floor, U + margin, side="right")) - 1))

    # the margin depends on how many segments a path may have (M + 1), M on the margin: take M
    # from a margin that holds for any path (n segments), then the margin for M + 1 segments
    M = last_k(MARGIN_ERRORS * (n + 2) * segment_error / n)
    margin = MARGIN_ERRORS * (M + 3) * segment_error / n
    M = last_k(margin)
    if M >= 1:
        alpha, gamma, last_K = penalty_lines(pen, M, max(margin / 2, _LINE_TOL / n))
    else:
        alpha, gamma, last_K = np.zeros(1), np.zeros(1), np.zeros(1, np.int64)
    P = remainder_bounds(J, stride, n, lmax, float(n) * gamma)
    vals, row_lo, row_hi, row_off, costs, evaluated, layers = _expand(
        J, stride, n, M, lmin, lmax, pen, pen_floor, P, float(n) * alpha, float(n) * gamma,
        last_K, U, margin)
    k_best = int(np.argmin(costs))  # first minimum, as np.argmin over all k in cpd_auto
    if not np.isfinite(costs[k_best]):
        raise ValueError("KTS: no feasible segmentation for these segment-length bounds")
    cps = _backtrack(J, stride, vals, row_lo, row_hi, row_off, k_best, n, lmin, lmax)
    return Search(cps, k_best, layers, int(evaluated))
