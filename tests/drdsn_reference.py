"""The DR-DSN authors' evaluation (pytorch-vsumm-reinforce: ``vsum_tools.generate_summary``,
``vsum_tools.evaluate_summary``, ``knapsack.knapsack_dp``), re-written here from its documented
behaviour so tests can produce a ``result.h5`` exactly as ``main.py --save-results`` would, and
check that ``vsum evaluate --predictions`` reproduces its ``fm``.

What their evaluator does, and where it differs from ours (pipeline/summary.py, metrics.py):
  * frame scores are float32, zero at frames before the first pick (ours: the first score;
    eccv16 picks start at frame 0, so this never shows), and shot means are float32 means;
    ours are float64 throughout;
  * the knapsack table is float32: each candidate ``value + table[c - w]`` is compared in
    float64 (numpy 1.x promotion of a Python float with a float32 element) against the float32
    entry, strictly greater wins, and the stored sum is rounded to float32. Ours is a float64
    table with a 1e-12-relative tie tolerance. Both backtrack the same way, so they agree
    unless two selections' values are within float32 rounding (~1e-7 relative) of each other;
  * the summary is built from ``n_frame_per_seg`` blocks laid end to end (then cut or zero-padded
    to ``n_frames``), ours from the change points' inclusive [first, last]; identical when the
    h5's ``n_frame_per_seg`` equals ``last - first + 1`` and the segments tile the video;
  * shot means use the inclusive segment end (``cps[:, 1] + 1`` as slice end): no off-by-one;
  * no value quantisation (that is DSNet's ``int(1000 * mean)``: ``vsum evaluate --quantize``);
  * P and R divide by ``|summary| + 1e-8`` and ``|user| + 1e-8``: relative change ~1e-8;
  * the capacity is ``floor(n_frames * 0.15)`` = ours, and the F of a video is the mean (TVSum,
    ``-m tvsum``) or the max (SumMe, ``-m summe``) over annotators.
"""
from __future__ import annotations

import math

import h5py
import numpy as np


def knapsack_f32(values: list[float], weights: list[int], capacity: int) -> list[int]:
    """Their 0/1 DP with a float32 table (see the module docstring) -> sorted item indices."""
    n = len(values)
    table = np.zeros((n + 1, capacity + 1), np.float32)
    keep = np.zeros((n + 1, capacity + 1), bool)
    for i in range(1, n + 1):
        w, v = int(weights[i - 1]), float(values[i - 1])
        table[i] = table[i - 1]
        if w > capacity:
            continue
        prev = table[i - 1].astype(np.float64)
        cand = v + prev[: capacity + 1 - w]  # taking item i at capacities w..C
        better = cand > prev[w:]
        table[i, w:][better] = cand[better].astype(np.float32)
        keep[i, w:] = better
    picked, c = [], capacity
    for i in range(n, 0, -1):
        if keep[i, c]:
            picked.append(i - 1)
            c -= int(weights[i - 1])
    return sorted(picked)


def generate_summary(scores, cps, n_frames: int, nfps, picks, proportion: float = 0.15):
    """Step scores [T] -> their machine summary float32 [sum(nfps)]."""
    frame = np.zeros(n_frames, np.float32)
    bounds = list(np.asarray(picks, np.int64))
    if bounds[-1] != n_frames:
        bounds.append(n_frames)
    for i in range(len(bounds) - 1):
        frame[bounds[i]:bounds[i + 1]] = scores[i] if i < len(scores) else 0
    seg_values = [float(frame[int(a):int(b) + 1].mean()) for a, b in np.asarray(cps)]
    chosen = set(knapsack_f32(seg_values, [int(x) for x in nfps], int(math.floor(n_frames * proportion))))
    return np.concatenate([np.full(int(nf), 1.0 if k in chosen else 0.0, np.float32)
                           for k, nf in enumerate(nfps)])


def evaluate_summary(machine_summary, user_summary, metric: str = "avg") -> float:
    """Their F of one video: per annotator, then mean ('avg') or max ('max')."""
    users = (np.asarray(user_summary, np.float32) > 0).astype(np.float32)
    n = users.shape[1]
    ms = (np.asarray(machine_summary, np.float32) > 0).astype(np.float32)[:n]
    ms = np.concatenate([ms, np.zeros(n - len(ms), np.float32)])
    fs = []
    for u in users:
        overlap = float((ms * u).sum())
        p = overlap / (float(ms.sum()) + 1e-8)
        r = overlap / (float(u.sum()) + 1e-8)
        fs.append(0.0 if p == 0 and r == 0 else 2 * p * r / (p + r))
    return float(np.mean(fs) if metric == "avg" else np.max(fs))


def write_result_h5(path, dataset_h5, scores: dict[str, np.ndarray], metric: str = "avg") -> dict:
    """A ``result.h5`` in their ``--save-results`` layout: per key ``score``, ``machine_summary``,
    ``gtscore``, ``fm``. scores: eccv16 key -> step scores [T]. Returns key -> fm."""
    fms = {}
    with h5py.File(dataset_h5, "r") as data, h5py.File(path, "w") as out:
        for key, s in scores.items():
            g = data[key]
            s = np.asarray(s, np.float32)
            ms = generate_summary(s, g["change_points"][...], int(g["n_frames"][()]),
                                  g["n_frame_per_seg"][...].tolist(), g["picks"][...])
            fms[key] = evaluate_summary(ms, g["user_summary"][...], metric)
            out.create_dataset(f"{key}/score", data=s)
            out.create_dataset(f"{key}/machine_summary", data=ms)
            out.create_dataset(f"{key}/gtscore", data=g["gtscore"][...])
            out.create_dataset(f"{key}/fm", data=fms[key])
    return fms
