"""The raw frame-shard "extractor" and the registry names of the clip/frame extractors."""

from __future__ import annotations

import numpy as np
import pytest

import pipeline.features  # noqa: F401 - importing the package registers every extractor
from pipeline.features.base import EXTRACTORS, ExtractorOptions
from pipeline.features.frames import build_frames


def test_registered_by_name():
    import pipeline.features.frames
    import pipeline.features.i3d
    import pipeline.features.st3d  # noqa: F401

    for name in ("frames", "st3d", "i3d"):
        assert name in EXTRACTORS
        assert (
            EXTRACTORS.get(name)(ExtractorOptions(weights="random", clip_len=2)).spec.name == name
        )


def test_spec_follows_frames_size():
    ext = build_frames(ExtractorOptions(frames_size=96))
    s = ext.spec
    assert (s.name, s.decode_size, s.clip_len, s.feature_shape, s.dtype) == (
        "frames",
        (96, 96),
        1,
        (96, 96, 3),
        "uint8",
    )
    attrs = s.to_attrs()
    assert attrs["decode_size"] == [96, 96] and attrs["weights"] == "none"


def test_identity_copy_detached_from_the_decoder_buffer():
    ext = build_frames(ExtractorOptions(frames_size=32))
    batch = np.random.default_rng(0).integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)
    out = ext(batch)
    assert out.dtype == np.uint8 and out.shape == (5, 32, 32, 3)
    np.testing.assert_array_equal(out, batch)
    batch[:] = 0  # the decoder reuses its ring buffer: stored rows must not change with it
    assert out.any()


def test_bad_input_is_one_clear_error():
    ext = build_frames(ExtractorOptions(frames_size=32))
    with pytest.raises(
        ValueError, match=r"frames: expected uint8 \[B, 32, 32, 3\], got \(2, 64, 64, 3\)"
    ):
        ext(np.zeros((2, 64, 64, 3), np.uint8))
    with pytest.raises(ValueError, match="expected uint8"):
        ext(np.zeros((2, 32, 32, 3), np.float32))
    with pytest.raises(ValueError, match="too small"):
        build_frames(ExtractorOptions(frames_size=4))


def test_store_bytes_per_minute_counts_chunks_of_complete_videos(tmp_path):
    """Two complete 30 s videos = 1 minute; an incomplete one is ignored; metadata excluded."""
    from jobs.bench.extract_multi import (
        _chunk_bytes,
        model_only_clips_per_s,
        store_bytes_per_minute,
    )
    from stores.location import open_root
    from stores.writer import VideoWriter

    root = open_root(str(tmp_path / "s.zarr"), "a")
    rng = np.random.default_rng(0)
    expected = 0
    for vid, complete in (("a", True), ("b", True), ("c", False)):
        w = VideoWriter(root, vid)
        w.begin({"duration_s": 30.0})
        arr = w.write("frames", rng.integers(0, 256, (20, 16, 16, 3), dtype=np.uint8))
        w.write("features/st3d", rng.standard_normal((20, 8, 2, 2)).astype(np.float16))
        if complete:
            expected += _chunk_bytes(arr)
            w.finish({})
    got = store_bytes_per_minute(str(tmp_path / "s.zarr"))
    assert set(got) == {"frames", "features/st3d"}
    assert got["frames"] == expected  # bytes per 1 minute of video
    assert (
        2 * 20 * 16 * 16 * 3 * 0.5 < expected < 2 * 20 * 16 * 16 * 3 * 1.2
    )  # random: ~incompressible

    rate = model_only_clips_per_s(build_frames(ExtractorOptions(frames_size=16)), 4)
    assert np.isfinite(rate) and rate > 0
