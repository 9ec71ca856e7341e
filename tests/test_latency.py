"""A store on object storage far away: moto's S3 server behind a proxy that holds every request
20 ms (tests/s3_server.py), counting the requests.

With the store's index, planning a no-op re-run, ``vsum store info`` and opening the store for
training make a number of requests that does not grow with the number of videos (one listing
page per 1,000 videos aside), and give the answers reading every group gives. When a writer has
the store open, readers scan every group instead, in parallel, and say so. ``make test`` runs
100 videos; ``make test-all`` runs 5,000. Timings are the benchmark's business
(``vsum bench scale --latency-ms 20``); the tests count requests.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from s3_server import env_for, s3_server, slow_s3  # noqa: F401  (fixtures)

from jobs.bench.tiny_store import CONFIG_HASH, N_FRAMES, tiny_sources, write_tiny_store
from jobs.extract_plan import plan_work
from jobs.train import resolve_splits
from stores.dataset import VideoDataset
from stores.manifest import Manifest
from stores.reader import FeatureStore
from stores.store import Store

VSUM = str(Path(sys.executable).parent / "vsum")
# Requests of each operation with a current index: opening the root (zarr), the manifest's
# listing and snapshot, the videos/ listing; independent of the number of videos.
FIXED_REQUESTS = 24


def serve_tiny_store(s3, tmp_path: Path, n: int) -> str:
    """n tiny complete videos written locally (tmpfs when there is one), served over S3."""
    base = Path("/dev/shm") if Path("/dev/shm").is_dir() else tmp_path
    local = base / f"vsum-latency-{os.getpid()}-{n}.zarr"
    try:
        write_tiny_store(str(local), n)
        url = f"s3://latency/n{n}.zarr"
        s3.preload(str(local), url)
    finally:
        import shutil

        shutil.rmtree(local, ignore_errors=True)
    return url


def requests_of(proxy, fn, *args, **kwargs):
    before = proxy.requests
    out = fn(*args, **kwargs)
    return proxy.requests - before, out


def check_index_at_latency(s3, proxy, n: int, tmp_path: Path, monkeypatch) -> None:
    url = serve_tiny_store(s3, tmp_path, n)
    opts = proxy.storage_options()
    monkeypatch.setenv("VSUM_STORAGE_OPTIONS", env_for(opts)["VSUM_STORAGE_OPTIONS"])
    pages = n // 1000  # the videos/ listing: one request per 1,000 groups

    # 1. planning a re-run of the same inputs: nothing to do
    n_req, plan = requests_of(proxy, plan_work, tiny_sources(n), Store(url, opts), CONFIG_HASH, False, set())
    todo = plan.todo
    assert todo == []
    assert n_req <= FIXED_REQUESTS + pages, n_req

    # 2. `vsum store info`, as users run it
    n_req, res = requests_of(proxy, subprocess.run, [VSUM, "store", "info", url], env=dict(os.environ),
                             capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0] == f"store {url}: {n} complete videos (0 incomplete)"
    assert len([ln for ln in lines if ln.startswith("  v")]) == n
    assert lines[8].startswith(f"  v00007: {N_FRAMES} frames @ 30.00 fps, T=8, 2 segments, googlenet[8, 16], ")
    assert lines[-1] == f"manifest: {{'complete': {n}}}"
    assert "store index" not in res.stderr  # no fallback
    assert n_req <= FIXED_REQUESTS + 2 * pages, n_req

    # 3. opening the store for training: k-fold splits, then the dataset's checks (need labels)
    def open_for_training():
        splits = resolve_splits("kfold:5", url)
        data = VideoDataset(FeatureStore(url, opts), sorted(splits[0][0] + splits[0][1]),
                            need_labels=True, cache_bytes=0)
        return splits, data

    n_req, (splits, data) = requests_of(proxy, open_for_training)
    assert sum(len(test) for _, test in splits) == n
    assert set(data.lengths().values()) == {8} and len(data) == n
    assert n_req <= 2 * FIXED_REQUESTS + 2 * pages, n_req
    return url


def test_index_on_object_storage_with_20ms_per_request(s3_server, slow_s3, tmp_path, monkeypatch,  # noqa: F811
                                                        capfd):
    n = 100
    url = check_index_at_latency(s3_server, slow_s3, n, tmp_path, monkeypatch)
    opts = slow_s3.storage_options()
    # A writer opens the store (and is killed, or still runs): readers scan every group, in
    # parallel, say so, and plan the same.
    Manifest(url, opts, command="vsum extract")
    capfd.readouterr()
    n_req, plan = requests_of(slow_s3, plan_work, tiny_sources(n), Store(url, opts), CONFIG_HASH, False, set())
    todo = plan.todo
    assert todo == [] and n_req >= n  # one read per group ...
    err = capfd.readouterr().err
    assert (f"store index of {url}: vsum extract opened it after its index was written and has "
            f"not closed it (still running, or stopped); reading its {n} video groups") in err


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_index_on_object_storage_at_5000_videos(s3_server, slow_s3, tmp_path, monkeypatch):  # noqa: F811
    check_index_at_latency(s3_server, slow_s3, 5000, tmp_path, monkeypatch)
