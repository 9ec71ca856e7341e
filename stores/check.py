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
from stores.index import bounded_map
from stores.reader import FeatureStore

# Videos checked at once: their requests overlap on object storage; each holds one block.
CHECK_CONCURRENCY = 8


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


# Arrays kept in memory for the cross-checks below; the others (features, frames) are read one
# block of chunks at a time, so checking a long video holds one block, not the whole array.
_KEEP = (layout.PICKS, layout.CHANGE_POINTS, layout.N_FRAME_PER_SEG)
BLOCK_BYTES = 64 * 2**20


def _read_checked(vid: str, path: str, arr) -> tuple[list[Problem], np.ndarray | None]:
    """Every chunk present, decodable and (floats) finite. -> (problems, data when kept)."""
    if arr.nchunks_initialized != arr.nchunks and arr.size:
        return [Problem(vid, path, f"{arr.nchunks - arr.nchunks_initialized} of "
                                   f"{arr.nchunks} chunks missing")], None
    if path in _KEEP or not arr.ndim:
        blocks, step = [arr[...]], None
    else:
        row_bytes = max(1, arr.nbytes // max(1, arr.shape[0]))
        step = max(arr.chunks[0], BLOCK_BYTES // row_bytes // arr.chunks[0] * arr.chunks[0])
        blocks = (arr[i : i + step] for i in range(0, max(arr.shape[0], 1), step))
    finite = True
    data = None
    for block in blocks:
        if block.dtype.kind == "f" and not np.isfinite(block).all():
            finite = False
        data = block if step is None else None
    return ([] if finite else [Problem(vid, path, "contains NaN or inf")]), data


def check_video(fs: FeatureStore, vid: str) -> list[Problem]:
    out: list[Problem] = []
    attrs = fs.attrs(vid)
    if not attrs.get(layout.COMPLETE):  # the group is the truth; the listing came from the index
        return [Problem(vid, "group", "listed as complete by the store's index, but not complete")]
    n_frames = int(attrs.get("n_frames", 0))
    g = fs.group(vid)
    if layout.PICKS not in g:
        return [Problem(vid, layout.PICKS, "missing")]
    arrays = dict(_arrays(g))
    kept: dict[str, np.ndarray] = {}
    for path, arr in arrays.items():
        try:
            problems, data = _read_checked(vid, path, arr)
        except Exception as e:
            out.append(Problem(vid, path, f"unreadable ({type(e).__name__}: {str(e)[:100]})"))
            continue
        out += problems
        if data is not None and not problems:
            kept[path] = data
    picks = kept.get(layout.PICKS)
    if picks is None:
        return out
    T = len(picks)
    if "n_steps" in attrs and attrs["n_steps"] != T:
        out.append(Problem(vid, layout.PICKS, f"{T} picks but n_steps = {attrs['n_steps']}"))
    if T and (np.any(np.diff(picks) <= 0) or picks[0] < 0 or picks[-1] >= n_frames):
        out.append(Problem(vid, layout.PICKS, f"not strictly increasing within [0, {n_frames})"))
    readable = {p for p in arrays if not any(q.array == p for q in out)}
    for path in sorted(readable):
        shape = arrays[path].shape
        if (path.startswith(layout.FEATURES + "/") or path in (layout.FRAMES, layout.GTSCORE)) and shape[0] != T:
            out.append(Problem(vid, path, f"{shape[0]} rows, expected T = {T}"))
        if path in (layout.USER_SUMMARY, layout.USER_SCORES) and len(shape) == 2 and shape[1] != n_frames:
            out.append(Problem(vid, path, f"{shape[1]} frames, expected n_frames = {n_frames}"))
    cps = kept.get(layout.CHANGE_POINTS)
    if cps is not None:
        out += _check_segments(vid, cps, kept.get(layout.N_FRAME_PER_SEG), n_frames)
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


def check_store(path, storage_options=None) -> list[Problem]:
    """Every complete video checked, ``CHECK_CONCURRENCY`` videos at a time (the listing is the
    store's index; each video's own group is then read in full). Problems in video order.
    ``path``: a path or URL, or a ``stores.Store``."""
    fs = FeatureStore(path, storage_options)
    per_video = bounded_map(lambda vid: check_video(fs, vid), fs.video_ids(), CHECK_CONCURRENCY)
    return [p for problems in per_video for p in problems]
