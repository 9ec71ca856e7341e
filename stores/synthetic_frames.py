"""A synthetic store of raw frame shards whose *content* decides importance.

Each video is a sequence of shots. Every shot has its own background (a colour gradient plus
noise); an "important" shot also shows a bright red square that drifts across the frame. Ground
truth is high (≈0.9) on steps with the square and low (≈0.1) elsewhere, so a model that learns to
see the red object from pixels ranks those steps first. The groups follow the store contract
(DESIGN.md §3): picks, frames, segments, labels/gtscore, labels/user_summary, ``complete`` last,
so training, prediction and evaluation run on it unchanged.

Memory: frames are generated and appended one chunk (16 steps) at a time.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stores import layout
from stores.location import open_root
from stores.writer import VideoWriter


@dataclass(frozen=True)
class SyntheticFramesConfig:
    n_videos: int = 8
    min_steps: int = 40
    max_steps: int = 80
    size: int = 32  # frames are [size, size, 3]
    sample_every: int = 15  # picks = 0, 15, 30, ... (the eccv16 rule)
    fps: float = 30.0
    min_shot: int = 4  # steps per shot
    max_shot: int = 12
    p_important: float = 0.4
    n_users: int = 3
    seed: int = 0


def _shots(n_steps: int, cfg: SyntheticFramesConfig, rng: np.random.Generator):
    """[(first_step, last_step_exclusive, important)] covering 0..n_steps; at least one of each."""
    bounds, t = [], 0
    while t < n_steps:
        n = int(rng.integers(cfg.min_shot, cfg.max_shot + 1))
        bounds.append((t, min(n_steps, t + n)))
        t += n
    flags = rng.random(len(bounds)) < cfg.p_important
    if len(bounds) > 1:  # both kinds present, so ranking is always defined
        if not flags.any():
            flags[int(rng.integers(len(bounds)))] = True
        if flags.all():
            flags[int(rng.integers(len(bounds)))] = False
    return [(a, b, bool(f)) for (a, b), f in zip(bounds, flags)]


def _frame(size: int, base: np.ndarray, square: tuple[int, int, int] | None,
           rng: np.random.Generator) -> np.ndarray:
    """uint8 [size, size, 3]: gradient background + noise (+ a red square at (y, x, side))."""
    ramp = np.linspace(0.6, 1.0, size, dtype=np.float32)[:, None, None]
    img = base[None, None, :] * ramp + rng.normal(0, 12, (size, size, 3)).astype(np.float32)
    if square is not None:
        y, x, side = square
        img[y : y + side, x : x + side] = (235.0, 25.0, 25.0)
    return np.clip(img, 0, 255).astype(np.uint8)


def _user_summary(gt_frames: np.ndarray, cfg: SyntheticFramesConfig,
                  rng: np.random.Generator) -> np.ndarray:
    """uint8 [U, n_frames]: each user keeps a noisy top-15% of the frames by ground truth."""
    n = len(gt_frames)
    keep = max(1, int(0.15 * n))
    out = np.zeros((cfg.n_users, n), np.uint8)
    for u in range(cfg.n_users):
        noisy = gt_frames + rng.normal(0, 0.05, n)
        out[u, np.argsort(-noisy, kind="stable")[:keep]] = 1
    return out


def write_synthetic_video(root, video_id: str, n_steps: int, cfg: SyntheticFramesConfig,
                          rng: np.random.Generator) -> None:
    S, every = cfg.size, cfg.sample_every
    shots = _shots(n_steps, cfg, rng)
    n_frames = n_steps * every
    picks = np.arange(n_steps, dtype=np.int32) * every
    gt = np.empty(n_steps, np.float32)

    w = VideoWriter(root, video_id)
    w.begin({"source": f"synthetic://{video_id}", "n_frames": n_frames,
             "n_frames_container": n_frames, "fps": cfg.fps, "duration_s": n_frames / cfg.fps,
             "width": S, "height": S, "rotation": 0, "sample": f"every={every}",
             "synthetic": "red square = important"})
    frames = w.appender(layout.FRAMES, (S, S, 3), np.uint8)
    block: list[np.ndarray] = []
    for first, last, important in shots:
        base = rng.uniform(40, 200, 3).astype(np.float32)
        base[0] = min(base[0], 150.0)  # backgrounds are never "red enough" to look important
        side = int(rng.integers(S // 4, S // 2 + 1))
        y0, x0 = rng.integers(0, S - side, 2)
        for t in range(first, last):
            square = None
            if important:  # drifts one pixel per step, wrapping inside the frame
                d = t - first
                square = (int((y0 + d) % (S - side)), int((x0 + 2 * d) % (S - side)), side)
            block.append(_frame(S, base, square, rng))
            gt[t] = (0.9 if important else 0.1) + float(rng.normal(0, 0.03))
            if len(block) == frames.chunk_rows:
                frames.append(np.stack(block))
                block = []
    if block:
        frames.append(np.stack(block))
    frames.close()
    gt = np.clip(gt, 0.0, 1.0)

    # Shots become the KTS-style segments (inclusive original-frame ranges).
    cps = np.array([[a * every, min(b * every, n_frames) - 1] for a, b, _ in shots], np.int32)
    gt_frames = np.repeat(gt, every)[:n_frames]
    w.write(layout.PICKS, picks)
    w.write(layout.CHANGE_POINTS, cps)
    w.write(layout.N_FRAME_PER_SEG, (cps[:, 1] - cps[:, 0] + 1).astype(np.int32))
    w.write(layout.GTSCORE, gt)
    w.write(layout.USER_SUMMARY, _user_summary(gt_frames, cfg, rng))
    w.write(layout.USER_SCORES, np.repeat(gt_frames[None].astype(np.float32), cfg.n_users, 0))
    w.finish({"n_steps": n_steps,
              "frames": {"size": [S, S], "dtype": "uint8", "weights": "none (raw pixels)"}})


def make_synthetic_frame_store(path: str, cfg: SyntheticFramesConfig | None = None) -> list[str]:
    """Write ``cfg.n_videos`` complete synthetic videos into the store at ``path``; returns ids."""
    cfg = cfg or SyntheticFramesConfig()
    rng = np.random.default_rng(cfg.seed)
    root = open_root(path, "a")
    ids = []
    for i in range(cfg.n_videos):
        vid = f"synth_{i:03d}"
        n_steps = int(rng.integers(cfg.min_steps, cfg.max_steps + 1))
        write_synthetic_video(root, vid, n_steps, cfg, rng)
        ids.append(vid)
    return ids
