"""``vsum train``: resume after a kill (the real CLI in a subprocess), the Ray path with the
session cluster, evaluation at the end, and clear refusals."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from s3_server import s3_server  # noqa: F401  (fixture)

from jobs.cli import main
from jobs.train import resolve_splits, run_training
from stores.predictions import predictions_path, read_predictions, read_run_json, split_done
from stores.store import Store
from stores.synthetic import build_synthetic_store

TINY = ["--set", "hidden=8", "--set", "lr=1e-3"]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("job") / "s.zarr")
    build_synthetic_store(path, n_videos=6, seed=21, min_steps=30, max_steps=60,
                          feature_shapes={"googlenet": (32,)})
    return path


def _vsum(*args) -> list[str]:
    return [sys.executable, "-m", "jobs.cli", "train", *args]


def test_killed_run_resumes_without_retraining_finished_splits(store, tmp_path):
    run = tmp_path / "run"
    args = ["dsn", "--store", store, "--splits", "kfold:3", "--out", str(run), "--epochs", "30",
            "--no-ray", "--no-eval", *TINY]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(_vsum(*args), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    first = predictions_path(run, 0, 0)
    try:
        deadline = time.time() + 300
        while not first.exists() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        assert first.exists(), "the first split never finished"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # our own process group only
        proc.wait()
    done_before = [k for k in range(3) if split_done(run, k, 0)]
    assert len(done_before) < 3, "all splits finished before the kill: raise --epochs"
    stamps = {k: predictions_path(run, k, 0).stat().st_mtime_ns for k in done_before}
    ckpt0 = (run / "split=0" / "seed=0" / "checkpoint.pt").stat().st_mtime_ns

    res = subprocess.run(_vsum(*args), env=env, capture_output=True, text=True, timeout=600,
                         check=False)
    assert res.returncode == 0, res.stderr[-2000:]
    assert f"{len(done_before)} of 3 (split, seed) pairs already done" in res.stdout
    assert all(split_done(run, k, 0) for k in range(3))
    assert {k: predictions_path(run, k, 0).stat().st_mtime_ns for k in done_before} == stamps
    assert (run / "split=0" / "seed=0" / "checkpoint.pt").stat().st_mtime_ns == ckpt0
    df = read_predictions(run)
    assert len(df) == 6 and df["video_id"].nunique() == 6  # kfold: every video tested once


def test_ray_path_trains_every_split_and_seed_then_evaluates(store, tmp_path, ray_session,
                                                             dask_client, capsys):
    run = tmp_path / "ray_run"
    out = run_training("dsn_sup", store, "kfold:2", str(run), seeds=(0, 1), epochs=2,
                       overrides={"hidden": "8", "lr": "1e-3"}, use_ray=True,
                       eval_client=dask_client, progress=False)
    assert out == run
    assert all(split_done(run, k, s) for k in range(2) for s in (0, 1))
    info = read_run_json(run)
    assert info["head"] == "dsn_sup" and info["n_splits"] == 2 and info["seeds"] == [0, 1]
    assert info["config"]["hidden"] == 8 and info["selection"] == "fixed-epochs"
    assert (run / "report" / "report.md").exists()
    printed = capsys.readouterr().out
    assert "f1_avg" in printed and "report:" in printed
    # a second call finds nothing to do and leaves the files alone
    stamp = predictions_path(run, 1, 1).stat().st_mtime_ns
    run_training("dsn_sup", store, "kfold:2", str(run), seeds=(0, 1), epochs=2,
                 overrides={"hidden": "8", "lr": "1e-3"}, evaluate=False, progress=False)
    assert predictions_path(run, 1, 1).stat().st_mtime_ns == stamp
    assert "4 of 4 (split, seed) pairs already done" in capsys.readouterr().out


def test_ray_tasks_read_an_s3_store_with_the_options_its_store_value_carries(
        tmp_path, ray_session, s3_server, monkeypatch):  # noqa: F811
    """The workers' environment has no storage options (Ray started before they were set, and
    the job forwards none): the Store value each task receives is all they have."""
    s3_server.make_bucket("trainjob")
    url, opts = "s3://trainjob/s.zarr", s3_server.storage_options
    monkeypatch.setenv("VSUM_STORAGE_OPTIONS", json.dumps(opts))  # the builder reads the env
    build_synthetic_store(url, n_videos=4, seed=3, min_steps=20, max_steps=30,
                          feature_shapes={"googlenet": (16,)})
    monkeypatch.delenv("VSUM_STORAGE_OPTIONS")
    run = tmp_path / "s3_run"
    run_training("dsn", Store(url, opts), "kfold:2", str(run), epochs=1,
                 overrides={"hidden": "8"}, use_ray=True, evaluate=False, progress=False)
    assert split_done(run, 0, 0) and split_done(run, 1, 0)
    info = read_run_json(run)
    assert info["store"] == url and info["stores"] == [url]  # run.json keeps the URL
    assert set(read_predictions(run)["store"]) == {url}


def test_a_different_run_in_the_same_folder_is_refused(store, tmp_path, capsys):
    run = tmp_path / "r"
    run_training("dsn", store, "kfold:2", str(run), epochs=1, overrides={"hidden": "8"},
                 use_ray=False, evaluate=False, progress=False)
    code = main(["train", "dsn", "--store", store, "--splits", "kfold:2", "--out", str(run),
                 "--epochs", "2", "--set", "hidden=8", "--no-ray", "--no-eval"])
    err = capsys.readouterr().err
    assert code == 2 and "different run" in err and "config" in err


def test_bad_inputs_give_one_line_and_exit_2(store, tmp_path, capsys):
    assert main(["train", "nohead", "--store", store, "--out", str(tmp_path / "x")]) == 2
    assert "unknown head 'nohead'" in capsys.readouterr().err
    assert main(["train", "dsn", "--store", store, "--splits", "bogus", "--out",
                 str(tmp_path / "y"), "--no-ray"]) == 2
    assert "--splits 'bogus'" in capsys.readouterr().err
    assert main(["train", "dsn", "--store", store, "--out", str(tmp_path / "z"),
                 "--set", "nofield=1"]) == 2
    assert "nofield" in capsys.readouterr().err


def test_split_files_resolve_against_the_store(store, tmp_path):
    import json

    f = tmp_path / "splits.json"
    f.write_text(json.dumps([{"train_keys": ["synth_000", "synth_001"], "test_keys": ["synth_002"]}]))
    assert resolve_splits(str(f), store) == [(["synth_000", "synth_001"], ["synth_002"])]
    folds = resolve_splits("kfold:3", store)
    assert sorted(v for _, test in folds for v in test) == [f"synth_{i:03d}" for i in range(6)]
    assert Path(store).exists()
