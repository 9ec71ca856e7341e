"""``ray job submit`` for real (issue 13, item 4): a head started by ``ray start --head`` (with its
dashboard) plus a second node by ``ray start --address``, and ``vsum extract`` / ``vsum train``
submitted with ``ray job submit --address http://127.0.0.1:PORT --working-dir …``; the jobs
must succeed and leave a store / a run that read back. Slow (``make test-all``).
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from extract_helpers import CHEAP, assert_same_arrays, make_videos, reference_store
from ray_started_cluster import RAY, started_cluster

from stores.manifest import read_manifest
from stores.predictions import split_done
from stores.reader import FeatureStore


@pytest.fixture(scope="module")
def cluster():
    with started_cluster() as c:
        yield c


def submit(c, job_id: str, working_dir: Path, entrypoint: list[str], timeout: float = 1200) -> str:
    """``ray job submit`` (waits, streaming the job's log), then its status; -> the status line."""
    r = subprocess.run([*RAY, "job", "submit", "--address", c.dashboard, "--submission-id", job_id,
                        "--working-dir", str(working_dir), "--", *entrypoint],
                       env=c.env, capture_output=True, text=True, timeout=timeout, check=False)
    status = subprocess.run([*RAY, "job", "status", "--address", c.dashboard, job_id], env=c.env,
                            capture_output=True, text=True, timeout=120, check=False)
    # Ray 2.60 prints "Job 'ID' succeeded" (older versions: "... status: SUCCEEDED")
    said = status.stdout.lower()
    assert "succeeded" in said and "failed" not in said, (r.stdout[-3000:], r.stderr[-2000:], status.stdout)
    assert r.returncode == 0, r.stderr[-2000:]
    return status.stdout


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_extract_submitted_to_a_started_cluster(cluster, tmp_path):
    # the working dir travels with the job: the inputs are given relative to it
    job_dir = tmp_path / "job"
    paths = make_videos(job_dir / "videos", ["a", "b", "c", "d"])
    store = tmp_path / "feats.zarr"
    submit(cluster, "vsum-extract", job_dir,
           ["vsum", "extract", "videos", "--store", str(store), "--workers", "2", *CHEAP])
    man = read_manifest(str(store))
    assert sorted(man["video_id"]) == ["a", "b", "c", "d"] and set(man["status"]) == {"complete"}
    assert man["node"].nunique() == 2  # one 1-CPU actor on each of the two nodes
    assert_same_arrays(FeatureStore(str(store)), reference_store(paths, tmp_path / "ref.zarr"))


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_train_submitted_to_a_started_cluster(cluster, tmp_path):
    store = tmp_path / "synth.zarr"
    subprocess.run(["vsum", "store", "synth", str(store), "--videos", "6", "--features",
                    "googlenet=64", "--min-steps", "60", "--max-steps", "120"],
                   env=cluster.env, check=True, capture_output=True, timeout=300)
    job_dir = tmp_path / "job"
    job_dir.mkdir()
    (job_dir / "README").write_text("vsum train job\n")
    run = tmp_path / "run"
    submit(cluster, "vsum-train", job_dir,
           ["vsum", "train", "dsn", "--store", str(store), "--splits", "kfold:2", "--epochs", "1",
            "--out", str(run), "--no-eval"])
    assert split_done(run, 0, 0) and split_done(run, 1, 0)
