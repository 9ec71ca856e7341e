"""Shared by the extraction fault, S3 and cluster tests: tiny real videos, cheap CLI settings,
and the expected arrays computed by ``extract_one`` in this process, without Ray."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.synth_video import SynthVideoSpec, write_synthetic_video
from stores.reader import FeatureStore

# the cheapest extractor (raw 16×16 frames at the picks), no KTS: tests time the job, not models
CHEAP = ["--features", "frames", "--frames", "16", "--no-kts", "--device", "cpu", "--batch-size", "2"]
ARRAYS = ("picks", "frames")


def make_videos(folder: Path, names: list[str], n_frames: int = 40) -> list[str]:
    """64×48 H.264 videos of n_frames + 5·i frames (3+ picks each)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, name in enumerate(names):
        path = folder / f"{name}.mp4"
        write_synthetic_video(str(path), SynthVideoSpec(n_frames=n_frames + 5 * i, width=64, height=48, seed=i))
        paths.append(str(path))
    return paths


def parse(argv: list[str]):
    from jobs.cli import build_parser

    return build_parser().parse_args(argv)


def cheap_configs(extra: list[str] | None = None):
    """(ExtractConfig, ExtractorOptions) of the CHEAP settings."""
    from jobs.extract import configs_from_args

    return configs_from_args(parse(["extract", "x.mp4", "--store", "unused.zarr", *CHEAP, *(extra or [])]))


def reference_store(paths: list[str], store: Path) -> FeatureStore:
    """The same videos through ``extract_one`` in this process (no Ray): the expected arrays."""
    from jobs.extract_video import extract_one
    from pipeline.features import build_extractors
    from stores.ids import unique_video_ids
    from stores.location import open_root

    cfg, opts = cheap_configs()
    root = open_root(str(store), "a")
    extractors = build_extractors(list(cfg.features), opts)
    for src, vid in unique_video_ids(paths).items():
        assert extract_one(src, vid, root, extractors, cfg)["status"] == "complete"
    return FeatureStore(str(store))


def assert_same_arrays(got: FeatureStore, want: FeatureStore) -> None:
    assert got.video_ids() == want.video_ids()
    for vid in want.video_ids():
        assert got.attrs(vid)["n_frames"] == want.attrs(vid)["n_frames"]
        for name in ARRAYS:
            np.testing.assert_array_equal(got.load(vid, name), want.load(vid, name), err_msg=f"{vid}/{name}")
