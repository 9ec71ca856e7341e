"""A generic JSON annotation form (``vsum import json FILE``), for corpora such as VTW.

    {"dataset": "vtw",                               optional, default: the file's stem
     "videos": [
       {"name": "clip01", "fps": 30.0,               name -> store id via video_id_for
        "user_scores": [[s_0, ..., s_n-1], ...]},     per annotator, one score per frame
       {"name": "clip02", "fps": 25.0, "duration_s": 40.0,   (or "n_frames": 1000)
        "intervals": [[[1.0, 3.5], [10.0, 12.0]],     per annotator, [start_s, end_s) intervals
                      [[2.0, 4.0]]]}
     ]}

Per-frame scores: reference summaries are the 15% knapsack per annotator (as TVSum).
Intervals: the frames whose centre time falls inside an interval are that annotator's summary,
and the same 0/1 vector is its score. An optional "key" sets the eccv16 key (default
``video_k`` in file order, k from 1).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from stores.importers.annotated import AnnotatedVideo


def intervals_to_summary(intervals: list, n_frames: int, fps: float) -> np.ndarray:
    """[[start_s, end_s], ...] -> uint8 [n_frames] (frame centres inside [start, end))."""
    t = (np.arange(n_frames) + 0.5) / fps
    out = np.zeros(n_frames, dtype=np.uint8)
    for start, end in intervals:
        out[(t >= float(start)) & (t < float(end))] = 1
    return out


def _video(entry: dict, k: int, dataset: str, path: Path) -> AnnotatedVideo:
    name = entry.get("name")
    if not name:
        raise ValueError(f"{path}: video #{k + 1} has no 'name'")
    where = f"{path}#{name}"
    if not entry.get("fps"):
        raise ValueError(f"{where}: 'fps' is required")
    fps = float(entry["fps"])
    key = entry.get("key", f"video_{k + 1}")
    if "user_scores" in entry:
        scores = np.asarray(entry["user_scores"], dtype=np.float32)
        if scores.ndim != 2 or scores.shape[1] == 0:
            raise ValueError(f"{where}: user_scores must be [annotators][frames] numbers")
        return AnnotatedVideo(name, dataset, key, scores, fps, source=where)
    if "intervals" in entry:
        if "n_frames" in entry:
            n = int(entry["n_frames"])
        elif "duration_s" in entry:
            n = round(float(entry["duration_s"]) * fps)
        else:
            raise ValueError(f"{where}: intervals need 'n_frames' or 'duration_s'")
        summ = np.stack([intervals_to_summary(a, n, fps) for a in entry["intervals"]])
        return AnnotatedVideo(name, dataset, key, summ.astype(np.float32), fps,
                              user_summary=summ, source=where)
    raise ValueError(f"{where}: needs 'user_scores' or 'intervals'")


def read_json(path: str | Path) -> list[AnnotatedVideo]:
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not readable JSON ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("videos"), list):
        raise TypeError(f"{path}: expected an object with a 'videos' list")
    dataset = str(doc.get("dataset") or path.stem)
    return [_video(e, k, dataset, path) for k, e in enumerate(doc["videos"])]
