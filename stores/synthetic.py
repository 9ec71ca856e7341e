"""A labelled synthetic feature store, TVSum-shaped, with importance planted in the features.

``build_synthetic_store(out, n_videos=50, seed=0)`` writes ``out`` (a Zarr store following
DESIGN.md §3) and returns the video ids. ``vsum store synth OUT --videos N --seed S`` calls it.

Shapes (TVSum-like): 200–700 steps per video, picks every 15 frames at 30 fps, 5–20 annotators,
per-annotator scores 1..5 constant over 2-second blocks, 15% keyshot user summaries.

What is planted (so a head that learns beats random scores by a clear margin):
1. Content. There are K = 8 global *content directions* c_k (random unit vectors in the
   flattened feature space, scaled to norm 3), shared by every video of the store. Three of
   them are *important* (base interest w_k in [0.75, 1.0]); the other five are dull
   (w_k in [0.0, 0.35]). A video is a sequence of scenes of 4–16 steps; each scene shows one
   content (a Markov chain that never repeats a content twice in a row).
2. Features of step t in scene s of content k:
       x_t = c_k + v_s + o + n_t
   v_s: a per-scene variation (norm ≈ 1), o: a per-video offset (norm ≈ 1), n_t: AR(1)
   temporal noise (ρ = 0.8, stationary norm ≈ 0.7). So content is recoverable from one step,
   but not trivially (the noise is comparable to the distance between contents).
3. Transitions matter. The first 3 steps after every scene change get an importance bump
   0.35·exp(−d/1.5) (d = steps since the change): a head with temporal context (|x_t − x_{t−1}|
   is large only at changes) can use it, a per-step head cannot.
4. Importance (step level) = clip(w_k + bump, 0, 1).
5. Annotators disagree. Annotator u has its own interests w_k + N(0, 0.2), a bias N(0, 0.05),
   and per-2-second-block noise N(0, 0.25); its frame score is round(1 + 4·clip(value)) in 1..5,
   constant over each 60-frame block (zero-order hold from the steps to frames first).
6. Labels: ``labels/user_scores`` [U, n_frames] (1..5), ``labels/user_summary`` [U, n_frames]
   (each annotator's exact 0/1 knapsack over the segments at 15% of the frames, using the
   segment mean of its own scores; ``pipeline.summary.knapsack``), ``labels/gtscore`` [T] =
   (mean over annotators of the score at each pick − 1) / 4, in [0, 1].
7. Segments (KTS-like): every scene boundary is a segment boundary, and scenes longer than
   8 steps are split once more at a random step; segments are inclusive frame ranges
   [first, last] covering 0 .. n_frames − 1.

4-D feature shapes (e.g. {"st3d": (512, 4, 4)}) get the same construction in the flattened
C·h·w space, reshaped, and stored as float16 (as ST3D maps are); 1-D shapes are float32.
Everything derives from ``seed``: the same seed gives the same store, bit for bit.
"""
from __future__ import annotations

import math
import time

import numpy as np

from pipeline.summary import knapsack, shot_lengths, shot_scores, summary_from_shots
from stores import layout
from stores.location import open_root
from stores.manifest import Manifest
from stores.writer import VideoWriter, write_array

SAMPLE_EVERY = 15
FPS = 30.0
N_CONTENTS = 8
N_IMPORTANT = 3
CONTENT_NORM = 3.0
SCENE_NORM = 1.0
OFFSET_NORM = 1.0
NOISE_NORM = 0.7
NOISE_RHO = 0.8
BUMP, BUMP_DECAY, BUMP_STEPS = 0.35, 1.5, 3
BLOCK_FRAMES = 60  # annotators score 2-second blocks (TVSum)
SUMMARY_RATIO = 0.15
USER_TASTE_SD, USER_BIAS_SD, USER_BLOCK_SD = 0.2, 0.05, 0.25  # annotator disagreement


def _unit_rows(rng: np.random.Generator, n: int, d: int, norm: float) -> np.ndarray:
    v = rng.standard_normal((n, d))
    return norm * v / np.linalg.norm(v, axis=1, keepdims=True)


def _scenes(n_steps: int, rng: np.random.Generator) -> list[tuple[int, int, int]]:
    """[(first_step, end_step_exclusive, content)] covering 0..n_steps."""
    out, t, prev = [], 0, -1
    while t < n_steps:
        n = int(rng.integers(4, 17))
        k = int(rng.choice([c for c in range(N_CONTENTS) if c != prev]))
        out.append((t, min(n_steps, t + n), k))
        t, prev = t + n, k
    return out


def _segments(scenes, n_steps: int, n_frames: int, rng: np.random.Generator) -> np.ndarray:
    """KTS-like change points int32 [S, 2] (inclusive frames), scene boundaries kept."""
    starts = []
    for a, b, _ in scenes:
        starts.append(a)
        if b - a > 8:
            starts.append(int(rng.integers(a + 3, b - 3)))
    starts = np.array(sorted(starts))
    ends = np.append(starts[1:], n_steps)
    first = starts * SAMPLE_EVERY
    last = np.minimum(ends * SAMPLE_EVERY, n_frames) - 1
    return np.stack([first, last], axis=1).astype(np.int32)


