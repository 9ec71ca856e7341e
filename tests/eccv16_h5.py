"""Small eccv16-schema h5 files for the four public datasets, for `vsum reproduce` tests.

    paths = write_eccv16_datasets(tmp_path, shared_data)   # {"tvsum": …/eccv16_dataset_tvsum_google_pool5.h5, …}

Each file holds a few short videos with the datasets' real annotations where we have them
(TVSum: ydata-tvsum50.mat, SumMe: GT/*.mat, cropped to their first ``max_frames`` frames) and
generated ones otherwise (OVP, YouTube; TVSum/SumMe too when ``shared_data`` is None), so no
test skips for lack of the annotation files. Features are planted: step t of a video is
g_t·a + (1 − g_t)·b + a dataset offset + noise, with g_t the ground-truth importance, so a head
can learn and datasets differ a little (as features of different sources do).
Schema: features [T, D], gtscore [T], user_summary [U, n], change_points [S, 2],
n_frame_per_seg [S], n_frames, picks [T], n_steps, gtsummary [T], video_name.
"""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from pipeline.summary import uniform_segments
from stores.importers.common import knapsack_user_summaries

SIZES = {"tvsum": 5, "summe": 4, "ovp": 3, "youtube": 3}
EVERY = 15


def _real(name: str, shared_data: Path | None, k: int):
    """[(video name, user_scores [U, n], user_summary [U, n] | None, fps)] or None."""
    if shared_data is None:
        return None
    if name == "tvsum" and (shared_data / "tvsum" / "ydata-tvsum50.mat").exists():
        from stores.importers.tvsum import read_tvsum_mat

        vids = read_tvsum_mat(shared_data / "tvsum" / "ydata-tvsum50.mat")[:k]
    elif name == "summe" and (shared_data / "summe" / "GT").is_dir():
        from stores.importers.summe import read_summe

        vids = read_summe(shared_data / "summe" / "GT")[:k]
    else:
        return None
    return [(v.name, v.user_scores, v.user_summary, v.fps) for v in vids]


def _generated(name: str, k: int, rng: np.random.Generator):
    out = []
    for i in range(k):
        n = int(rng.integers(600, 1200))
        blocks = np.repeat(rng.random(n // 60 + 1), 60)[:n]  # importance per 2 s at 30 fps
        users = np.clip(blocks[None] + 0.2 * rng.standard_normal((5, 1)), 0, 1)
        out.append((f"{name}_{i:02d}", np.round(1 + 4 * users).astype(np.float32), None, 30.0))
    return out


def _features(g: np.ndarray, dim: int, dirs: tuple, offset: np.ndarray,
              rng: np.random.Generator) -> np.ndarray:
    a, b = dirs
    x = g[:, None] * a + (1 - g[:, None]) * b + offset + 0.3 * rng.standard_normal((len(g), dim))
    return x.astype(np.float32)


def write_eccv16_datasets(out_dir: str | Path, shared_data: Path | None = None,
                          sizes: dict[str, int] | None = None, max_frames: int = 1200,
                          dim: int = 32, seed: int = 0) -> dict[str, Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    dirs = (rng.standard_normal(dim), rng.standard_normal(dim))  # important, dull: shared
    paths = {}
    for name, k in (sizes or SIZES).items():
        videos = _real(name, shared_data, k) or _generated(name, k, rng)
        offset = 0.3 * rng.standard_normal(dim)
        path = out_dir / f"eccv16_dataset_{name}_google_pool5.h5"
        with h5py.File(path, "w") as h5:
            for i, (vname, scores, summary, fps) in enumerate(videos, start=1):
                n = min(scores.shape[1], max_frames)
                scores = scores[:, :n]
                cps = uniform_segments(n, fps).astype(np.int64)
                if summary is None:
                    summary = knapsack_user_summaries(scores, cps)
                summary = (np.asarray(summary)[:, :n] > 0).astype(np.float32)
                picks = np.arange(0, n, EVERY, dtype=np.int64)
                g = scores[:, picks].mean(axis=0)
                g = (g - g.min()) / (np.ptp(g) or 1.0)
                grp = h5.create_group(f"video_{i}")
                grp["features"] = _features(g, dim, dirs, offset, rng)
                grp["gtscore"] = g.astype(np.float32)
                grp["user_summary"] = summary
                grp["change_points"] = cps
                grp["n_frame_per_seg"] = cps[:, 1] - cps[:, 0] + 1
                grp["n_frames"] = n
                grp["picks"] = picks
                grp["n_steps"] = len(picks)
                grp["gtsummary"] = (summary.mean(axis=0)[picks] >= 0.5).astype(np.float32)
                grp["video_name"] = vname.encode()
        paths[name] = path
    return paths
