"""The GPU data path, exercised on the CPU where it is device-independent: clips handed over
unassembled (ClipBatch) give bit-identical features to host-stacked clips; the uploader is a
zero-copy view on the CPU; --hwaccel falls back to software decoding and says why; the GPU
bench's measuring code runs, and the bench itself says "no GPU" and exits 0 here."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.decode import ClipBatch, FrameRequest, SampleRule, VideoDecoder
from pipeline.features import ExtractorOptions, build_extractors
from pipeline.features.device_input import Uploader
from pipeline.synth_video import SynthVideoSpec, write_synthetic_video


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("v") / "v.mp4"
    write_synthetic_video(str(path), SynthVideoSpec(n_frames=24, width=96, height=64, seed=4))
    return str(path)


def _clips(video: str, req: FrameRequest, rule: SampleRule, assemble: bool) -> list:
    return [p.images[req] for p in VideoDecoder(video, [req], rule, assemble_clips=assemble)]


def test_unassembled_clips_share_frames_and_stack_to_the_same_array(video):
    req = FrameRequest((32, 48), clip_len=8)
    rule = SampleRule(every=4)  # picks closer than the clip length: neighbouring clips overlap
    stacked = np.stack(_clips(video, req, rule, True))
    batch = ClipBatch.from_refs(_clips(video, req, rule, False))
    assert batch.shape == stacked.shape == (6, 8, 32, 48, 3)
    assert len(batch.frames) == 24 < 6 * 8  # each decoded frame once
    assert np.array_equal(batch.stacked(), stacked)


@pytest.mark.parametrize("name, size", [("st3d", (128, 171)), ("i3d", (224, 224))])
def test_features_from_a_clip_batch_are_bit_identical_on_cpu(video, name, size):
    torch.set_num_threads(1)
    (ext,) = build_extractors([name], ExtractorOptions(weights="random", clip_len=2, batch_size=4))
    req = FrameRequest(size, clip_len=2)
    refs = _clips(video, req, SampleRule(every=12), False)
    stacked, batch = np.stack([np.stack(r.frames) for r in refs]), ClipBatch.from_refs(refs)
    assert ext(batch).tobytes() == ext(stacked).tobytes()


def test_uploader_on_cpu_is_a_view():
    up = Uploader(torch.device("cpu"))
    x = np.arange(24, dtype=np.uint8).reshape(2, 4, 3)
    t = up.array(x)
    assert t.data_ptr() == x.__array_interface__["data"][0] and not up.on_cuda
    assert torch.equal(up.stack([x[0], x[1]]), torch.from_numpy(x))


def test_hwaccel_falls_back_to_software_and_says_why(video):
    req = FrameRequest((32, 32))
    soft = VideoDecoder(video, [req])
    hw = VideoDecoder(video, [req], hwaccel="cuda")
    a, b = [p.images[req] for p in soft], [p.images[req] for p in hw]
    assert all(np.array_equal(x, y) for x, y in zip(a, b)) and len(a) == len(b) == 2
    assert soft.info.decode == "software"
    if not torch.cuda.is_available():
        assert hw.info.decode.startswith("software (hwaccel cuda unavailable: ")
        assert hw.info.to_attrs()["decode"] == hw.info.decode


def test_gpu_bench_measures_on_any_device_and_says_no_gpu(video, tmp_path):
    from jobs.bench.extract_gpu import measure_extractor

    torch.set_num_threads(1)
    m = measure_extractor(video, "googlenet", "cpu", batch_size=8)
    assert m["steps"] == 2 and m["unit"] == "img/s" and m["rate"] > 0 and 0 < m["decode_share"]
    if torch.cuda.is_available():
        return
    out = tmp_path / "gpu.json"
    res = subprocess.run([str(Path(sys.executable).parent / "vsum"), "bench", "extract", "--device", "cuda",
                          "--out", str(out)], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert res.returncode == 0 and "no GPU on this machine" in res.stdout, res.stdout + res.stderr
    assert '"gpu": null' in out.read_text()
