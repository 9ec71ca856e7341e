"""`vsum reproduce PAPER`: the papers' data files, the grid, our-vs-published tables, and the
command end to end on small generated eccv16 h5 files (tests/eccv16_h5.py).

Fast suite: DR-DSN end to end (--quick, 2 folds). Slow (`make test-all`): CSNet, 3DST-UNet-RL
(with an ST3D/I3D store and substituted features) and CRSum (synthetic frame stores), and a
resumed rerun.
"""
import math
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from jobs.reproduce_grid import PAPERS, build_grid, load_paper, missing_inputs
from jobs.reproduce_tables import ours

sys.path.insert(0, os.path.dirname(__file__))
from eccv16_h5 import write_eccv16_datasets  # noqa: E402

QUICK = ["--quick", "--folds", "2", "--workers", "1"]


# -- data files and grid ----------------------------------------------------------------------
@pytest.mark.parametrize("paper", PAPERS)
def test_every_published_cell_is_in_the_grid(paper):
    doc = load_paper(paper)  # read from the installed package (jobs/published/*.yaml)
    grid = build_grid(paper, "kfold:5")
    cells = {(c.table, c.row, c.column): c for c in grid.cells}
    for table in doc["tables"]:
        for row in table["rows"]:
            assert set(row["published"]) == set(table["columns"]), (table["id"], row["row"])
            for col in table["columns"]:
                c = cells[(table["id"], row["row"], col)]
                raw = row["published"][col]
                value = raw.get("value") if isinstance(raw, dict) else raw
                assert c.published == (None if value is None else float(value))
    assert len(grid.cells) == sum(len(t["rows"]) * len(t["columns"]) for t in doc["tables"])
    assert len({r.run_id for r in grid.runs()}) == len(grid.runs())


def test_published_numbers_as_the_papers_print_them():
    csnet = {(c.table, c.row, c.column): c for c in build_grid("csnet", "kfold:5").cells}
    assert csnet[("Table 5", "CSNet", "SumMe A")].published == 52.1
    assert csnet[("Table 2", "Exp. 4: variance loss", "SumMe")].published == 44.9
    # one training run serves the cells that are the same experiment
    same = {csnet[k].run.run_id for k in [("Table 2", "Exp. 8: all three (CSNet)", "SumMe"),
                                          ("Table 3", "CSNet", "SumMe"), ("Table 5", "CSNet", "SumMe C")]}
    assert same == {"csnet--summe--canonical--kfold5"}
    unet = {(c.table, c.row, c.column): c for c in build_grid("unet3d-rl", "kfold:5").cells}
    assert unet[("Table VI", "3DST-UNet_sup", "T")].published == 47.9
    iii = unet[("Table III", "Bi-LSTM", "Sup I3D")]
    assert iii.run.features == "i3d" and ("supervised", "true") in iii.run.overrides
    assert iii.run.splits == "random:1" and ("sequence_model", "bilstm") in iii.run.overrides
    assert dict(unet[("Fig. 5b", "3DST-UNet_sup", "TVSum P")].eval_key)["budget"] == "P"
    assert ("lr", "1e-6") in unet[("Table V", "3DST-UNet_unsup", "A")].run.overrides
    assert unet[("Table IV", "no R_rep, no R_div", "Unsupervised")].run is None
    dsn = {(c.table, c.row, c.column): c for c in build_grid("dr-dsn", "kfold:5").cells}
    assert dsn[("Settings", "DR-DSN_sup", "TVSum A")].published == 59.8
    assert dsn[("Variants", "R-DSN", "SumMe")].published is None  # not in our sources: not guessed
    crsum = build_grid("crsum", "kfold:5").cells
    assert {c.metric for c in crsum} == {"f1_keyframe"}
    assert all(dict(c.eval_key)["protocol"] == "crsum-keyframe" for c in crsum)


def test_missing_inputs_are_named():
    grid = build_grid("unet3d-rl", "kfold:5")
    have = {"tvsum": {"features": {"googlenet"}, "labels": True},
            "summe": {"features": {"googlenet", "st3d"}, "labels": True}}
    reasons = {c.run.run_id: missing_inputs(c.run, have, "googlenet") for c in grid.cells if c.run}
    assert reasons["unet--tvsum--canonical--kfold5"] == "no st3d in the tvsum store(s)"
    assert reasons["unet--summe--canonical--kfold5"] == ""
    assert reasons["unet--summe--augmented--kfold5"] == "no st3d in the tvsum store(s)"
    crsum = build_grid("crsum", "kfold:5", extra_sets={"crsum-11": {"cnn1_weights": "w.pt"}})
    why = {c.run.variant: missing_inputs(c.run, {"tvsum": {"features": {"frames"}}}, "x")
           for c in crsum.cells if c.run and c.run.dataset == "tvsum"}
    assert why["crsum-10"].startswith("needs cnn1_weights") and why["crsum-11"] == ""


