"""Open a store root from a local path or any fsspec URL (s3://…, memory://…)."""
from __future__ import annotations

import json
import os

import zarr

from stores import layout


def storage_options_from_env() -> dict | None:
    """``VSUM_STORAGE_OPTIONS`` holds JSON fsspec options (e.g. endpoint_url for S3)."""
    raw = os.environ.get("VSUM_STORAGE_OPTIONS")
    return json.loads(raw) if raw else None


def is_url(path: str) -> bool:
    return "://" in str(path) and not str(path).startswith("file://")


def open_root(path: str, mode: str = "r", storage_options: dict | None = None) -> zarr.Group:
    """The store's root group. ``mode='a'`` creates it (with schema attrs) when missing."""
    path = str(path)
    opts = storage_options if storage_options is not None else storage_options_from_env()
    kwargs = {"storage_options": opts} if (opts and is_url(path)) else {}
    if mode == "r":
        try:  # vsum writes Zarr v3: one read of zarr.json, no probes for v2's three files
            return zarr.open_group(path, mode="r", use_consolidated=False, zarr_format=3, **kwargs)
        except FileNotFoundError:  # nothing there, or a v2 group: let zarr say which
            return zarr.open_group(path, mode="r", use_consolidated=False, **kwargs)
    root = zarr.open_group(path, mode="a", use_consolidated=False, zarr_format=3, **kwargs)
    if "vsum_schema" not in root.attrs:
        from stores import __version__

        root.attrs.update({"vsum_schema": layout.SCHEMA_VERSION, "created_by": f"vsum {__version__}"})
    if layout.VIDEOS not in root:
        root.require_group(layout.VIDEOS)
    return root


def fs_and_path(path: str, storage_options: dict | None = None):
    """(fsspec filesystem, path within it) for side files such as the manifest."""
    import fsspec

    opts = storage_options if storage_options is not None else (storage_options_from_env() or {})
    fs, _, paths = fsspec.get_fs_token_paths(str(path), storage_options=opts if is_url(path) else {})
    return fs, paths[0]
