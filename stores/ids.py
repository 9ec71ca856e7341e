"""Video ids: the file stem made safe for a Zarr group name, unique within a job."""
from __future__ import annotations

import hashlib
import re
from pathlib import PurePosixPath

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def video_id_for(source: str) -> str:
    """'SumMe/Air Force One.mp4' -> 'Air_Force_One'; TVSum '-esJrBWj2d8.mp4' -> '-esJrBWj2d8'."""
    stem = PurePosixPath(str(source).rstrip("/")).stem
    return _UNSAFE.sub("_", stem).strip("_") or "video"


def unique_video_ids(sources: list[str]) -> dict[str, str]:
    """source -> id. Sources sharing a stem get '-<6 hex of the full path>' appended, so ids are
    stable across reruns whatever order the inputs come in."""
    by_id: dict[str, list[str]] = {}
    for s in sources:
        by_id.setdefault(video_id_for(s), []).append(s)
    out = {}
    for vid, group in by_id.items():
        for s in group:
            out[s] = vid if len(group) == 1 else f"{vid}-{hashlib.sha1(s.encode()).hexdigest()[:6]}"
    return out
