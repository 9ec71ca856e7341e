"""Multi-node: a two-node Ray cluster (head + one node, 1 CPU each) with the store on a real
S3-compatible server; `vsum extract` and `vsum train` join it by address, as `ray job submit`
jobs do. Only the driver gets the storage options (``--storage-options`` / its environment):
the workers get them from the job, not from their own environment.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from extract_helpers import CHEAP, assert_same_arrays, make_videos, reference_store
from ray_cluster import two_node_cluster
from s3_server import s3_server  # noqa: F401  (fixture)

from stores.manifest import read_manifest
from stores.reader import FeatureStore

VSUM = str(Path(sys.executable).parent / "vsum")


def _run(args: list[str], env: dict, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run([VSUM, *args], check=False, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def cluster_env(s3_server):  # noqa: F811
    """Environment for `vsum` subprocesses that join the two-node cluster. The nodes themselves
    are started without any storage options or credentials in their environment."""
    with two_node_cluster() as address:
        env = {**os.environ, "RAY_ADDRESS": address, "RAY_AUTH_MODE": "disabled"}
        env.pop("VSUM_STORAGE_OPTIONS", None)
        yield env


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_extract_on_a_two_node_cluster_into_an_s3_store(cluster_env, s3_server, tmp_path):  # noqa: F811
    s3 = s3_server
    s3.make_bucket("cluster")
    fs = s3.fs()
    paths = make_videos(tmp_path / "in", ["a", "b", "c", "d"])
    for p in paths:
        fs.put_file(p, f"cluster/videos/{Path(p).name}")
    store, opts = "s3://cluster/feats.zarr", s3.storage_options

    r = _run(["extract", "s3://cluster/videos/*.mp4", "--store", store, "--workers", "2",
              "--storage-options", json.dumps(opts), *CHEAP], cluster_env, 300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "4 complete, 0 failed" in r.stdout
    man = read_manifest(store, opts)
    assert sorted(man["video_id"]) == ["a", "b", "c", "d"] and set(man["status"]) == {"complete"}
    assert man["node"].nunique() == 2  # the two 1-CPU actors ran on the two nodes
    assert_same_arrays(FeatureStore(store, opts), reference_store(paths, tmp_path / "ref.zarr"))


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_train_on_a_two_node_cluster_from_an_s3_store(cluster_env, s3_server, tmp_path):  # noqa: F811
    from stores.predictions import split_done

    s3_server.make_bucket("labelled")
    env = {**cluster_env, **s3_server.env}  # the driver has the options, the nodes do not
    store = "s3://labelled/synth.zarr"
    r = _run(["store", "synth", store, "--videos", "6"], env, 120)
    assert r.returncode == 0, r.stderr[-3000:]
    run = tmp_path / "run"
    r = _run(["train", "dsn", "--store", store, "--splits", "kfold:2", "--epochs", "1",
              "--out", str(run), "--no-eval"], env, 300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert split_done(run, 0, 0) and split_done(run, 1, 0)
