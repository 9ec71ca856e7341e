"""``vsum store export-h5`` of a mixed store (issue 14, item 6): annotated videos that carry
their dataset's ``eccv16_key`` plus unannotated clips, as the demo store holds. Keys are unique,
the key -> video id mapping is written beside the file, and a reader written to the eccv16
schema (as the public codebases read it) finds every labelled group."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np

from stores import layout
from stores.h5io import eccv16_keys, import_h5, keys_path
from stores.location import open_root
from stores.reader import FeatureStore
from stores.writer import VideoWriter

VSUM = str(Path(sys.executable).parent / "vsum")
ECCV16_DATASETS = ("features", "gtscore", "user_summary", "change_points", "n_frame_per_seg",
                   "n_frames", "picks")


def _video(root, vid: str, key: str | None, labelled: bool, seed: int) -> None:
    rng = np.random.default_rng(seed)
    T, n_frames = 12, 12 * 15
    w = VideoWriter(root, vid)
    w.begin({"source": f"{vid}.mp4", **({"eccv16_key": key} if key else {})})
    w.write(layout.PICKS, np.arange(T, dtype=np.int32) * 15)
    w.write(layout.feature_path("googlenet"), rng.standard_normal((T, 8)).astype(np.float32))
    cps = np.array([[0, 89], [90, n_frames - 1]], np.int32)
    w.write(layout.CHANGE_POINTS, cps)
    w.write(layout.N_FRAME_PER_SEG, (cps[:, 1] - cps[:, 0] + 1).astype(np.int32))
    if labelled:
        w.write(layout.GTSCORE, rng.random(T).astype(np.float32))
        w.write(layout.USER_SUMMARY, (rng.random((3, n_frames)) > 0.8).astype(np.uint8))
    w.finish({"n_frames": n_frames, "n_steps": T, "fps": 30.0})


def _mixed_store(path: Path) -> dict[str, str | None]:
    """video id -> recorded eccv16 key: the demo's mix, where the unannotated clips sort
    between annotated ones (bigbuckbunny came out as a second ``video_1``)."""
    recorded = {"bigbuckbunny": None, "synth_01": "video_1", "synth_02": "video_2",
                "synth_03": "video_3", "zclip": None, "aclip": None}
    root = open_root(str(path), "a")
    for i, (vid, key) in enumerate(sorted(recorded.items())):
        _video(root, vid, key, labelled=key is not None, seed=i)
    return recorded


def _eccv16_reader(h5_path: Path, keys: list[str]) -> dict[str, dict]:
    """Reads groups the way public summarization code does (h5[key][name][...])."""
    out = {}
    with h5py.File(h5_path, "r") as h5:
        for key in keys:
            g = h5[key]
            out[key] = {name: g[name][...] for name in ECCV16_DATASETS}
            out[key]["video_name"] = g["video_name"][()].decode()
    return out


def test_keys_keep_recorded_ones_and_number_the_rest_after_them():
    keys = eccv16_keys({"a": None, "b": "video_1", "c": "video_5", "d": None, "e": "video_5"})
    assert keys == {"b": "video_1", "c": "video_5", "a": "video_6", "d": "video_7", "e": "video_8"}
    assert eccv16_keys({"x": None, "y": None}) == {"x": "video_1", "y": "video_2"}


def test_export_of_a_mixed_store_through_the_cli(tmp_path):
    store, out = tmp_path / "demo.zarr", tmp_path / "demo.h5"
    recorded = _mixed_store(store)
    proc = subprocess.run([VSUM, "store", "export-h5", str(store), str(out)], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "demo.keys.json" in proc.stdout
    mapping = json.loads(keys_path(out).read_text())
    with h5py.File(out, "r") as h5:
        assert sorted(h5.keys()) == sorted(mapping)
    assert sorted(mapping.values()) == sorted(recorded)  # every video once, keys unique
    for vid, key in recorded.items():
        if key:
            assert mapping[key] == vid  # split files' keys still name the same videos
    labelled = [k for k, v in mapping.items() if recorded[v]]
    groups = _eccv16_reader(out, labelled)
    fs = FeatureStore(str(store))
    for key, g in groups.items():
        vid = mapping[key]
        assert g["video_name"] == vid
        np.testing.assert_array_equal(g["features"], fs.features(vid))
        np.testing.assert_array_equal(g["user_summary"], fs.load(vid, layout.USER_SUMMARY))
        assert int(g["n_frames"]) == 180 and g["change_points"].shape == (2, 2)
    # and back: every group imports, the recorded keys with them
    back = import_h5(str(out), str(tmp_path / "back.zarr"))
    assert sorted(back.ids) == sorted(recorded) and back.failed == []
    fs2 = FeatureStore(str(tmp_path / "back.zarr"))
    assert {v: fs2.attrs(v)["eccv16_key"] for v in fs2.video_ids()} == \
        {v: k for k, v in mapping.items()}
