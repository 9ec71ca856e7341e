"""``vsum store check``: validate every video of a store against the contract.

Checks per complete video: every per-step array has T = n_steps rows; picks strictly
increasing and < n_frames; every chunk present and decodable (a deleted chunk would silently
read as zeros); no NaN/inf in features; segments cover [0, n_frames-1] exactly with
n_frame_per_seg matching; label shapes agree with n_frames / T.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stores import layout
from stores.reader import FeatureStore


@dataclass(frozen=True)
class Problem:
    video_id: str
    array: str
    reason: str

    def __str__(self) -> str:
        return f"{self.video_id}: {self.array}: {self.reason}"


def _arrays(group, prefix=""):
    for name, arr in group.arrays():
        yield f"{prefix}{name}", arr
    for name, sub in group.groups():
        yield from _arrays(sub, f"{prefix}{name}/")


def check_video(fs: FeatureStore, vid: str) -> list[Problem]:
    out: list[Problem] = []
    attrs = fs.attrs(vid)
    n_frames = int(attrs.get("n_frames", 0))
    g = fs.group(vid)
    if layout.PICKS not in g:
        return [Problem(vid, layout.PICKS, "missing")]
    arrays = dict(_arrays(g))
    for path, arr in arrays.items():
        try:
            if arr.nchunks_initialized != arr.nchunks and arr.size:
                out.append(Problem(vid, path, f"{arr.nchunks - arr.nchunks_initialized} of "
                                              f"{arr.nchunks} chunks missing"))
                continue
            data = arr[...]
        except Exception as e:
            out.append(Problem(vid, path, f"unreadable ({type(e).__name__}: {str(e)[:100]})"))
            continue
        if data.dtype.kind == "f" and not np.isfinite(data).all():
            out.append(Problem(vid, path, "contains NaN or inf"))
        arrays[path] = data
    picks = arrays.get(layout.PICKS)
    if not isinstance(picks, np.ndarray):
        return out
    T = len(picks)
    if "n_steps" in attrs and attrs["n_steps"] != T:
        out.append(Problem(vid, layout.PICKS, f"{T} picks but n_steps = {attrs['n_steps']}"))
    if T and (np.any(np.diff(picks) <= 0) or picks[0] < 0 or picks[-1] >= n_frames):
        out.append(Problem(vid, layout.PICKS, f"not strictly increasing within [0, {n_frames})"))
    for path, data in arrays.items():
        if not isinstance(data, np.ndarray):
            continue
        if (path.startswith(layout.FEATURES + "/") or path in (layout.FRAMES, layout.GTSCORE)) and len(data) != T:
            out.append(Problem(vid, path, f"{len(data)} rows, expected T = {T}"))
        if path in (layout.USER_SUMMARY, layout.USER_SCORES) and data.ndim == 2 and data.shape[1] != n_frames:
            out.append(Problem(vid, path, f"{data.shape[1]} frames, expected n_frames = {n_frames}"))
    cps = arrays.get(layout.CHANGE_POINTS)
    if isinstance(cps, np.ndarray):
        out += _check_segments(vid, cps, arrays.get(layout.N_FRAME_PER_SEG), n_frames)
    return out


def _check_segments(vid, cps, nfps, n_frames) -> list[Problem]:
    p = layout.CHANGE_POINTS
    if cps.ndim != 2 or cps.shape[1] != 2 or not len(cps):
        return [Problem(vid, p, f"shape {cps.shape}, expected [S, 2] with S >= 1")]
    if cps[0, 0] != 0 or cps[-1, 1] != n_frames - 1:
        return [Problem(vid, p, f"segments span [{cps[0, 0]}, {cps[-1, 1]}], expected [0, {n_frames - 1}]")]
    if np.any(cps[1:, 0] != cps[:-1, 1] + 1) or np.any(cps[:, 1] < cps[:, 0]):
        return [Problem(vid, p, "segments overlap, leave gaps or are empty")]
    if isinstance(nfps, np.ndarray) and not np.array_equal(nfps, cps[:, 1] - cps[:, 0] + 1):
        return [Problem(vid, layout.N_FRAME_PER_SEG, "disagrees with change_points")]
    return []


def check_store(path: str, storage_options=None) -> list[Problem]:
    fs = FeatureStore(path, storage_options)
    problems: list[Problem] = []
    for vid in fs.video_ids():
        problems += check_video(fs, vid)
    return problems
