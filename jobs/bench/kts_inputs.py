"""Synthetic KTS inputs shaped like GoogLeNet pool5 features (non-negative, 1024-d), [n, dim]
float32, for ``vsum bench kts`` and the KTS tests.

- ``realistic``: shots whose lengths are log-normal with a 5-s median at the sampling rate (2
  steps/s at every 15th frame of 30 fps: median 10 steps, mean ~13, as the public datasets' KTS
  segments), one video-wide look shared by every shot, drift within each shot and per-step
  noise. Adjacent steps: cosine ~0.97 within a shot, ~0.65 across a cut.
- ``long_shot``: the earlier "video-like" input: one random walk drifts over the whole video and
  swamps the shots' differences, so the optimum has few, long segments (~75 steps at n = 7200):
  the favourable case for a penalty bound.
- ``random``: i.i.d. Gaussian rows; every step its own segment is optimal (k* = n − 1).
"""
from __future__ import annotations

import numpy as np

KINDS = ("realistic", "long_shot", "random")


def shot_lengths(n: int, median_steps: float, sigma: float, rng) -> np.ndarray:
    """int64 [S] log-normal lengths >= 1 summing to n (the last one cut to fit)."""
    lengths = []
    total = 0
    while total < n:
        lengths.append(max(1, int(round(rng.lognormal(np.log(median_steps), sigma)))))
        total += lengths[-1]
    lengths[-1] -= total - n
    return np.asarray(lengths, dtype=np.int64)


def realistic_features(n: int, dim: int = 1024, median_shot_steps: float = 10.0,
                       sigma: float = 0.75, seed: int = 0) -> np.ndarray:
    """float32 [n, dim] (see module docstring); ``realistic_shots`` gives the planted shots."""
    rng = np.random.default_rng(seed)
    lengths = shot_lengths(n, median_shot_steps, sigma, rng)
    shot = np.repeat(np.arange(len(lengths)), lengths)
    look = rng.gamma(0.5, 1.0, size=dim).astype(np.float32)  # what every shot of the video shares
    base = 0.8 * look + rng.gamma(0.5, 1.0, size=(len(lengths), dim)).astype(np.float32)
    walk = np.cumsum(rng.normal(scale=0.08, size=(n, dim)).astype(np.float32), axis=0)
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    walk -= walk[starts][shot]  # the drift restarts at every cut
    walk += base[shot] + rng.normal(scale=0.25, size=(n, dim)).astype(np.float32)
    return np.maximum(walk, 0)


def realistic_shots(n: int, median_shot_steps: float = 10.0, sigma: float = 0.75,
                    seed: int = 0) -> np.ndarray:
    """The planted shot lengths of ``realistic_features`` with the same arguments, int64 [S]."""
    return shot_lengths(n, median_shot_steps, sigma, np.random.default_rng(seed))


def long_shot_features(n: int, dim: int = 1024, mean_shot: float = 10.0, seed: int = 0
                       ) -> np.ndarray:
    """float32 [n, dim]: per shot a gamma-distributed base vector, plus a random-walk drift over
    the whole video and per-step noise (the drift dominates at large n: long segments)."""
    rng = np.random.default_rng(seed)
    lengths = []
    while sum(lengths) < n:
        lengths.append(1 + int(rng.geometric(1.0 / mean_shot)))
    shot = np.repeat(np.arange(len(lengths)), lengths)[:n]
    base = rng.gamma(0.5, 1.0, size=(len(lengths), dim)).astype(np.float32)
    drift = np.cumsum(rng.normal(scale=0.05, size=(n, dim)).astype(np.float32), axis=0)
    noise = rng.normal(scale=0.3, size=(n, dim)).astype(np.float32)
    return np.maximum(base[shot] + drift + noise, 0)


def random_features(n: int, dim: int = 1024, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)


def make_features(kind: str, n: int, dim: int = 1024, seed: int = 0) -> np.ndarray:
    """One of KINDS, [n, dim] float32."""
    if kind == "realistic":
        return realistic_features(n, dim, seed=seed)
    if kind == "long_shot":
        return long_shot_features(n, dim, seed=seed)
    if kind == "random":
        return random_features(n, dim, seed=seed)
    raise ValueError(f"unknown KTS input kind {kind!r}; use one of {', '.join(KINDS)}")
