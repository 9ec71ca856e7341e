"""Other codebases' prediction files through ``vsum evaluate --predictions`` (issue 21): the DR-DSN
result h5 (our F equals the file's ``fm``), score tables (Parquet, CSV, JSON), ready-made
summaries, key resolution, missing/extra videos, and one clear line for a file of no known format.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
from drdsn_reference import write_result_h5

from jobs.cli import main as vsum
from jobs.eval_tasks import load_labels
from pipeline.errors import InputError
from pipeline.summary import select_keyshots, upsample_scores
from stores.external_predictions import read_external, resolve
from stores.predictions import write_predictions, write_run_json
from stores.splits import StoreIndex

VSUM = str(Path(sys.executable).parent / "vsum")
N_VIDEOS = 8


def _video(rng, k: int) -> dict:
    """An eccv16-layout video: KTS-like segments of 1–5 s tiling it, 5 annotators' 15% shot
    selections, picks every 15 frames."""
    n = int(rng.integers(900, 2400))
    lengths = rng.integers(30, 150, size=n // 30 + 2)
    lengths = lengths[: np.searchsorted(np.cumsum(lengths), n) + 1]
    lengths[-1] -= int(lengths.sum() - n)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    cps = np.stack([starts, starts + lengths - 1], axis=1)
    users = np.zeros((5, n), np.float32)
    for u in users:
        budget = int(0.15 * n)
        for s in rng.permutation(len(lengths)):
            if lengths[s] <= budget:
                u[starts[s]: starts[s] + lengths[s]] = 1
                budget -= lengths[s]
    picks = np.arange(0, n, 15)
    return {"features": rng.random((len(picks), 8)).astype(np.float32), "picks": picks,
            "n_frames": n, "n_steps": len(picks), "change_points": cps,
            "n_frame_per_seg": lengths, "user_summary": users,
            "gtscore": users.mean(0)[picks], "gtsummary": (users.mean(0)[picks] > 0.5) * 1.0,
            "video_name": f"v{k:02d}".encode()}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """(eccv16 dataset h5, the store `vsum store import-h5` made of it)."""
    d = tmp_path_factory.mktemp("external")
    rng = np.random.default_rng(21)
    h5 = d / "eccv16_dataset_tvsum_google_pool5.h5"
    with h5py.File(h5, "w") as f:
        for k in range(1, N_VIDEOS + 1):
            for name, value in _video(rng, k).items():
                f[f"video_{k}/{name}"] = value
    store = str(d / "tvsum.zarr")
    assert vsum(["store", "import-h5", str(h5), store, "--dataset", "tvsum"]) == 0
    return h5, store


def _scores(h5, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    with h5py.File(h5, "r") as f:
        return {k: rng.random(int(f[k]["n_steps"][()])).astype(np.float32) for k in f}


def _evaluate(args: list[str], scheduler: str) -> subprocess.CompletedProcess:
    return subprocess.run([VSUM, "evaluate", *args, "--scheduler", scheduler],
                          capture_output=True, text=True, timeout=300, check=False)


def _values(per_video: pd.DataFrame, method: str, metric: str) -> pd.Series:
    sub = per_video[(per_video["method"] == method) & (per_video["metric"] == metric)]
    return sub.set_index("video_id")["value"].sort_index()


def test_drdsn_result_h5_fm_equals_ours(dataset, tmp_path, dask_client):
    """Two result.h5 in the authors' layout (TVSum-style avg, SumMe-style max fm), one video
    left out and one key the store lacks: our F per video equals each file's fm to 1e-4."""
    h5, store = dataset
    scores = _scores(h5, 0)
    del scores["video_8"]  # missing
    (tmp_path / "avg").mkdir()
    fm_avg = write_result_h5(tmp_path / "avg" / "result.h5", h5, scores, "avg")
    fm_max = write_result_h5(tmp_path / "max.h5", h5, _scores(h5, 1), "max")
    with h5py.File(tmp_path / "avg" / "result.h5", "a") as f:  # a video of another dataset
        f["video_51/score"] = np.zeros(10, np.float32)
    report = tmp_path / "report"
    r = _evaluate(["--predictions", str(tmp_path / "avg" / "result.h5"), str(tmp_path / "max.h5"),
                   "--name", "dr-dsn", "--name", "dr-dsn-summe", "--store", store,
                   "--report", str(report), "--curves", "1"], dask_client.scheduler.address)
    assert r.returncode == 1, r.stderr[-2000:]  # the extra video is a prediction not evaluated
    err = r.stderr.splitlines()
    assert [e for e in err if "video_51" in e] == [
        f"{tmp_path / 'avg' / 'result.h5'}: video_51: no video with this key in {store} (extra)"]
    assert [e for e in err if "missing" in e] == ["dr-dsn: v08: no prediction (missing)"]
    per_video = pd.read_parquet(report / "per_video.parquet")
    ids = {f"video_{k}": f"v{k:02d}" for k in range(1, N_VIDEOS + 1)}
    for method, fms, ours in (("dr-dsn", fm_avg, "f1_avg"), ("dr-dsn-summe", fm_max, "f1_max")):
        theirs = pd.Series({ids[k]: v for k, v in fms.items()}).sort_index()
        got = _values(per_video, method, ours)
        assert list(got.index) == list(theirs.index)
        np.testing.assert_allclose(got.to_numpy(), theirs.to_numpy(), atol=1e-4, rtol=0)
        np.testing.assert_allclose(_values(per_video, method, "fm_file").to_numpy(),
                                   theirs.to_numpy(), rtol=1e-12)
        line = [e for e in err if e.startswith(f"{method}: the file's fm vs our {ours} ")]
        assert len(line) == 1 and f"on {len(fms)} videos" in line[0], err
    ext = json.loads((report / "external.json").read_text())
    assert ext["dr-dsn"]["missing"] == ["v08"] and ext["dr-dsn"]["evaluated"] == 7
    assert ext["dr-dsn"]["files"][0]["extra"] == ["video_51"]
    assert ext["dr-dsn"]["fm_comparison"]["max_abs_diff"] < 1e-4
    assert ext["dr-dsn-summe"]["fm_comparison"]["ours"] == "f1_max"
    md = (report / "report.md").read_text()
    assert "## External predictions" in md and "| dr-dsn | 1 | result-h5 | 8 | 7 | 1 | 1 |" in md


