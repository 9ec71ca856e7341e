"""Stores and inputs on object storage: a real S3-compatible server (moto, HTTP on loopback).

The extraction job reads its videos from ``s3://`` URLs (PyAV over fsspec file objects) and
writes its Zarr store, manifest and lease to ``s3://``; Ray workers reach the server over HTTP.
"""
from __future__ import annotations

import json
import threading

import pytest
from extract_helpers import CHEAP, assert_same_arrays, reference_store
from s3_server import s3_server  # noqa: F401  (fixture)

from jobs.cli import main as vsum
from pipeline.synth_video import SynthVideoSpec, write_synthetic_video
from stores.check import check_store
from stores.lock import StoreLock, StoreLocked, lock_uri
from stores.manifest import read_manifest
from stores.reader import FeatureStore


@pytest.mark.timeout(240)
def test_extract_from_s3_inputs_into_an_s3_store(ray_session, s3_server, tmp_path, capsys):  # noqa: F811
    s3 = s3_server
    s3.make_bucket("media")
    s3.make_bucket("features")
    fs = s3.fs()
    for i, name in enumerate(["a", "b", "c"]):
        local = tmp_path / f"{name}.mp4"
        write_synthetic_video(str(local), SynthVideoSpec(n_frames=40 + 5 * i, width=64, height=48, seed=i))
        fs.put_file(str(local), f"media/clips/{name}.mp4")
    store, opts = "s3://features/run1.zarr", s3.storage_options
    argv = ["extract", "s3://media/clips/", "s3://media/clips/missing.mp4", "--store", store,
            "--storage-options", json.dumps(opts), "--workers", "2", *CHEAP]
    assert vsum(argv) == 1  # the missing URL fails, alone
    assert "3 complete, 1 failed" in capsys.readouterr().out

    man = read_manifest(store, opts).set_index("video_id")
    assert sorted(man.index) == ["a", "b", "c", "missing"]
    assert man.loc["missing", "error"] == "s3://media/clips/missing.mp4: file not found"
    st = FeatureStore(store, opts)
    assert st.video_ids() == ["a", "b", "c"]
    assert st.attrs("b")["source"] == "s3://media/clips/b.mp4"
    assert not fs.exists(lock_uri(store))  # the lease is released
    # The same arrays as the local files give.
    assert_same_arrays(st, reference_store([str(tmp_path / f"{n}.mp4") for n in "abc"], tmp_path / "ref.zarr"))
    # `vsum store check` on S3 names a deleted chunk object.
    assert check_store(store, opts) == []
    fs.rm("features/run1.zarr/videos/b/frames/c/0/0/0/0")
    assert [str(p) for p in check_store(store, opts)] == ["b: frames: 1 of 1 chunks missing"]


def test_store_lease_on_s3_admits_one_job(s3_server):  # noqa: F811
    s3_server.make_bucket("leases")
    store, opts = "s3://leases/s.zarr", s3_server.storage_options
    barrier, outcomes, held = threading.Barrier(4), [], []

    def race():
        barrier.wait()
        try:
            held.append(StoreLock(store, opts, command="racer").acquire())
            outcomes.append("won")
        except StoreLocked:
            outcomes.append("refused")

    threads = [threading.Thread(target=race) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(outcomes) == ["refused", "refused", "refused", "won"]
    with pytest.raises(StoreLocked, match=r"s3://leases/s.zarr: store is in use by racer"):
        StoreLock(store, opts).acquire()
    held[0].release()
    with StoreLock(store, opts, command="next") as lock:
        assert lock.read()["command"] == "next"
    assert lock.read() is None
