"""Thumbnails of selected shots for the report: one small JPEG per shot, taken at the shot's
middle frame.

Where they come from, in order: the store's raw frame shards (``frames`` [T, S, S, 3], the step
whose pick holds that frame); else the source video, decoded once up to the last frame needed
(one frame converted at a time, so memory stays small) when its path is a readable local file;
else none, with a note that says why.
"""
from __future__ import annotations

import io
import os

import numpy as np

THUMB_HEIGHT = 72  # px, for frames decoded from the source
JPEG_QUALITY = 80


def jpeg(img: np.ndarray) -> bytes:
    """uint8 [H, W, 3] -> JPEG bytes."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(img)).save(buf, format="JPEG", quality=JPEG_QUALITY)
    return buf.getvalue()


def middle_frames(change_points: np.ndarray, shots: list[int]) -> list[int]:
    cps = np.asarray(change_points)
    return [int((cps[s, 0] + cps[s, 1]) // 2) for s in shots]


def from_store(fs, video_id: str, picks: np.ndarray, frames: list[int]) -> list[bytes] | None:
    """JPEGs from the frame shards (the pick at or before each frame); None without shards."""
    from stores import layout

    if not fs.has(video_id, layout.FRAMES):
        return None
    steps = np.clip(np.searchsorted(picks, frames, side="right") - 1, 0, len(picks) - 1)
    arr = fs.array(video_id, layout.FRAMES)
    uniq = np.unique(steps)
    imgs = dict(zip(uniq.tolist(), np.asarray(arr.get_orthogonal_selection((uniq,)))))
    return [jpeg(imgs[int(s)]) for s in steps]


def from_source(source: str, frames: list[int], height: int = THUMB_HEIGHT) -> list[bytes]:
    """JPEGs of the given decoded-frame indices (counted as the extraction counts them),
    rotated as ffmpeg's autorotate does. Raises OSError/ValueError/av errors."""
    import av

    wanted = set(frames)
    got: dict[int, bytes] = {}
    last = max(frames)
    with av.open(source) as c:
        stream = c.streams.video[0]
        stream.codec_context.thread_type = "SLICE"
        i = -1
        for frame in c.decode(stream):
            i += 1
            if i in wanted:
                k = (int(round(getattr(frame, "rotation", 0) or 0)) % 360) // 90
                w = max(2, round(frame.width * height / max(1, frame.height)))
                size = (height, w) if k % 2 else (w, height)  # (width, height) before rotating
                img = frame.to_ndarray(format="rgb24", width=size[0], height=size[1])
                got[i] = jpeg(np.rot90(img, k=k) if k else img)
            if i >= last:
                break
    if len(got) < len(wanted):
        raise ValueError(f"{source}: has {i + 1} frames, thumbnails need frame {last}")
    return [got[f] for f in frames]


def shot_thumbnails(fs, video_id: str, picks, change_points, shots: list[int]) -> tuple[list[bytes], str]:
    """(JPEG per selected shot, note). The note is "" when they came from the frame shards."""
    if not shots:
        return [], ""
    frames = middle_frames(change_points, shots)
    thumbs = from_store(fs, video_id, np.asarray(picks), frames)
    if thumbs is not None:
        return thumbs, ""
    source = str(fs.attrs(video_id).get("source") or "")
    if not source or "://" in source or not os.path.isfile(source):
        return [], (f"thumbnails omitted: the store has no frame shards and the source video "
                    f"({source or 'not recorded'}) is not reachable from here")
    try:
        return from_source(source, frames), f"thumbnails decoded from {source}"
    except Exception as e:  # noqa: BLE001 - a report never fails for a picture
        return [], f"thumbnails omitted: {source} could not be decoded ({' '.join(str(e).split())[:120]})"
