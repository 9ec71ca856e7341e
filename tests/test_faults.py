"""Fault injection on the extraction job (real Ray, real PyAV, real Zarr; no mocks).

A worker dies mid-video; a driver is SIGKILLed mid-run while a second job tries the same store;
chunk files of complete videos are deleted or truncated; a corpus of bad inputs. In every case:
no lost or duplicated video, one final manifest row per video, exit codes tell success from
partial failure. Cheap settings: the ``frames`` extractor at 16×16, no KTS, 40-frame 64×48 videos.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import psutil
import pytest
from extract_helpers import (
    ARRAYS,
    CHEAP,
    assert_same_arrays,
    cheap_configs,
    make_videos,
    reference_store,
)

from jobs.cli import main as vsum
from pipeline.synth_video import SynthVideoSpec, write_synthetic_video
from stores.lock import LOCK_NAME, StoreLock, StoreLocked
from stores.manifest import read_manifest
from stores.reader import FeatureStore


def assert_one_final_row_each(store: Path, ids: list[str]) -> None:
    man = read_manifest(str(store))
    assert sorted(man["video_id"]) == sorted(ids)  # one row per video, none duplicated or lost
    assert set(man["status"]) == {"complete"}
    fs = FeatureStore(str(store))
    assert fs.all_video_ids() == fs.video_ids() == sorted(ids)  # no leftover incomplete group


def manifest_files(store: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((store / "manifest").iterdir())}


def _pid_of(worker: str) -> int:
    return int(worker.rsplit(":", 1)[1])


@pytest.mark.timeout(240)
def test_worker_dies_mid_video_is_retried_on_a_new_worker(ray_session, tmp_path, monkeypatch):
    paths = make_videos(tmp_path / "in", ["a", "b", "c"])
    store = tmp_path / "s.zarr"
    monkeypatch.setenv("VSUM_FAULT_EXIT_ON", "b")  # the worker os._exit()s inside b, once
    monkeypatch.setenv("VSUM_FAULT_DIR", str(tmp_path))
    assert vsum(["extract", *paths, "--store", str(store), "--workers", "1", *CHEAP]) == 0

    dead_pid = int((tmp_path / "b.exited").read_text())
    assert not psutil.pid_exists(dead_pid)
    man = read_manifest(str(store)).set_index("video_id")
    assert _pid_of(man.loc["b", "worker"]) != dead_pid  # b completed in a restarted process
    assert_one_final_row_each(store, ["a", "b", "c"])
    assert_same_arrays(FeatureStore(str(store)), reference_store(paths, tmp_path / "ref.zarr"))


@pytest.mark.timeout(240)
def test_worker_killing_video_fails_alone_and_the_job_goes_on(ray_session, tmp_path, monkeypatch):
    from jobs.extract import run_extraction

    paths = make_videos(tmp_path / "in", ["a", "poison", "c"])
    store = tmp_path / "s.zarr"
    monkeypatch.setenv("VSUM_FAULT_EXIT_ON", "poison")  # no VSUM_FAULT_DIR: exits every attempt
    cfg, opts = cheap_configs()
    res = run_extraction(paths, str(store), cfg, opts, workers=1, max_attempts=1, progress=False)

    assert res.exit_code == 1 and res.n_failed == 1 and res.n_done == 2
    man = read_manifest(str(store)).set_index("video_id")
    assert man.loc["poison", "status"] == "failed"
    assert "poison.mp4: worker crashed" in man.loc["poison", "error"]
    assert (man.loc[["a", "c"], "status"] == "complete").all()  # done by the replacement actor
    fs = FeatureStore(str(store))
    assert fs.all_video_ids() == ["a", "c"]  # the partial group of the crashed video is removed


def _wait_for(cond, timeout_s: float, what: str, proc: subprocess.Popen | None = None):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        if cond():
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"driver exited with {proc.returncode} before {what}:\n"
                                 f"{proc.stderr.read().decode()[-3000:]}")
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def _manifest_complete(store: Path) -> int:
    try:
        return int((read_manifest(str(store))["status"] == "complete").sum())
    except Exception:  # noqa: BLE001 - mid-write or absent: not yet
        return 0


@pytest.mark.timeout(300)
def test_killed_driver_concurrent_job_refused_rerun_completes(ray_session, tmp_path, capsys):
    """Job A (a `vsum extract` subprocess on the shared Ray) hangs in one video; job B on the
    same store refuses (exit 3, clear message); A is SIGKILLed mid-run; a rerun completes with
    one row per video and the arrays of an uninterrupted run."""
    names = ["v0", "v1", "v2", "v3", "v4", "v5"]
    paths = make_videos(tmp_path / "in", names)
    store = tmp_path / "s.zarr"
    env = {**os.environ, "RAY_ADDRESS": ray_session.get_runtime_context().gcs_address,
           "VSUM_FAULT_HANG_ON": "v3"}
    cmd = [str(Path(sys.executable).parent / "vsum"), "extract", *paths, "--store", str(store),
           "--workers", "2", *CHEAP]
    job_a = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _wait_for(lambda: _manifest_complete(store) == 5, 180, "5 videos done and saved", job_a)
        # Job B, started while A runs: refuses, touches nothing.
        before = manifest_files(store)
        assert vsum(["extract", *paths, "--store", str(store), "--workers", "1", *CHEAP]) == 3
        err = capsys.readouterr().err
        assert "store is in use by vsum extract" in err and f"pid {job_a.pid}" in err
        assert manifest_files(store) == before
    finally:
        job_a.send_signal(signal.SIGKILL)
        job_a.wait(30)

    fs = FeatureStore(str(store))
    assert "v3" in fs.all_video_ids() and "v3" not in fs.video_ids()  # killed mid-video
    assert (store / LOCK_NAME).exists()  # the dead driver's lease is left behind...
    from jobs.extract import run_extraction

    cfg, opts = cheap_configs()
    res = run_extraction(paths, str(store), cfg, opts, workers=1, progress=False)  # ...and taken over
    assert res.exit_code == 0
    assert [r["video_id"] for r in res.rows] == ["v3"] and res.n_skipped == 5  # no work redone
    assert not (store / LOCK_NAME).exists()
    assert_one_final_row_each(store, names)
    assert_same_arrays(FeatureStore(str(store)), reference_store(paths, tmp_path / "ref.zarr"))


# A `vsum extract` driver whose first row save stops between writing the part's temporary file
# and putting it in place (test instrumentation, in this script only), so it can be killed there.
DRIVER_PAUSED_IN_MANIFEST_WRITE = r"""
import os, sys, time
import stores.manifest_parts as parts
state = {"kind": None}
write, link = parts.PartStore.write, os.link

