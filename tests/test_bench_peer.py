"""The DSNet-style peer of ``vsum bench extract --peer``: its KTS is the cubic recipe (same cuts
as ours), its command writes an eccv16 h5, and with the same weights its features agree with
vsum's step for step."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

pytest.importorskip("cv2", reason="the peer decodes with OpenCV (opencv-python-headless)")

from jobs.bench.extract_peer import compare_h5, planted_googlenet  # noqa: E402
from jobs.bench.peer_kts import cpd_auto, peer_segments  # noqa: E402


def _shots(n: int, d: int, seed: int) -> np.ndarray:
    """float64 [n, d], L2-normalised: a few shots of distinct directions plus noise."""
    rng = np.random.default_rng(seed)
    cuts = np.sort(rng.choice(np.arange(3, n - 3), size=3, replace=False))
    shot = np.searchsorted(cuts, np.arange(n), side="right")
    x = rng.normal(size=(4, d))[shot] + 0.3 * rng.normal(size=(n, d))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize("seed", [0, 1])
def test_peer_cpd_auto_finds_the_same_cuts_as_ours(seed):
    from pipeline.kts import KTSParams, change_points_steps

    x = _shots(48, 16, seed)
    peer = cpd_auto(x @ x.T, len(x) - 1, 1.0)
    ours = change_points_steps(x, KTSParams())
    assert len(peer) >= 1
    np.testing.assert_array_equal(peer, ours)


def test_peer_segments_are_eccv16_shaped():
    x = _shots(20, 8, 3).astype(np.float32)
    cps, nfps, picks = peer_segments(x, n_frames=295, every=15)
    assert cps[0, 0] == 0 and cps[-1, 1] == 294
    np.testing.assert_array_equal(cps[1:, 0], cps[:-1, 1] + 1)
    np.testing.assert_array_equal(nfps, cps[:, 1] - cps[:, 0] + 1)
    np.testing.assert_array_equal(picks, np.arange(20) * 15)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from pipeline.synth_video import SynthVideoSpec, write_synthetic_video

    d = tmp_path_factory.mktemp("peer")
    video = d / "clip.mp4"
    write_synthetic_video(str(video), SynthVideoSpec(n_frames=46, width=192, height=108))
    return video, planted_googlenet(d / "googlenet.pth")


def test_peer_command_writes_an_eccv16_h5_and_names_a_bad_file(tiny, tmp_path):
    video, weights = tiny
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video")
    out = tmp_path / "peer.h5"
    proc = subprocess.run([sys.executable, "-m", "jobs.bench.peer_dsnet", str(video), str(bad),
                           "--weights", str(weights), "--out", str(out), "--threads", "1",
                           "--timings", str(tmp_path / "stages.json")],
                          capture_output=True, text=True, timeout=580)
    assert proc.returncode == 1, proc.stderr
    stages = json.loads((tmp_path / "stages.json").read_text())
    assert stages["cnn_s"] > 0 and stages["decode_s"] > 0 and stages["kts_s"] > 0
    assert stages["images"] == 4  # the good clip's picks; the broken file adds none
    assert stages["cnn_s"] + stages["decode_s"] + stages["kts_s"] <= stages["videos_s"]
    errors = [line for line in proc.stderr.splitlines() if "broken.mp4" in line]
    assert len(errors) == 1, proc.stderr
    with h5py.File(out, "r") as h5:
        (g,) = h5.values()
        assert g["video_name"][()].decode() == "clip"
        assert int(g["n_frames"][()]) == 46
        np.testing.assert_array_equal(g["picks"][...], [0, 15, 30, 45])
        feats = g["features"][...]
        assert feats.shape == (4, 1024)
        np.testing.assert_allclose(np.linalg.norm(feats, axis=1), 1.0, rtol=1e-5)
        cps = g["change_points"][...]
        assert cps[0, 0] == 0 and cps[-1, 1] == 45


def test_peer_features_agree_with_vsum_on_the_same_weights(tiny, tmp_path):
    """Same state dict, same picks: the peer's OpenCV + batch-1 path and vsum's swscale +
    channels_last path give the same pool5 direction at every step."""
    from jobs.bench.peer_dsnet import load_googlenet, video_features, write_video
    from jobs.extract_video import ExtractConfig, extract_one
    from pipeline.features import ExtractorOptions, build_extractors
    from stores.h5io import export_h5
    from stores.location import open_root

    video, weights = tiny
    n_frames, feats = video_features(load_googlenet(str(weights)), str(video))
    with h5py.File(tmp_path / "peer.h5", "w") as h5:
        write_video(h5, "video_0", "clip", n_frames, feats, 15)
    root = open_root(str(tmp_path / "s.zarr"), "a")
    ex = build_extractors(["googlenet"], ExtractorOptions(weights=str(weights)))
    row = extract_one(str(video), "clip", root, ex, ExtractConfig())
    assert row["status"] == "complete", row
    export_h5(str(tmp_path / "s.zarr"), str(tmp_path / "vsum.h5"), l2_normalize=True)
    agree = compare_h5(tmp_path / "vsum.h5", tmp_path / "peer.h5")
    assert agree["videos"] == 1
    assert agree["cosine_min"] >= 0.999, agree


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_bench_extract_peer_command_reports_both_sides(tmp_path):
    out = tmp_path / "extract.json"
    proc = subprocess.run([str(Path(sys.executable).parent / "vsum"), "bench", "extract", "--peer",
                           "--peer-videos", "1,2", "--peer-seconds", "1", "--workdir", str(tmp_path),
                           "--peer-backends", "eager,onnx", "--out", str(out)],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    figures = json.loads(out.read_text())["peer"]
    for n in ("1", "2"):
        r = figures[n]
        assert r["peer_s"] > 0 and r["vsum_s"] > 0
        assert r["ratio"] == pytest.approx(r["peer_s"] / r["vsum_s"])
        assert r["cosine_min"] >= 0.999 and r["onnx"]["cosine_min"] >= 0.999
        assert r["videos"] == int(n) and r["onnx"]["videos"] == int(n)
        assert 0 < r["peer_stages"]["cnn_s"] < r["peer_s"]
    assert "--backend onnx" in proc.stdout and "GoogLeNet forwards at >=" in proc.stdout


@pytest.mark.parametrize("option, value", [("--peer-videos", "0"), ("--peer-backends", "eager,tensorrt")])
def test_bench_extract_peer_refuses_a_bad_option_in_one_line(option, value, tmp_path):
    proc = subprocess.run([str(Path(sys.executable).parent / "vsum"), "bench", "extract", "--peer",
                           option, value, "--workdir", str(tmp_path)],
                          capture_output=True, text=True, timeout=580)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and option in proc.stderr
