"""pipeline/decode.py on real encoded videos made with PyAV."""
from __future__ import annotations

import av
import numpy as np
import pytest

from pipeline.decode import DecodeError, FrameRequest, SampleRule, VideoDecoder, iter_pick_batches
from pipeline.synth_video import SynthVideoSpec, shot_frame, write_synthetic_video


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    d = tmp_path_factory.mktemp("videos")
    paths = {
        "plain": d / "plain.mp4",
        "rot": d / "rot.mp4",
        "vfr": d / "vfr.mkv",
        "one": d / "one.mp4",
    }
    write_synthetic_video(str(paths["plain"]), SynthVideoSpec(n_frames=95, width=64, height=48))
    write_synthetic_video(str(paths["rot"]), SynthVideoSpec(n_frames=20, width=64, height=32, rotation=90))
    write_synthetic_video(str(paths["vfr"]), SynthVideoSpec(n_frames=60, width=32, height=32, vfr=True))
    write_synthetic_video(str(paths["one"]), SynthVideoSpec(n_frames=1, width=32, height=32))
    return paths


def test_every_n_picks_and_counts(videos):
    req = FrameRequest((24, 32))
    dec = VideoDecoder(str(videos["plain"]), [req], SampleRule(every=15))
    picks = list(dec)
    assert [p.frame_index for p in picks] == list(range(0, 95, 15))
    assert [p.step for p in picks] == list(range(7))
    assert dec.info.n_frames == 95 == dec.info.n_frames_container
    assert picks[0].images[req].shape == (24, 32, 3) and picks[0].images[req].dtype == np.uint8


def test_pick_frame_content_matches_source(videos):
    """The frame delivered at a pick is that decoded frame (not a neighbour)."""
    req = FrameRequest((48, 64))
    picks = list(VideoDecoder(str(videos["plain"]), [req], SampleRule(every=15)))
    cuts = SynthVideoSpec(n_frames=95, width=64, height=48).cuts()
    for p in picks:
        shot = int(np.searchsorted(cuts, p.frame_index, side="right") - 1)
        ref = shot_frame(shot, p.frame_index - cuts[shot], 48, 64, 0).astype(float)
        err = np.abs(p.images[req].astype(float) - ref).mean()
        assert err < 20, (p.frame_index, err)  # lossy H.264 + yuv420: small, not zero


def test_clips_centred_with_edge_replication(videos):
    r2, r3 = FrameRequest((16, 16)), FrameRequest((16, 16), clip_len=16)
    dec = VideoDecoder(str(videos["plain"]), [r2, r3], SampleRule(every=15))
    picks = list(dec)
    assert len(picks) == 7
    for p in picks:
        clip = p.images[r3]
        assert clip.shape == (16, 16, 16, 3)
        # clip position L//2 is the pick frame itself
        np.testing.assert_array_equal(clip[8], p.images[r2])
    # first pick: frames -8..-1 replicate frame 0
    first = picks[0].images[r3]
    for j in range(9):
        np.testing.assert_array_equal(first[j], first[8])
    # last pick (frame 90): frames 95..97 do not exist -> replicate frame 94 (clip index 12)
    last = picks[-1].images[r3]
    for j in range(13, 16):
        np.testing.assert_array_equal(last[j], last[12])
    assert not np.array_equal(last[11], last[12])


def test_rotation_metadata_applied(videos):
    req = FrameRequest((64, 32))  # displayed size of a 64x32 video rotated by 90 degrees
    dec = VideoDecoder(str(videos["rot"]), [req], SampleRule(every=15))
    picks = list(dec)
    assert dec.info.rotation == 90
    img = picks[0].images[req]
    assert img.shape == (64, 32, 3)
    ref = np.rot90(shot_frame(0, 0, 32, 64, 0), k=1).astype(float)
    assert np.abs(img.astype(float) - ref).mean() < 20


def test_fps_sampling_uses_timestamps_on_vfr(videos):
    req = FrameRequest((16, 16))
    dec = VideoDecoder(str(videos["vfr"]), [req], SampleRule(every=None, fps=2.0))
    picks = list(dec)
    with av.open(str(videos["vfr"])) as c:
        all_times = [f.time for f in c.decode(video=0)]
    # reference: the first frame of every 0.5 s bucket of presentation time that has a frame
    buckets = [int(t / 0.5 + 1e-9) for t in all_times]
    expected = [i for i, b in enumerate(buckets) if i == 0 or b != buckets[i - 1]]
    assert [p.frame_index for p in picks] == expected
    assert len(set(buckets)) == len(picks)
    # a frame-index rule would give a different set on VFR content
    every = [p.frame_index for p in VideoDecoder(str(videos["vfr"]), [req], SampleRule(every=15))]
    assert [p.frame_index for p in picks] != every


def test_one_frame_video(videos):
    r2, r3 = FrameRequest((8, 8)), FrameRequest((8, 8), clip_len=4)
    dec = VideoDecoder(str(videos["one"]), [r2, r3])
    picks = list(dec)
    assert len(picks) == 1 and dec.info.n_frames == 1
    assert picks[0].images[r3].shape == (4, 8, 8, 3)


def test_bad_inputs_raise_one_line(tmp_path, videos):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(np.random.default_rng(0).bytes(4000))
    audio = tmp_path / "audio.m4a"
    with av.open(str(audio), "w") as out:
        s = out.add_stream("aac", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 8000
        for _ in range(5):
            for pkt in s.encode(frame):
                out.mux(pkt)
        for pkt in s.encode():
            out.mux(pkt)
    cases = {tmp_path / "missing.mp4": "not found", empty: "empty", junk: "cannot open",
             audio: "no video stream"}
    for path, reason in cases.items():
        with pytest.raises(DecodeError) as e:
            list(VideoDecoder(str(path), [FrameRequest((8, 8))]))
        msg = str(e.value)
        assert str(path) in msg and reason in msg and "\n" not in msg


def test_truncated_mid_stream_fails_inside_loop(tmp_path, videos):
    """Index at the front (faststart), data cut in half: open succeeds, decoding fails."""
    src = tmp_path / "full.mp4"
    write_synthetic_video(str(src), SynthVideoSpec(n_frames=200, width=64, height=48))
    fast = tmp_path / "fast.mp4"
    with av.open(str(src)) as i, av.open(str(fast), "w", options={"movflags": "faststart"}) as o:
        s = o.add_stream_from_template(i.streams.video[0])
        for pkt in i.demux(i.streams.video[0]):
            if pkt.dts is not None:
                pkt.stream = s
                o.mux(pkt)
    data = fast.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    dec = VideoDecoder(str(cut), [FrameRequest((8, 8))])
    got = []
    with pytest.raises(DecodeError, match="decode failed at frame"):
        for p in dec:
            got.append(p)
    assert got, "open succeeded and some picks came out before the failure"


def test_threaded_batches_equal_unthreaded(videos):
    req = FrameRequest((16, 16))
    a = [[p.frame_index for p in b] for b in iter_pick_batches(
        VideoDecoder(str(videos["plain"]), [req]), 3, threaded=True)]
    b = [[p.frame_index for p in b] for b in iter_pick_batches(
        VideoDecoder(str(videos["plain"]), [req]), 3, threaded=False)]
    assert a == b == [[0, 15, 30], [45, 60, 75], [90]]