def write_part(self, seq, kind, *a, **k):
    state["kind"] = kind
    return write(self, seq, kind, *a, **k)

def link_part(src, dst):
    if state["kind"] == "rows" and dst.endswith(".parquet"):
        open(os.environ["VSUM_TEST_PAUSED"], "w").close()
        time.sleep(3600)
    return link(src, dst)

parts.PartStore.write, os.link = write_part, link_part
from jobs.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.timeout(300)
def test_driver_killed_during_a_manifest_write_loses_and_duplicates_nothing(ray_session, tmp_path):
    """The driver is SIGKILLed in the middle of saving rows to the manifest: the manifest stays
    readable (whole parts only), readers see the store as open and scan it, and the rerun ends
    with one row per video, the index current again and the arrays of an uninterrupted run."""
    from jobs.extract import run_extraction
    from stores.index import GroupReader, load_index

    names = ["w0", "w1", "w2", "w3"]
    paths = make_videos(tmp_path / "in", names)
    store = tmp_path / "s.zarr"
    script = tmp_path / "driver.py"
    script.write_text(DRIVER_PAUSED_IN_MANIFEST_WRITE)
    paused = tmp_path / "paused"
    # w3 hangs, so the job is still running when its periodic save (every 2 s) comes
    env = {**os.environ, "RAY_ADDRESS": ray_session.get_runtime_context().gcs_address,
           "VSUM_TEST_PAUSED": str(paused), "VSUM_FAULT_HANG_ON": "w3"}
    driver = subprocess.Popen([sys.executable, str(script), "extract", *paths, "--store", str(store),
                               "--workers", "2", *CHEAP], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
    try:
        _wait_for(paused.exists, 180, "the driver's first manifest save", driver)
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait(30)

    assert list((store / "manifest").glob("*.tmp"))  # the part it was writing: never in place
    man = read_manifest(str(store))
    assert man["video_id"].is_unique and set(man["video_id"]) <= set(names)
    assert load_index(str(store), quiet=True).source == "scan"  # the driver never closed

    cfg, opts = cheap_configs()
    res = run_extraction(paths, str(store), cfg, opts, workers=1, progress=False)
    assert res.exit_code == 0 and "w3" in [r["video_id"] for r in res.rows]
    assert res.n_done + res.n_skipped == len(names)
    assert_one_final_row_each(store, names)
    ix = load_index(str(store))
    reader = GroupReader(str(store))
    assert ix.source == "index" and ix.entries == reader.describe(reader.names())
    assert_same_arrays(FeatureStore(str(store)), reference_store(paths, tmp_path / "ref.zarr"))


def _race_for_lock(store: str, barrier, results) -> None:
    barrier.wait()
    try:
        lock = StoreLock(store, command="racer").acquire()
        results.put("won")
        time.sleep(1.0)  # hold it while the others try
        lock.release()
    except StoreLocked:
        results.put("refused")


@pytest.mark.timeout(120)
def test_jobs_started_at_the_same_instant_get_one_lease(tmp_path):
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(4), ctx.Queue()
    procs = [ctx.Process(target=_race_for_lock, args=(str(tmp_path / "s.zarr"), barrier, results))
             for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    outcomes = sorted(results.get(timeout=5) for _ in procs)
    assert outcomes == ["refused", "refused", "refused", "won"]
    assert not (tmp_path / "s.zarr" / LOCK_NAME).exists()


def test_stale_lease_is_taken_over_and_the_loser_notices(tmp_path):
    store = str(tmp_path / "s.zarr")
    first = StoreLock(store, ttl_s=0.5, command="first").acquire()
    first._stop.set()  # a stalled holder: no more heartbeats
    with pytest.raises(StoreLocked, match="store is in use by first"):
        StoreLock(store, ttl_s=30).acquire()
    time.sleep(0.8)
    second = StoreLock(store, ttl_s=30, command="second").acquire()  # expired: taken over
    first.heartbeat()
    assert first.lost  # the stalled job learns it must stop
    first.release()  # and does not delete the new holder's lease
    assert second.read()["command"] == "second"
    second.release()
    assert second.read() is None


@pytest.mark.timeout(240)
def test_damaged_chunks_are_named_and_repair_recomputes_only_those_videos(ray_session, tmp_path, capsys):
    from jobs.extract import run_extraction

    paths = make_videos(tmp_path / "in", ["a", "b", "c"])
    store = tmp_path / "s.zarr"
    fs = reference_store(paths, store)  # complete videos, written without Ray (faster)
    good = {v: {n: fs.load(v, n) for n in ARRAYS} for v in fs.video_ids()}
    untouched = {p: p.stat().st_mtime_ns for p in (store / "videos" / "a").rglob("*") if p.is_file()}

    (store / "videos/b/frames/c/0/0/0/0").unlink()  # a deleted chunk file
    chunk = store / "videos/c/picks/c/0"
    chunk.write_bytes(chunk.read_bytes()[: chunk.stat().st_size // 2])  # a truncated one
    capsys.readouterr()
    assert vsum(["store", "check", str(store)]) == 1
    err = capsys.readouterr().err
    assert "PROBLEM b: frames: 1 of 1 chunks missing" in err
    assert "PROBLEM c: picks: unreadable" in err
    assert "PROBLEM a" not in err

    cfg, opts = cheap_configs()
    res = run_extraction(paths, str(store), cfg, opts, workers=1, repair=True, progress=False)
    assert sorted(r["video_id"] for r in res.rows) == ["b", "c"] and res.exit_code == 0
    assert vsum(["store", "check", str(store)]) == 0
    assert {p: p.stat().st_mtime_ns for p in untouched} == untouched  # a was not rewritten
    fs = FeatureStore(str(store))
    for v, arrays in good.items():
        for n, x in arrays.items():
            np.testing.assert_array_equal(fs.load(v, n), x)
    assert_one_final_row_each(store, ["a", "b", "c"])


# -- the bad-input corpus ----------------------------------------------------------------------
def _encode(path: Path, w: int, h: int, n: int, codec: str, pix_fmt: str = "yuv420p", **container_opts):
    with av.open(str(path), "w", options=container_opts) as out:
        s = out.add_stream(codec, rate=25)
        s.width, s.height, s.pix_fmt = w, h, pix_fmt
        if codec == "libx264":
            s.options = {"preset": "ultrafast", "crf": "10"}
        yy, xx = np.mgrid[0:h, 0:w]
        for i in range(n):
            img = np.stack([(xx * 7 + i) % 256, (yy * 5) % 256, (xx + yy + 3 * i) % 256], -1).astype(np.uint8)
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(p)
        for p in s.encode():
            out.mux(p)


def _audio_only(path: Path) -> None:
    with av.open(str(path), "w", format="mp4") as out:
        s = out.add_stream("aac", rate=16000)
        for i in range(10):
            fr = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            fr.sample_rate, fr.pts = 16000, i * 1024
            for p in s.encode(fr):
                out.mux(p)
        for p in s.encode():
            out.mux(p)


def bad_input_corpus(d: Path) -> tuple[dict[str, str], dict[str, dict]]:
    """(bad file -> expected reason, good file -> expected attrs)."""
    d.mkdir()
    (d / "zero_bytes.mp4").write_bytes(b"")
    (d / "random_bytes.mp4").write_bytes(np.random.default_rng(0).bytes(4096))
    # An mp4 with its index at the end fails at open when cut; with the index first
    # (faststart) the cut file opens and fails inside the decode loop, as a broken download does.
    _encode(d / "whole.mp4", 64, 48, 120, "libx264", movflags="faststart")
    data = (d / "whole.mp4").read_bytes()
    (d / "truncated.mp4").write_bytes(data[: len(data) // 2])
    (d / "whole.mp4").unlink()
    _audio_only(d / "audio_only.mp4")
    write_synthetic_video(str(d / "one_frame.mp4"), SynthVideoSpec(n_frames=1, width=64, height=48))
    _encode(d / "odd_7x5.mkv", 7, 5, 20, "ffv1", pix_fmt="yuv444p")  # libx264 needs even sizes
    _encode(d / "uhd_4k.mp4", 3840, 2160, 2, "libx264")
    write_synthetic_video(str(d / "phone_rotated.mp4"), SynthVideoSpec(n_frames=30, width=64, height=48, rotation=90))
    write_synthetic_video(str(d / "vfr.mp4"), SynthVideoSpec(n_frames=30, width=64, height=48, vfr=True))
    bad = {"zero_bytes": "empty file (0 bytes)", "random_bytes": "cannot open",
           "truncated": "decode failed at frame", "audio_only": "no video stream",
           "missing": "file not found"}
    good = {"one_frame": {"n_frames": 1, "n_steps": 1},
            "odd_7x5": {"n_frames": 20, "n_steps": 2, "width": 7, "height": 5},
            "uhd_4k": {"n_frames": 2, "n_steps": 1, "width": 3840, "height": 2160},
            "phone_rotated": {"n_frames": 30, "n_steps": 2, "rotation": 90},
            "vfr": {"n_frames": 30, "n_steps": 2}}
    return bad, good


@pytest.mark.timeout(240)
def test_bad_inputs_fail_alone_with_their_reason(ray_session, tmp_path, capsys):
    bad, good = bad_input_corpus(tmp_path / "in")
    store = tmp_path / "s.zarr"
    inputs = [str(tmp_path / "in"), str(tmp_path / "in" / "missing.mp4")]
    assert vsum(["extract", *inputs, "--store", str(store), "--workers", "2", *CHEAP]) == 1
    assert "5 complete, 5 failed" in capsys.readouterr().out

    man = read_manifest(str(store)).set_index("video_id")
    assert sorted(man.index) == sorted([*bad, *good])
    for vid, reason in bad.items():
        row = man.loc[vid]
        assert row["status"] == "failed"
        assert row["error"].startswith(row["source"] + ": ") and reason in row["error"], row["error"]
        assert "\n" not in row["error"]
    fs = FeatureStore(str(store))
    assert fs.all_video_ids() == sorted(good)  # failed videos leave no group behind
    for vid, want in good.items():
        assert man.loc[vid, "status"] == "complete"
        attrs = fs.attrs(vid)
        assert {k: attrs[k] for k in want} == want, vid
        assert fs.load(vid, "frames").shape == (want["n_steps"], 16, 16, 3)