def test_ours_is_mean_over_splits_then_seeds():
    rows = []
    for seed, split, video, v in [(0, "0", "a", 0.4), (0, "0", "b", 0.6), (0, "1", "c", 0.2),
                                  (1, "0", "a", 0.5), (1, "0", "b", 0.5), (1, "1", "c", 0.6)]:
        rows.append({"method": "r", "metric": "f1_avg", "seed": seed, "split": split,
                     "video_id": video, "value": v})
    pv = pd.DataFrame(rows)
    o = ours(pv, "r", "f1_avg")
    # seed 0: mean(0.5, 0.2) = 0.35; seed 1: mean(0.5, 0.6) = 0.55
    assert o["mean"] == pytest.approx(45.0) and o["over"] == "seeds"
    assert o["std"] == pytest.approx(100 * math.sqrt(0.02))
    one = ours(pv[pv["seed"] == 0], "r", "f1_avg")
    assert one["over"] == "splits" and one["std"] == pytest.approx(100 * math.sqrt(0.045))
    assert math.isnan(ours(pv, "other", "f1_avg")["mean"])


def test_usage_errors_are_one_line(tmp_path):
    def vsum(*a):
        return subprocess.run([sys.executable, "-m", "jobs.cli", "reproduce", *a],
                              capture_output=True, text=True, timeout=300, check=False)

    res = vsum("csnet", "--out", str(tmp_path / "o"))
    assert res.returncode == 2 and "--h5" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    res = vsum("csnet", "--h5", str(tmp_path / "none"), "--out", str(tmp_path / "o"))
    assert res.returncode == 2 and str(tmp_path / "none") in res.stderr
    res = vsum("csnet", "--h5", str(tmp_path), "--out", str(tmp_path / "o"), "--set", "nope:a=1")
    assert res.returncode == 2 and "no variant 'nope'" in res.stderr


# -- end to end -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def h5_dir(tmp_path_factory, shared_data):
    d = tmp_path_factory.mktemp("eccv16")
    write_eccv16_datasets(d, shared_data)
    return d


