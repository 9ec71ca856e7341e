"""The frame-window data path: chunk-aligned windows, padding/masks, stride, 0 vs 2 workers."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from stores import layout
from stores.frame_windows import (
    LoaderOptions,
    iter_video_windows,
    list_windows,
    make_frame_loader,
    video_windows,
    window_span,
)
from stores.reader import FeatureStore
from stores.synthetic_frames import SyntheticFramesConfig, make_synthetic_frame_store


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> FeatureStore:
    path = tmp_path_factory.mktemp("fw") / "synth.zarr"
    make_synthetic_frame_store(str(path), SyntheticFramesConfig(n_videos=5, min_steps=20,
                                                                max_steps=70, size=16, seed=3))
    return FeatureStore(str(path))


def test_synthetic_store_follows_the_contract(store):
    ids = store.video_ids()
    assert len(ids) == 5
    for vid in ids:
        frames, gt = store.array(vid, layout.FRAMES), store.load(vid, layout.GTSCORE)
        assert frames.dtype == np.uint8 and frames.shape[1:] == (16, 16, 3)
        assert frames.chunks[0] == 16
        assert len(gt) == frames.shape[0] == len(store.load(vid, layout.PICKS))
        assert gt.max() > 0.7 and gt.min() < 0.3  # both kinds of shot present
        cps = store.load(vid, layout.CHANGE_POINTS)
        assert cps[0, 0] == 0 and cps[-1, 1] == store.attrs(vid)["n_frames"] - 1
        assert store.load(vid, layout.USER_SUMMARY).shape[1] == store.attrs(vid)["n_frames"]
        # content decides importance: red-dominant pixels only on important steps
        x = frames[...].astype(np.int16)
        red = ((x[..., 0] > 200) & (x[..., 1] < 80)).mean(axis=(1, 2))
        assert red[gt > 0.5].min() > 0.02 and red[gt < 0.5].max() < 0.01


def test_windows_are_chunk_aligned_and_cover_the_video():
    assert window_span(16, 20, 1) == 32
    assert window_span(16, 64, 3) == 192  # lcm(16, 3) = 48 → 4 units
    w = video_windows("v", 100, 16, 20, 1)
    assert [(i.raw_start, i.raw_stop) for i in w] == [(0, 32), (32, 64), (64, 96), (96, 100)]
    assert all(i.raw_start % 16 == 0 for i in w)
    w3 = video_windows("v", 100, 16, 16, 3)  # span 48, phase kept: starts are multiples of 3
    assert [(i.raw_start, i.step_start) for i in w3] == [(0, 0), (48, 16), (96, 32)]
    assert video_windows("v", 50, 16, None)[0].raw_stop == 50  # no windows: whole video


def test_batches_pad_and_mask(store):
    opts = LoaderOptions(window_steps=32, batch_videos=3, num_workers=0, shuffle=False)
    batches = list(make_frame_loader(store, store.video_ids(), opts))
    items = list_windows(store, store.video_ids(), opts)
    assert sum(len(b["video_id"]) for b in batches) == len(items)
    for b in batches:
        B, T = b["mask"].shape
        assert b["x"].dtype == torch.uint8 and b["x"].shape == (B, T, 16, 16, 3)
        lengths = b["mask"].sum(1)
        assert lengths.max() == T and (lengths <= 32).all()
        for i in range(B):  # contents match the store, padding is zero
            n, s, vid = int(lengths[i]), b["start"][i], b["video_id"][i]
            ref = store.array(vid, layout.FRAMES)[s : s + n]
            assert np.array_equal(b["x"][i, :n].numpy(), ref)
            assert np.allclose(b["gtscore"][i, :n].numpy(), store.load(vid, layout.GTSCORE)[s : s + n])
            assert not b["x"][i, n:].any() and not b["gtscore"][i, n:].any()


def test_pick_stride_keeps_every_kth_pick(store):
    vid = store.video_ids()[0]
    n = store.array(vid, layout.FRAMES).shape[0]
    parts = list(iter_video_windows(store, vid, window_steps=8, pick_stride=3))
    got = np.concatenate([x for _, x in parts])
    assert np.array_equal(got, store.array(vid, layout.FRAMES)[0:n:3])
    assert [s for s, _ in parts] == list(range(0, len(got), 16))  # span 48 raw = 16 kept


def test_identical_batches_with_0_and_2_workers(store):
    def epochs(workers: int):
        opts = LoaderOptions(window_steps=16, batch_videos=4, num_workers=workers, shuffle=True,
                             seed=7, pick_stride=2)
        loader = make_frame_loader(store, store.video_ids(), opts)
        return [list(loader) for _ in range(2)]  # two epochs: reshuffled, still identical

    a, b = epochs(0), epochs(2)
    assert [x["video_id"] for x in a[0]] != [x["video_id"] for x in a[1]]  # epochs differ
    for ea, eb in zip(a, b):
        assert len(ea) == len(eb)
        for x, y in zip(ea, eb):
            assert x["video_id"] == y["video_id"] and x["start"] == y["start"]
            for k in ("x", "mask", "gtscore"):
                assert torch.equal(x[k], y[k])


def test_missing_frames_is_one_clear_error(tmp_path):
    from stores.location import open_root
    from stores.writer import VideoWriter

    root = open_root(str(tmp_path / "s.zarr"), "a")
    w = VideoWriter(root, "nof")
    w.begin({"n_frames": 30})
    w.write(layout.PICKS, np.arange(2, dtype=np.int32))
    w.finish({})
    with pytest.raises(ValueError, match="nof has no 'frames'"):
        list_windows(FeatureStore(str(tmp_path / "s.zarr")), ["nof"], LoaderOptions())