def _ar1_noise(rng: np.random.Generator, t: int, d: int) -> np.ndarray:
    """[T, D] AR(1) noise with stationary per-row norm ≈ NOISE_NORM."""
    sd = NOISE_NORM / math.sqrt(d)
    innov = rng.standard_normal((t, d)) * sd * math.sqrt(1 - NOISE_RHO**2)
    out = np.empty((t, d))
    out[0] = rng.standard_normal(d) * sd
    for i in range(1, t):
        out[i] = NOISE_RHO * out[i - 1] + innov[i]
    return out


def _frame_hold(step_values: np.ndarray, n_frames: int) -> np.ndarray:
    """[T] -> [n_frames], zero-order hold from picks every SAMPLE_EVERY frames."""
    return np.repeat(step_values, SAMPLE_EVERY)[:n_frames]


def _annotate(scenes, weights, n_steps: int, n_frames: int, cps: np.ndarray,
              rng: np.random.Generator):
    """-> (importance [T], user_scores float32 [U, n], user_summary uint8 [U, n], gtscore [T])"""
    content = np.empty(n_steps, dtype=np.int64)
    bump = np.zeros(n_steps)
    for i, (a, b, k) in enumerate(scenes):
        content[a:b] = k
        if i > 0:
            d = np.arange(min(BUMP_STEPS, b - a))
            bump[a : a + len(d)] = BUMP * np.exp(-d / BUMP_DECAY)
    importance = np.clip(weights[content] + bump, 0, 1)

    n_users = int(rng.integers(5, 21))
    n_blocks = math.ceil(n_frames / BLOCK_FRAMES)
    lengths = shot_lengths(cps)
    capacity = int(SUMMARY_RATIO * n_frames)
    scores = np.empty((n_users, n_frames), np.float32)
    summaries = np.empty((n_users, n_frames), np.uint8)
    for u in range(n_users):
        w_u = weights + rng.normal(0, USER_TASTE_SD, N_CONTENTS)
        frame_val = _frame_hold(np.clip(w_u[content] + bump, 0, 1), n_frames)
        pad = np.pad(frame_val, (0, n_blocks * BLOCK_FRAMES - n_frames), mode="edge")
        block = pad.reshape(n_blocks, BLOCK_FRAMES).mean(axis=1)
        block = block + rng.normal(0, USER_BIAS_SD) + rng.normal(0, USER_BLOCK_SD, n_blocks)
        level = np.clip(np.round(1 + 4 * np.clip(block, 0, 1)), 1, 5)
        scores[u] = np.repeat(level, BLOCK_FRAMES)[:n_frames]
        chosen = knapsack(shot_scores(scores[u], cps), lengths, capacity)
        summaries[u] = summary_from_shots(cps, chosen, n_frames)
    picks = np.arange(n_steps) * SAMPLE_EVERY
    gtscore = ((scores[:, picks].mean(axis=0) - 1.0) / 4.0).astype(np.float32)
    return importance, scores, summaries, gtscore


