"""Store contract: round trip, incomplete groups invisible, check catches damage, h5 interop."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from stores import layout
from stores.check import check_store
from stores.h5io import export_h5, import_h5
from stores.ids import unique_video_ids, video_id_for
from stores.location import open_root
from stores.manifest import Manifest, read_manifest
from stores.reader import FeatureStore
from stores.writer import VideoWriter


def _write_video(root, vid, T=37, n_frames=None, complete=True, rng=None):
    rng = rng or np.random.default_rng(0)
    n_frames = n_frames or T * 15 - 3
    w = VideoWriter(root, vid)
    w.begin({"source": f"{vid}.mp4"})
    picks = w.appender(layout.PICKS, (), np.int32)
    feats = w.appender(layout.feature_path("googlenet"), (1024,), np.float32, chunk_rows=8)
    data = rng.standard_normal((T, 1024)).astype(np.float32)
    for i in range(0, T, 5):  # streaming appends of uneven batches
        picks.append(np.arange(i, min(i + 5, T), dtype=np.int32) * 15)
        feats.append(data[i : i + 5])
    assert picks.close() == T and feats.close() == T
    bounds = np.linspace(0, n_frames, 5).astype(int)
    cps = np.stack([bounds[:-1], bounds[1:] - 1], axis=1).astype(np.int32)
    w.write(layout.CHANGE_POINTS, cps)
    w.write(layout.N_FRAME_PER_SEG, (cps[:, 1] - cps[:, 0] + 1).astype(np.int32))
    w.write(layout.GTSCORE, rng.random(T).astype(np.float32))
    w.write(layout.USER_SUMMARY, (rng.random((3, n_frames)) > 0.8).astype(np.uint8))
    if complete:
        w.finish({"n_frames": n_frames, "n_steps": T, "fps": 30.0, "duration_s": n_frames / 30})
    return data


def test_round_trip_and_incomplete_invisible(tmp_path):
    path = str(tmp_path / "s.zarr")
    root = open_root(path, "a")
    data = _write_video(root, "a")
    _write_video(root, "b", complete=False)  # a writer that "died"
    fs = FeatureStore(path)
    assert fs.video_ids() == ["a"] and fs.all_video_ids() == ["a", "b"]
    np.testing.assert_array_equal(fs.features("a"), data)
    assert fs.array("a", "features/googlenet").chunks == (8, 1024)
    norm = fs.features("a", l2_normalize=True)
    np.testing.assert_allclose(np.linalg.norm(norm, axis=1), 1.0, rtol=1e-5)
    assert fs.root.attrs["vsum_schema"] == layout.SCHEMA_VERSION
    # a rerun rewrites the leftover group from scratch
    _write_video(root, "b", T=5)
    assert FeatureStore(path).video_ids() == ["a", "b"]
    assert FeatureStore(path).load("b", layout.PICKS).shape == (5,)


def test_check_passes_then_catches_damage(tmp_path):
    path = str(tmp_path / "s.zarr")
    root = open_root(path, "a")
    _write_video(root, "ok")
    _write_video(root, "gone")
    _write_video(root, "trunc")
    _write_video(root, "nan")
    assert check_store(path) == []
    chunk_dir = Path(path) / "videos" / "gone" / "features" / "googlenet" / "c"
    victim = sorted(p for p in chunk_dir.rglob("*") if p.is_file())[1]
    os.remove(victim)
    tchunk = sorted(p for p in (Path(path) / "videos" / "trunc" / "picks" / "c").rglob("*") if p.is_file())[0]
    tchunk.write_bytes(tchunk.read_bytes()[:7])
    arr = open_root(path, "a")["videos/nan/features/googlenet"]
    arr[3, 5] = np.nan
    problems = {(p.video_id, p.array): p.reason for p in check_store(path)}
    assert set(problems) == {("gone", "features/googlenet"), ("trunc", "picks"), ("nan", "features/googlenet")}
    assert "chunks missing" in problems[("gone", "features/googlenet")]
    assert "unreadable" in problems[("trunc", "picks")]
    assert "NaN" in problems[("nan", "features/googlenet")]


def test_check_catches_bad_segments_and_picks(tmp_path):
    path = str(tmp_path / "s.zarr")
    root = open_root(path, "a")
    _write_video(root, "gap")
    g = root["videos/gap"]
    cps = g["segments/change_points"][...]
    cps[1, 0] += 2
    g["segments/change_points"][...] = cps
    _write_video(root, "picks")
    p = root["videos/picks/picks"]
    p[4] = p[3]
    problems = {(x.video_id, x.array) for x in check_store(path)}
    assert problems == {("gap", "segments/change_points"), ("picks", "picks")}


def test_h5_round_trip(tmp_path):
    path = str(tmp_path / "s.zarr")
    root = open_root(path, "a")
    data = _write_video(root, "Air_Force_One")
    root["videos/Air_Force_One"].attrs["eccv16_key"] = "video_1"
    out = str(tmp_path / "eccv16.h5")
    assert export_h5(path, out) == ["video_1"]
    import h5py

    with h5py.File(out) as h5:
        g = h5["video_1"]
        assert set(g) == {"features", "gtscore", "user_summary", "change_points", "n_frame_per_seg",
                          "n_frames", "picks", "n_steps", "gtsummary", "video_name"}
        assert g["features"].shape == (37, 1024) and int(g["n_steps"][()]) == 37
    path2 = str(tmp_path / "back.zarr")
    assert import_h5(out, path2, dataset="summe").ids == ["Air_Force_One"]
    fs = FeatureStore(path2)
    np.testing.assert_array_equal(fs.features("Air_Force_One"), data)
    src = FeatureStore(path)
    for arr in (layout.PICKS, layout.CHANGE_POINTS, layout.N_FRAME_PER_SEG, layout.GTSCORE, layout.USER_SUMMARY):
        np.testing.assert_array_equal(fs.load("Air_Force_One", arr), src.load("Air_Force_One", arr))
    assert fs.attrs("Air_Force_One")["eccv16_key"] == "video_1"
    assert check_store(path2) == []


def test_manifest_one_row_per_video(tmp_path):
    path = str(tmp_path / "s.zarr")
    open_root(path, "a")
    m = Manifest(path)
    m.update({"video_id": "a", "status": "failed", "error": "x"})
    m.update({"video_id": "a", "status": "complete", "error": ""})
    m.update({"video_id": "b", "status": "failed", "error": "b.mp4: empty file"})
    m.save()
    df = read_manifest(path)
    assert sorted(df["video_id"]) == ["a", "b"]
    assert df.set_index("video_id").loc["a", "status"] == "complete"


def test_video_ids_unique_and_stable():
    assert video_id_for("SumMe/Air Force One.mp4") == "Air_Force_One"
    assert video_id_for("-esJrBWj2d8.mp4") == "-esJrBWj2d8"
    srcs = ["a/clip.mp4", "b/clip.mp4", "c/other.mp4"]
    ids = unique_video_ids(srcs)
    assert len(set(ids.values())) == 3 and ids["c/other.mp4"] == "other"
    assert unique_video_ids(list(reversed(srcs))) == ids


@pytest.mark.parametrize("T", [0, 1])
def test_tiny_arrays(tmp_path, T):
    path = str(tmp_path / "s.zarr")
    root = open_root(path, "a")
    w = VideoWriter(root, "t")
    w.begin({})
    a = w.appender(layout.PICKS, (), np.int32)
    if T:
        a.append(np.zeros(1, np.int32))
    assert a.close() == T
    w.finish({"n_frames": 1, "n_steps": T})
    assert FeatureStore(path).load("t", layout.PICKS).shape == (T,)