def _write_tables(d: Path, h5: Path, store: str) -> dict[str, str]:
    """The same step scores in every table format; returns name -> file."""
    scores = _scores(h5, 2)
    ids = {f"video_{k}": f"v{k:02d}" for k in range(1, N_VIDEOS + 1)}
    # key forms: vsum ids, dataset-qualified, and plain eccv16 keys
    keyed = {(ids[k] if i % 3 == 0 else f"tvsum/{k}" if i % 3 == 1 else k): s
             for i, (k, s) in enumerate(scores.items())}
    files = {}
    files["parquet"] = d / "wide.parquet"
    pd.DataFrame({"video_id": list(keyed), "scores": [s.tolist() for s in keyed.values()]}) \
        .to_parquet(files["parquet"])
    files["pglsum"] = d / "pgl_sum_epoch_9.json"  # {key: [scores]}
    files["pglsum"].write_text(json.dumps({k: s.tolist() for k, s in keyed.items()}))
    frames, summaries = {}, {}
    for k, s in scores.items():
        lab = load_labels(store, ids[k])
        frames[k] = upsample_scores(s, lab["picks"], lab["n_frames"])
        summaries[k] = select_keyshots(s, lab["picks"], lab["n_frames"], lab["change_points"])[0]
    files["csv-frames"] = d / "frames.txt"  # long form, one row per frame, rows shuffled
    long = pd.concat([pd.DataFrame({"video": k, "frame": np.arange(len(f)), "score": f})
                      for k, f in frames.items()]).sample(frac=1.0, random_state=0)
    long.to_csv(files["csv-frames"], index=False)
    files["summaries"] = d / "summaries.json"  # records with ready-made summaries
    files["summaries"].write_text(json.dumps([{"key": k, "summary": s.tolist()}
                                              for k, s in summaries.items()]))
    files["csv-wide"] = d / "wide.csv"  # a CSV list cell; video_3 one score short
    pd.DataFrame({"video_id": list(scores), "scores": [
        " ".join(map(str, s[:-1] if k == "video_3" else s)) for k, s in scores.items()]}) \
        .to_csv(files["csv-wide"], index=False)
    run = d / "vsum-run"
    write_run_json(run, {"head": "dsn", "features": "googlenet", "dataset": "tvsum",
                         "setting": "canonical", "store": store})
    write_predictions(run, 0, 0, {ids[k]: s for k, s in scores.items()},
                      {"head": "dsn", "features": "googlenet", "dataset": "tvsum",
                       "setting": "canonical", "store": store})
    files["run"] = run
    return {k: str(v) for k, v in files.items()}