def build_synthetic_store(out: str, n_videos: int = 50, seed: int = 0,
                          feature_shapes: dict[str, tuple] | None = None,
                          min_steps: int = 200, max_steps: int = 700) -> list[str]:
    """Write ``n_videos`` labelled synthetic videos into the store ``out`` -> their ids.

    feature_shapes: store feature name -> per-step shape, default {"googlenet": (1024,)};
    4-D maps such as {"st3d": (512, 4, 4)} are supported.
    """
    if n_videos < 1:
        raise ValueError(f"{out}: n_videos must be >= 1, got {n_videos}")
    if not 1 <= min_steps <= max_steps:
        raise ValueError(f"{out}: need 1 <= min_steps <= max_steps, got {min_steps}, {max_steps}")
    shapes = {k: tuple(int(s) for s in v) for k, v in (feature_shapes or {"googlenet": (1024,)}).items()}
    root = open_root(str(out), "a")
    manifest = Manifest(str(out))
    master = np.random.default_rng(seed)
    # Store-wide planted structure: content interest and one direction set per feature array.
    weights = np.concatenate([master.uniform(0.75, 1.0, N_IMPORTANT),
                              master.uniform(0.0, 0.35, N_CONTENTS - N_IMPORTANT)])
    weights = weights[master.permutation(N_CONTENTS)]
    directions = {name: _unit_rows(master, N_CONTENTS, math.prod(s), CONTENT_NORM)
                  for name, s in shapes.items()}
    video_seeds = master.integers(0, 2**63, n_videos)
    ids = []
    for i in range(n_videos):
        t0 = time.perf_counter()
        vid = f"synth_{i:03d}"
        rng = np.random.default_rng(int(video_seeds[i]))
        n_steps = int(rng.integers(min_steps, max_steps + 1))
        n_frames = (n_steps - 1) * SAMPLE_EVERY + int(rng.integers(1, SAMPLE_EVERY + 1))
        scenes = _scenes(n_steps, rng)
        cps = _segments(scenes, n_steps, n_frames, rng)
        importance, user_scores, user_summary, gtscore = _annotate(
            scenes, weights, n_steps, n_frames, cps, rng)
        w = VideoWriter(root, vid)
        w.begin({"source": f"synthetic://seed={seed}/{vid}", "sample": f"every {SAMPLE_EVERY} frames",
                 "config_hash": f"synthetic-v1-seed{seed}",
                 "weights": dict.fromkeys(shapes, "synthetic"),
                 "synthetic": {"seed": seed, "content_interest": weights.round(4).tolist()}})
        w.write(layout.PICKS, (np.arange(n_steps) * SAMPLE_EVERY).astype(np.int32))
        for name, shape in shapes.items():
            d = math.prod(shape)
            x = np.empty((n_steps, d))
            for a, b, k in scenes:
                x[a:b] = directions[name][k] + _unit_rows(rng, 1, d, SCENE_NORM)
            x += _unit_rows(rng, 1, d, OFFSET_NORM) + _ar1_noise(rng, n_steps, d)
            dtype = np.float32 if len(shape) == 1 else np.float16
            w.write(layout.feature_path(name), x.reshape(n_steps, *shape).astype(dtype))
        w.write(layout.CHANGE_POINTS, cps)
        w.write(layout.N_FRAME_PER_SEG, shot_lengths(cps).astype(np.int32))
        w.write(layout.GTSCORE, gtscore)
        w.write(layout.USER_SCORES, user_scores)
        w.write(layout.USER_SUMMARY, user_summary)
        w.write("labels/importance", importance.astype(np.float32))  # the planted truth
        info = {"n_frames": n_frames, "n_frames_container": n_frames, "fps": FPS,
                "duration_s": n_frames / FPS, "width": 320, "height": 240, "rotation": 0,
                "n_steps": n_steps}
        w.finish(info)
        manifest.update({"video_id": vid, "source": f"synthetic://seed={seed}/{vid}",
                         "status": "complete", "error": "", **{k: info[k] for k in
                         ("n_frames", "n_frames_container", "fps", "duration_s", "n_steps")},
                         "sec_total": time.perf_counter() - t0})
        ids.append(vid)
    manifest.close()
    return ids


def plant_features(store: str, name: str = "googlenet", shape: tuple = (1024,), seed: int = 0,
                   video_ids: list[str] | None = None, n_levels: int = N_CONTENTS) -> list[str]:
    """Add synthetic ``features/<name>`` to labelled videos that have none (e.g. a store imported
    from real TVSum/SumMe annotations without the videos), so heads can train on real labels.

    NOT video features: step t gets the content direction of its gtscore level
    (``floor(gtscore_t · n_levels)``), plus a per-video offset and AR(1) noise, exactly as in
    ``build_synthetic_store``; importance is therefore recoverable from the features.
    The video is marked incomplete while its array is written. -> the ids that got features.
    """
    from stores.reader import FeatureStore

    fs = FeatureStore(store)
    root = open_root(str(store), "a")
    shape = tuple(int(s) for s in shape)
    d = math.prod(shape)
    master = np.random.default_rng(seed)
    directions = _unit_rows(master, n_levels, d, CONTENT_NORM)
    done = []
    manifest = Manifest(str(store), command="plant_features")  # groups change in place: say so first
    for vid in video_ids or fs.video_ids():
        if not fs.has(vid, layout.GTSCORE):
            raise ValueError(f"{store}/videos/{vid}: no {layout.GTSCORE} to plant features from")
        gt = np.clip(fs.load(vid, layout.GTSCORE).astype(np.float64), 0, 1)
        n_picks = fs.array(vid, layout.PICKS).shape[0]
        if len(gt) != n_picks:
            raise ValueError(f"{store}/videos/{vid}: gtscore has {len(gt)} steps, picks {n_picks}")
        rng = np.random.default_rng([seed, *vid.encode()])
        level = np.minimum((gt * n_levels).astype(np.int64), n_levels - 1)
        x = directions[level] + _unit_rows(rng, 1, d, OFFSET_NORM) + _ar1_noise(rng, len(gt), d)
        group = root[layout.video_group_path(vid)]
        group.attrs[layout.COMPLETE] = False
        dtype = np.float32 if len(shape) == 1 else np.float16
        write_array(group, layout.feature_path(name), x.reshape(len(gt), *shape).astype(dtype))
        weights = dict(group.attrs.get("weights") or {})
        weights[name] = f"synthetic-from-labels(seed={seed})"
        group.attrs["weights"] = weights
        group.attrs[layout.COMPLETE] = True
        manifest.mark_changed(vid)
        done.append(vid)
    manifest.close()
    return done
