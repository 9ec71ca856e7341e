"""The Dask evaluation and baselines jobs on a small annotation-only store."""
import json

import numpy as np
import pandas as pd
import pytest
from s3_server import s3_server  # noqa: F401  (fixture)

from jobs.baselines import BaselineConfig, run_baselines
from jobs.cli import main as vsum
from jobs.eval_tasks import load_labels
from jobs.evaluate import evaluate_runs
from pipeline.metrics import evaluate_video
from stores import layout
from stores.location import open_root
from stores.predictions import write_predictions, write_run_json
from stores.reader import FeatureStore
from stores.store import Store
from stores.writer import write_array

VIDEOS = ["va", "vb", "vc"]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """3 videos x 600 frames at 10 fps; 4 annotators = shared signal + their own noise."""
    d = tmp_path_factory.mktemp("evaluate")
    rng = np.random.default_rng(0)
    videos = []
    for name in VIDEOS:
        base = np.repeat(rng.random(30), 20)  # one value per 2 s
        users = [np.clip(base + 0.15 * np.repeat(rng.standard_normal(30), 20), 0, None)
                 for _ in range(4)]
        videos.append({"name": name, "fps": 10.0, "user_scores": np.round(users, 3).tolist()})
    anno = d / "toy.json"
    anno.write_text(json.dumps({"dataset": "toy", "videos": videos}))
    path = str(d / "toy.zarr")
    assert vsum(["import", "json", str(anno), "--store", path]) == 0
    # features for one video only: diversity is computed where features exist
    root = open_root(path, "a")
    write_array(root["videos/va"], "features/googlenet", rng.random((40, 8)).astype(np.float32))
    return path


def _run(tmp, store, name, scorer):
    fs = FeatureStore(store)
    run = tmp / name
    write_run_json(run, {"head": "dsn", "features": "googlenet", "dataset": "toy",
                         "setting": "canonical", "store": store})
    for split, vids in ((0, VIDEOS[:2]), (1, VIDEOS[2:])):
        scores = {v: scorer(fs, v) for v in vids}
        write_predictions(run, split, 0, scores, {"head": "dsn", "features": "googlenet",
                                                  "dataset": "toy", "setting": "canonical",
                                                  "store": store})
    return str(run)


def test_evaluate_runs_on_dask(store, tmp_path, dask_client):
    oracle = _run(tmp_path, store, "oracle", lambda fs, v: fs.load(v, layout.GTSCORE))
    rng = np.random.default_rng(1)
    rand = _run(tmp_path, store, "rand",
                lambda fs, v: rng.random(len(fs.load(v, layout.PICKS))).astype(np.float32))
    report = tmp_path / "report"
    per_video, summary, errors = evaluate_runs([oracle, rand], str(report), client=dask_client)
    assert errors == []
    assert set(per_video["method"]) == {"oracle", "rand"}
    # the Dask path gives exactly what the pure per-video function gives
    fs = FeatureStore(store)
    lab = load_labels(store, "vb")
    direct = evaluate_video(fs.load("vb", layout.GTSCORE), lab["picks"], lab["n_frames"],
                            lab["change_points"], lab["user_summary"], lab["user_scores"])
    got = per_video[(per_video["method"] == "oracle") & (per_video["video_id"] == "vb")]
    for metric, value in direct.items():
        v = got.loc[got["metric"] == metric, "value"].iloc[0]
        assert (np.isnan(v) and np.isnan(value)) or v == pytest.approx(value)
    div = per_video[(per_video["method"] == "oracle") & (per_video["metric"] == "diversity")]
    div = div.set_index("video_id")["value"]
    assert 0 < div["va"] <= 2 and np.isnan(div["vb"])
    # summary: per split, and "all" = mean of the split means
    f = summary[(summary["method"] == "oracle") & (summary["metric"] == "f1_avg")]
    assert set(f["split"]) == {"0", "1", "all"}
    split_means = f[f["split"] != "all"]["mean"]
    assert f[f["split"] == "all"]["mean"].iloc[0] == pytest.approx(split_means.mean())
    assert f[f["split"] == "all"]["n_videos"].iloc[0] == 3
    best = summary[(summary["split"] == "all") & (summary["metric"] == "kendall_tau_frame")]
    by = best.set_index("method")["mean"]
    assert by["oracle"] > by["rand"]
    # report files
    assert (report / "per_video.parquet").exists()
    s = pd.read_parquet(report / "summary.parquet")
    assert {"method", "dataset", "split", "metric", "mean", "std", "n_videos"} <= set(s.columns)
    md = (report / "report.md").read_text()
    assert "Kendall τ (frame, Otani)" in md and "| oracle |" in md
    assert (report / "plots" / "f1_distribution.png").stat().st_size > 1000
    assert list((report / "plots").glob("scores_*.png"))