def test_tables_and_summaries_beside_a_vsum_run(dataset, tmp_path, dask_client):
    """The same scores as a vsum run, a Parquet table, PGL-SUM JSON, frame scores (long CSV) and
    ready-made summaries (JSON) give the run's F; a short score vector and a file of no known
    format are one line each, and the rest is evaluated."""
    h5, store = dataset
    f = _write_tables(tmp_path, h5, store)
    junk = tmp_path / "notes.txt"
    junk.write_text("these are not predictions\n")
    names = ["parquet", "pglsum", "csv-frames", "summaries", "csv-wide", "junk"]
    args = [f["run"], "--predictions", *[f[n] for n in names[:-1]], str(junk)]
    for n in names:
        args += ["--name", n]
    r = _evaluate([*args, "--store", store, "--report", str(tmp_path / "r"), "--curves", "0"],
                  dask_client.scheduler.address)
    assert r.returncode == 1, r.stderr[-2000:]
    err = r.stderr.splitlines()
    assert [e for e in err if "notes.txt" in e] == [
        f"not a predictions file vsum reads (expected a DR-DSN-style result h5, or a "
        f"Parquet/CSV/JSON table of video key -> scores or summary) ({junk})"]
    short = [e for e in err if e.startswith("csv-wide v03")]
    assert len(short) == 1 and "scores match neither the" in short[0], err
    per_video = pd.read_parquet(tmp_path / "r" / "per_video.parquet")
    run_f = _values(per_video, "vsum-run", "f1_avg")
    assert len(run_f) == N_VIDEOS and run_f.std() > 0
    for name in ("parquet", "pglsum", "csv-frames", "summaries"):
        np.testing.assert_allclose(_values(per_video, name, "f1_avg"), run_f, rtol=1e-12)
        np.testing.assert_allclose(_values(per_video, name, "diversity"),
                                   _values(per_video, "vsum-run", "diversity"), rtol=1e-9)
    csv_wide = _values(per_video, "csv-wide", "f1_avg")
    assert "v03" not in csv_wide.index and len(csv_wide) == N_VIDEOS - 1
    np.testing.assert_allclose(csv_wide, run_f.drop("v03"), rtol=1e-6)
    # frame scores are the held step scores: frame-level rank is the same, pick level too
    for m in ("kendall_tau_frame", "kendall_tau_pick"):
        np.testing.assert_allclose(_values(per_video, "csv-frames", m),
                                   _values(per_video, "pglsum", m), rtol=1e-9)
    assert _values(per_video, "summaries", "kendall_tau_frame").isna().all()  # no scores
    ext = json.loads((tmp_path / "r" / "external.json").read_text())
    assert ext["junk"]["files"][0]["format"] is None
    assert {n: ext[n]["files"][0]["format"] for n in names[:-1]} == {
        "parquet": "parquet", "pglsum": "json", "csv-frames": "csv", "summaries": "json",
        "csv-wide": "csv"}


def test_formats_and_keys_read_directly(dataset, tmp_path):
    """Detection and key resolution without Dask: dataset-qualified keys, eccv16 keys, ids;
    an eccv16 dataset h5 given as predictions, and a table without a key column, are refused."""
    h5, store = dataset
    f = _write_tables(tmp_path, h5, store)
    index = StoreIndex([store])
    ext = read_external(f["pglsum"])
    assert ext.format == "json" and len(ext.entries) == N_VIDEOS
    res = resolve(ext, index)
    assert sorted(ref.video_id for ref, _ in res.preds) == [f"v{k:02d}" for k in range(1, 9)]
    assert res.extra == [] and {e.kind for _, e in res.preds} == {"scores"}
    frames = read_external(f["csv-frames"])
    assert frames.format == "csv" and min(len(e.values) for e in frames.entries) >= 900
    with pytest.raises(InputError, match="eccv16 dataset h5.*import-h5"):
        read_external(h5)
    bad = tmp_path / "nokey.json"
    bad.write_text(json.dumps([{"clip": "x", "scores": [1, 2]}]))
    with pytest.raises(InputError, match="no video key column"):
        read_external(bad)


def test_nothing_to_evaluate_is_exit_2_with_the_reasons(dataset, tmp_path, capsys):
    h5, store = dataset
    junk = tmp_path / "junk.bin"
    junk.write_bytes(bytes(range(256)))
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["video_77/score"] = np.ones(5, np.float32)
    code = vsum(["evaluate", "--predictions", str(junk), str(tmp_path / "other.h5"),
                 "--store", store, "--report", str(tmp_path / "r")])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3, err
    assert err[0].startswith("not a predictions file") and err[0].endswith(f"({junk})")
    assert "video_77: no video with this key" in err[1]
    assert err[2] == f"vsum evaluate: nothing to evaluate: no prediction matched a video of the store ({store})"
    assert vsum(["evaluate", "--report", str(tmp_path / "r")]) == 2  # neither runs nor files
    assert vsum(["evaluate", "--predictions", str(junk), "--report", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "give run folders, --predictions files, or both" in err and "needs --store" in err
