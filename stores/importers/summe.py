"""SumMe (Gygli et al., ECCV 2014): 25 videos, 15–18 user summaries each.

Input: the GT folder, one ``<video name>.mat`` per video (MATLAB 5, scipy.io.loadmat; names may
contain spaces) with user_score [nFrames, users] (> 0 = selected), nFrames, FPS, video_duration.
eccv16 keys: ``video_k`` follows the ASCII order of the names (video_1 = Air_Force_One ...
video_25 = playing_ball). The users' selections are the reference summaries; user_scores holds
the same selections as 0/1 floats, so rank correlations on SumMe compare against binary labels.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from stores.importers.annotated import AnnotatedVideo

DATASET = "summe"


def read_summe_video(path: Path, key: str) -> AnnotatedVideo:
    import scipy.io

    try:
        m = scipy.io.loadmat(str(path))
    except (scipy.io.matlab.MatReadError, ValueError, OSError, TypeError,
            NotImplementedError) as exc:  # v7.3 files raise NotImplementedError
        raise ValueError(f"{path}: not a readable MATLAB file ({exc})") from None
    if "user_score" not in m:
        raise ValueError(f"{path}: no 'user_score' array (is this a SumMe GT file?)")
    sel = (np.asarray(m["user_score"]) > 0).T  # [users, n]
    n = sel.shape[1]
    if "nFrames" in m and int(np.ravel(m["nFrames"])[0]) != n:
        raise ValueError(f"{path}: user_score has {n} frames but nFrames says "
                         f"{int(np.ravel(m['nFrames'])[0])}")
    if "FPS" in m:
        fps = float(np.ravel(m["FPS"])[0])
    elif "video_duration" in m:
        fps = n / float(np.ravel(m["video_duration"])[0])
    else:
        raise ValueError(f"{path}: neither FPS nor video_duration is given")
    attrs = {}
    if "video_duration" in m:
        attrs["anno_duration_s"] = float(np.ravel(m["video_duration"])[0])
    return AnnotatedVideo(name=path.stem, dataset=DATASET, eccv16_key=key,
                          user_scores=sel.astype(np.float32), user_summary=sel.astype(np.uint8),
                          fps=fps, source=str(path), attrs=attrs)


def read_summe(gt_dir: str | Path, log=None) -> list[AnnotatedVideo]:
    """Every readable GT file; a bad file is one line on ``log`` (stderr) and is skipped, its
    eccv16 key stays reserved so the others keep theirs."""
    import sys

    gt_dir = Path(gt_dir)
    if not gt_dir.is_dir():
        raise FileNotFoundError(f"{gt_dir}: not a directory (expected SumMe's GT/ folder)")
    files = sorted(gt_dir.glob("*.mat"), key=lambda p: p.stem)  # ASCII order = eccv16 order
    if not files:
        raise FileNotFoundError(f"{gt_dir}: no .mat files")
    out = []
    for k, p in enumerate(files):
        try:
            out.append(read_summe_video(p, f"video_{k + 1}"))
        except ValueError as exc:
            print(str(exc), file=log or sys.stderr)
    return out
