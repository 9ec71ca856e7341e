"""Turn the user's INPUT arguments into a list of video sources.

An input is a file, a folder (searched recursively for video extensions), a glob, a text file
of paths (``.txt``/``.lst``, one per line, ``#`` comments), or a URL: a URL with glob characters
(``s3://bucket/videos/*.mp4``) or ending in ``/`` is listed through fsspec (with the store's
credentials: ``Store.filesystem_for``); any other URL is kept as is.
"""
from __future__ import annotations

import glob
import os
from pathlib import Path

from stores.store import Store

VIDEO_EXTENSIONS = {".mp4", ".mkv", ".avi", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv",
                    ".ts", ".3gp"}
LIST_EXTENSIONS = {".txt", ".lst"}


def expand_inputs(inputs: list[str], store: Store | None = None) -> list[str]:
    """Sources in first-seen order, without duplicates. A path that does not exist is kept,
    so the job reports it as a failed row instead of silently dropping it."""
    out: list[str] = []
    for item in inputs:
        if "://" in item:
            out += _expand_url(item, store or Store(""))
        elif os.path.isdir(item):
            out += sorted(str(p) for p in Path(item).rglob("*")
                          if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS)
        elif os.path.isfile(item) and Path(item).suffix.lower() in LIST_EXTENSIONS:
            base = Path(item).parent
            for line in Path(item).read_text().splitlines():
                line = line.strip()
                if line and not line.startswith("#"):
                    p = line if ("://" in line or os.path.isabs(line)) else str(base / line)
                    out.append(p)
        elif any(ch in item for ch in "*?["):
            out += sorted(glob.glob(item, recursive=True))
        else:
            out.append(item)
    return list(dict.fromkeys(out))


def _expand_url(url: str, store: Store) -> list[str]:
    if not (any(ch in url for ch in "*?[") or url.endswith("/")):
        return [url]
    fs, path = store.filesystem_for(url)
    found = fs.glob(path) if any(ch in url for ch in "*?[") else fs.find(path)
    proto = url.split("://", 1)[0]
    return sorted(f"{proto}://{p}" for p in found if Path(p).suffix.lower() in VIDEO_EXTENSIONS)


def source_size(source: str, store: Store | None = None) -> int:
    """Bytes, used to schedule the longest videos first (0 when unknown). URLs are read with
    ``store``'s credentials."""
    try:
        if "://" in source:
            fs, path = (store or Store("")).filesystem_for(source)
            return int(fs.size(path) or 0)
        return os.path.getsize(source)
    except Exception:
        return 0
