"""Evaluation batching (many videos per Dask task) and ``vsum bench eval``'s figures."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from jobs.dask_eval import partition_count


def test_partition_count_gives_each_worker_several_tasks_never_more_than_videos():
    assert partition_count(18100, 2) == 8
    assert partition_count(18100, 2, per_worker=1) == 2
    assert partition_count(3, 2) == 3
    assert partition_count(0, 2) == 1


def test_run_per_video_batches_videos_and_matches_the_loop(dask_client):
    from jobs.bench.eval import loop_summary, synthetic_task
    from jobs.dask_eval import aggregate, run_per_video

    tasks = [{"i": i, "seed": 0} for i in range(24)]
    stats: dict = {}
    per_video, errors = run_per_video(dask_client, tasks, synthetic_task, None, 2, stats)
    assert errors == []
    assert stats["n_tasks"] == 4 and len(stats["task_s"]) == 4  # 2 workers x 2, 6 videos each
    assert list(per_video["video_id"].unique()) == [str(i) for i in range(24)]  # order kept
    assert per_video["value"].dtype == float
    summary = aggregate(per_video).set_index(["dataset", "metric"])["mean"]
    loop = loop_summary(tasks)["mean"]
    np.testing.assert_allclose(summary.sort_index().to_numpy(), loop.sort_index().to_numpy())


@pytest.mark.slow  # starts its own Dask cluster and calibrates the cores
@pytest.mark.timeout(900)
def test_bench_eval_command_writes_loop_and_dask_figures(tmp_path):
    out = tmp_path / "eval.json"
    proc = subprocess.run([str(Path(sys.executable).parent / "vsum"), "bench", "eval", "--videos", "40",
                           "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    r = json.loads(out.read_text())
    assert r["loop_s"] > 0 and r["dask_s"] > 0
    assert r["dask_equals_loop"] is True
    assert r["dask_tasks"] == 8 and r["videos_per_task"] == 5
    assert "reference_s" not in r  # only with --reference, and then on every video
    assert "Dask vs loop" in proc.stdout


def _worker_env() -> dict:
    import os

    return {k: os.environ.get(k) for k in ("MALLOC_TRIM_THRESHOLD_", "OMP_NUM_THREADS")}


def test_the_embedded_cluster_keeps_glibc_trimming_and_one_blas_thread(monkeypatch):
    """distributed's MALLOC_TRIM_THRESHOLD_ made each video cost 15-40 % more CPU in the
    workers (jobs/dask_eval.py): the embedded cluster's workers must not get it."""
    from jobs.dask_eval import close_client, get_client

    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    client, _ = get_client(None, 1)
    try:
        envs = list(client.run(_worker_env).values())
    finally:
        close_client(client)
    assert envs == [{"MALLOC_TRIM_THRESHOLD_": None, "OMP_NUM_THREADS": "1"}]
