"""Dask by address (issue 13, item 5): a ``dask scheduler`` and two ``dask worker`` processes
started apart from the job on 127.0.0.1, and ``vsum evaluate`` / ``vsum baselines`` pointed at
them with ``--scheduler tcp://…``. Results equal the same jobs on a local cluster.

Slow (``make test-all``): it starts three processes of its own besides the two commands
(~30 s on an idle 2-core machine); the non-slow suite already runs ``--scheduler`` against the
session's local cluster (tests/test_evaluate.py).
"""
from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_evaluate import _run
from test_evaluate import store as store  # noqa: F401  (module fixture: a labelled toy store)

from jobs.baselines import BaselineConfig, run_baselines
from jobs.evaluate import evaluate_runs
from stores import layout

VSUM = str(Path(sys.executable).parent / "vsum")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def dask_cluster(tmp: Path, n_workers: int = 2):
    """``dask scheduler`` + n ``dask worker`` processes (this venv's Python, so the workers import
    this tree's code) -> "tcp://127.0.0.1:PORT". Stopped (only these processes) on exit."""
    from distributed import Client

    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host",
                               "127.0.0.1", "--port", str(port), "--no-dashboard"],
                              stdout=subprocess.DEVNULL, stderr=open(tmp / "scheduler.log", "w"))]
    for i in range(n_workers):
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1",
             "--nworkers", "1", "--no-dashboard", "--host", "127.0.0.1", "--name", f"w{i}"],
            stdout=subprocess.DEVNULL, stderr=open(tmp / f"worker{i}.log", "w")))
    try:
        with Client(address, timeout=120) as c:
            c.wait_for_workers(n_workers, timeout=180)
        yield address
    finally:
        for p in reversed(procs):
            p.terminate()
        deadline = time.monotonic() + 30
        for p in procs:
            try:
                p.wait(max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()


def _sorted(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    return df.sort_values(keys).reset_index(drop=True)


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_evaluate_and_baselines_on_a_scheduler_started_apart(store, tmp_path, dask_client):  # noqa: F811
    run = _run(tmp_path, store, "oracle", lambda fs, v: fs.load(v, layout.GTSCORE))
    with dask_cluster(tmp_path) as address:
        r = subprocess.run([VSUM, "evaluate", run, "--store", store, "--report",
                            str(tmp_path / "ev"), "--scheduler", address, "--curves", "0"],
                           capture_output=True, text=True, timeout=900, check=False)
        assert r.returncode == 0, r.stderr[-2000:]
        r = subprocess.run([VSUM, "baselines", "--store", store, "--report", str(tmp_path / "bl"),
                            "--seeds", "3", "--scheduler", address],
                           capture_output=True, text=True, timeout=900, check=False)
        assert r.returncode == 0, r.stderr[-2000:]
        from distributed import Client

        with Client(address) as c:  # both jobs ran on these two workers, which are still up
            assert len(c.scheduler_info()["workers"]) == 2
    keys = ["method", "split", "video_id", "metric", "seed"]
    ref, _, _ = evaluate_runs([run], client=dask_client)
    got = pd.read_parquet(tmp_path / "ev" / "per_video.parquet")
    assert len(got) == len(ref) > 0
    np.testing.assert_array_equal(_sorted(got, keys)["value"], _sorted(ref, keys)["value"])
    ref, _, _ = run_baselines([store], cfg=BaselineConfig(seeds=3), client=dask_client)
    got = pd.read_parquet(tmp_path / "bl" / "per_video.parquet")
    assert set(got["method"]) == {"human-loo", "random", "uniform", "middle"} and len(got) == len(ref)
    np.testing.assert_array_equal(_sorted(got, keys)["value"], _sorted(ref, keys)["value"])