def _reproduce(paper: str, h5_dir: Path, out: Path, *extra: str, timeout: int = 1500):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "RAY_DEDUP_LOGS": "0"}
    return subprocess.run([sys.executable, "-m", "jobs.cli", "reproduce", paper, "--h5", str(h5_dir),
                           "--out", str(out), *extra], env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


SETTING_TRAINS = {"canonical": lambda d: {d}, "augmented": lambda d: {"tvsum", "summe", "ovp", "youtube"},
                  "transfer": lambda d: {"tvsum", "summe", "ovp", "youtube"} - {d}}


def _check_tables(paper: str, out: Path) -> pd.DataFrame:
    """Every row of every table is in the Markdown; every ran setting trained where it should."""
    doc = yaml.safe_load((Path(__file__).parents[1] / "jobs/published" / f"{paper}.yaml").read_text())
    folder = out / "tables" / paper
    readme = (folder / "README.md").read_text()
    cells = pd.concat([pd.read_csv(p) for p in sorted(folder.glob("*.csv"))], ignore_index=True)
    for table in doc["tables"]:
        assert f"## {table['id']}:" in readme
        for row in table["rows"]:
            assert f"| {row['row']} |" in readme
            for col, pub in row["published"].items():
                hit = cells[(cells["table"] == table["id"]) & (cells["row"] == row["row"])
                            & (cells["column"] == col)]
                assert len(hit) == 1
                value = pub.get("value") if isinstance(pub, dict) else pub
                if value is not None:
                    assert hit["published"].iloc[0] == pytest.approx(value)
    runs = pd.read_csv(out / "runs.csv", keep_default_na=False)
    for r in runs[runs["status"] == "ran"].itertuples():
        assert set(r.train_datasets.split(",")) == SETTING_TRAINS[r.setting](r.test_dataset), r.run
    return cells


def test_dr_dsn_end_to_end_quick(h5_dir, tmp_path):
    out = tmp_path / "dr-dsn"
    res = _reproduce("dr-dsn", h5_dir, out, *QUICK, "--set", "hidden=16")
    assert res.returncode == 0, res.stderr[-3000:]
    cells = _check_tables("dr-dsn", out)
    assert cells["ours"].notna().all(), cells[cells["ours"].isna()][["row", "column", "note"]]
    ran = pd.read_csv(out / "runs.csv")
    assert set(ran["setting"]) == {"canonical", "augmented", "transfer"} and set(ran["status"]) == {"ran"}
    diff = cells.dropna(subset=["published"])
    assert (diff["difference"] - (diff["ours"] - diff["published"])).abs().max() < 1e-9


@pytest.mark.slow
def test_csnet_end_to_end_quick_and_resume(h5_dir, tmp_path):
    out = tmp_path / "csnet"
    args = (*QUICK, "--set", "hidden=8", "--set", "gan_hidden=8")
    res = _reproduce("csnet", h5_dir, out, *args)
    assert res.returncode == 0, res.stderr[-3000:]
    assert _check_tables("csnet", out)["ours"].notna().all()
    again = _reproduce("csnet", h5_dir, out, *args)
    assert again.returncode == 0 and "34 of 34 (split, seed) tasks already done" in again.stdout


@pytest.mark.slow
def test_unet3d_rl_with_st3d_store_and_substituted_features(h5_dir, tmp_path):
    from stores.synthetic import build_synthetic_store

    tv = tmp_path / "tvsum.zarr"  # the dataset name comes from the file name
    build_synthetic_store(str(tv), n_videos=5, seed=1, min_steps=30, max_steps=50, feature_shapes={
        "googlenet": (32,), "st3d": (8, 2, 2), "i3d": (8, 2, 2)})
    out = tmp_path / "unet"
    res = _reproduce("unet3d-rl", h5_dir, out, *QUICK, "--store", f"tvsum={tv}",
                     "--substitute-features", "googlenet", "--set", "squeeze_channels=4",
                     "--set", "levels=1", "--set", "hidden=8")
    assert res.returncode == 0, res.stderr[-3000:]
    cells = _check_tables("unet3d-rl", out)
    iii = cells[cells["table"] == "Table III"]
    assert iii["ours"].notna().all() and set(iii["features"]) == {"googlenet", "i3d", "st3d"}
    vi = cells[cells["table"] == "Table VI"]  # SumMe has no ST3D: substituted, and labelled
    assert vi["run"].str.endswith("--as-googlenet").all() and vi["ours"].notna().all()
    skipped = cells[(cells["table"] == "Table IV") & (cells["row"] == "no R_rep, no R_div")
                    & (cells["column"] == "Unsupervised")]
    assert skipped["note"].str.contains("no such run").all()


@pytest.mark.slow
def test_crsum_with_frame_stores(h5_dir, tmp_path):
    import torch

    from heads.crsum import CRSumConfig, build_crsum
    from stores.synthetic_frames import SyntheticFramesConfig, make_synthetic_frame_store

    stores = []
    for k, name in enumerate(("tvsum", "summe")):
        path = tmp_path / f"{name}.zarr"
        make_synthetic_frame_store(str(path), SyntheticFramesConfig(n_videos=4, seed=k))
        stores += ["--store", f"{name}={path}"]
    small = {"cnn1_channels": "[4]", "cnn2_channels": "[4]", "lstm_hidden": "4", "mlp_hidden": "4"}
    pre = tmp_path / "cnn1.pt"  # a planted "UCF101" CNN1, so CRSum(1, j) runs too
    torch.save({"state_dict": build_crsum(CRSumConfig(cnn1_channels=(4,), cnn2_channels=(4,)),
                                          (32, 32, 3)).state_dict()}, pre)
    sets = [x for k, v in small.items() for x in ("--set", f"{k}={v}")]
    sets += ["--set", "frame_size=0", "--set", "num_workers=0", "--set", f"crsum-10:cnn1_weights={pre}",
             "--set", f"crsum-11:cnn1_weights={pre}"]
    res = _reproduce("crsum", h5_dir, tmp_path / "crsum", *QUICK, *stores, *sets)
    assert res.returncode == 0, res.stderr[-3000:]
    cells = _check_tables("crsum", tmp_path / "crsum")
    assert cells["ours"].notna().all() and set(cells["metric"]) == {"f1_keyframe"}
    assert cells["published_text"].fillna("").str.contains("SASUM").sum() == 2