def test_evaluate_cli_on_an_existing_scheduler(store, tmp_path, dask_client):
    oracle = _run(tmp_path, store, "oracle", lambda fs, v: fs.load(v, layout.GTSCORE))
    report = tmp_path / "r"
    code = vsum(["evaluate", oracle, "--store", store, "--report", str(report),
                 "--scheduler", dask_client.scheduler.address, "--rank", "pick", "--curves", "0"])
    assert code == 0
    s = pd.read_parquet(report / "summary.parquet")
    assert s[s["metric"] == "kendall_tau_frame"]["mean"].isna().all()  # --rank pick only
    assert s[s["metric"] == "kendall_tau_pick"]["mean"].notna().all()
    assert dask_client.submit(sum, [1, 2]).result() == 3  # the shared cluster is still up


def test_bad_prediction_is_one_line_and_the_rest_goes_on(store, tmp_path, dask_client, capsys):
    def scorer(fs, v):
        g = fs.load(v, layout.GTSCORE)
        return g[:-3] if v == "vb" else g  # vb: fewer scores than picks

    run = _run(tmp_path, store, "short", scorer)
    code = vsum(["evaluate", run, "--report", str(tmp_path / "r"), "--rank", "none",
                 "--curves", "0", "--scheduler", dask_client.scheduler.address])
    assert code == 1
    err = [line for line in capsys.readouterr().err.splitlines() if "vb" in line]
    assert len(err) == 1 and "37 steps but picks have 40" in err[0]
    per_video = pd.read_parquet(tmp_path / "r" / "per_video.parquet")
    assert sorted(per_video["video_id"].unique()) == ["va", "vc"]


def test_baselines_on_dask(store, tmp_path, dask_client):
    per_video, summary, errors = run_baselines([store], str(tmp_path / "b"),
                                               BaselineConfig(seeds=3), client=dask_client)
    assert errors == []
    assert set(per_video["method"]) == {"human-loo", "random", "uniform", "middle"}
    rnd = per_video[(per_video["method"] == "random") & (per_video["metric"] == "f1_avg")]
    assert sorted(rnd["seed"].unique()) == [0, 1, 2] and len(rnd) == 9
    top = summary[summary["metric"] == "kendall_tau_frame"].set_index("method")["mean"]
    assert top["human-loo"] > top["random"]  # annotators share a signal; random does not
    assert np.isnan(top["uniform"])  # a summary has no scores to rank


def test_dask_workers_read_an_s3_store_with_the_options_its_store_value_carries(
        store, tmp_path, dask_client, s3_server, monkeypatch):  # noqa: F811
    """The Dask workers (started before, without storage options) and this process's
    environment have none: evaluation and baselines read the S3 store through the Store value."""
    monkeypatch.delenv("VSUM_STORAGE_OPTIONS", raising=False)
    s3_server.make_bucket("evaljob")
    s3_server.fs().put(store, "evaljob/toy.zarr", recursive=True)
    s3 = Store("s3://evaljob/toy.zarr", s3_server.storage_options)
    fs = FeatureStore(store)
    run = tmp_path / "s3run"
    write_predictions(run, 0, 0, {v: fs.load(v, layout.GTSCORE) for v in VIDEOS},
                      {"head": "dsn", "features": "googlenet", "dataset": "toy",
                       "setting": "canonical", "store": s3.url})
    on_s3, _, errors = evaluate_runs([str(run)], str(tmp_path / "r"), store=s3, client=dask_client)
    assert errors == [] and (tmp_path / "r" / "report.md").exists()
    local, _, _ = evaluate_runs([str(run)], None, store=store, client=dask_client)
    key = ["video_id", "metric"]
    pd.testing.assert_series_equal(on_s3.sort_values(key)["value"].reset_index(drop=True),
                                   local.sort_values(key)["value"].reset_index(drop=True))
    per_video, _, errors = run_baselines([s3], None, BaselineConfig(seeds=1), client=dask_client)
    assert errors == [] and set(per_video["video_id"]) == set(VIDEOS)


def test_evaluate_cli_bad_run_is_one_line(tmp_path, capsys):
    assert vsum(["evaluate", str(tmp_path), "--report", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no predictions" in err[0]
