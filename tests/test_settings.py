"""Several stores in one run: the canonical / augmented / transfer settings, prefixed split
files resolved against the recorded dataset names, and `vsum train --store A --store B …`."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from jobs.train_plan import resolve_splits
from stores.h5io import import_h5
from stores.predictions import read_predictions, read_run_json
from stores.reader import FeatureStore
from stores.splits import StoreIndex, read_splits
from stores.synthetic import build_synthetic_store


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """Three synthetic stores named like datasets (the name comes from the file: no attrs);
    their video ids collide on purpose (synth_000 … in each)."""
    d = tmp_path_factory.mktemp("settings")
    out = {}
    for k, (name, n) in enumerate((("tvsum", 4), ("summe", 3), ("ovp", 2))):
        path = str(d / f"{name}.zarr")
        build_synthetic_store(path, n_videos=n, seed=k, min_steps=20, max_steps=30,
                              feature_shapes={"googlenet": (8,)})
        out[name] = path
    return out


def _datasets_of(items, stores, test_store):
    by_path = {v: k for k, v in stores.items()}
    return {by_path[test_store] if isinstance(it, str) else by_path[it[0]] for it in items}


def test_generated_splits_follow_the_setting(stores):
    paths = list(stores.values())
    canon = resolve_splits("kfold:2", paths, "summe", "canonical")
    aug = resolve_splits("kfold:2", paths, "summe", "augmented")
    trans = resolve_splits("kfold:2", paths, "summe", "transfer")
    assert [_datasets_of(tr, stores, stores["summe"]) for tr, _ in canon] == [{"summe"}] * 2
    assert [_datasets_of(tr, stores, stores["summe"]) for tr, _ in aug] == [{"summe", "tvsum", "ovp"}] * 2
    assert len(trans) == 1 and _datasets_of(trans[0][0], stores, stores["summe"]) == {"tvsum", "ovp"}
    assert sorted(trans[0][1]) == FeatureStore(stores["summe"]).video_ids()  # all of SumMe tested
    # same test folds in canonical and augmented; the others' 6 videos join every training set
    assert [te for _, te in canon] == [te for _, te in aug]
    assert all(len(tr_a) == len(tr_c) + 6 for (tr_a, _), (tr_c, _) in zip(aug, canon))
    with pytest.raises(ValueError, match="--test-dataset"):
        resolve_splits("kfold:2", paths)
    with pytest.raises(ValueError, match="augmented setting needs other"):
        resolve_splits("kfold:2", [stores["summe"]], "summe", "augmented")


def test_a_split_file_must_match_the_setting_it_is_run_as(stores, tmp_path):
    f = tmp_path / "own.json"  # our own form, keys <dataset>/<id>
    f.write_text(json.dumps([{"train_keys": ["tvsum/synth_000", "ovp/synth_001"],
                              "test_keys": ["summe/synth_000", "summe/synth_002"]}]))
    paths = list(stores.values())
    (train, test), = resolve_splits(str(f), paths, "summe", "transfer")
    assert train == [[stores["tvsum"], "synth_000"], [stores["ovp"], "synth_001"]]
    assert test == ["synth_000", "synth_002"]
    with pytest.raises(ValueError, match="not the canonical setting for 'summe'"):
        resolve_splits(str(f), paths, "summe", "canonical")
    with pytest.raises(ValueError, match="tests videos of"):
        resolve_splits(str(f), paths, "tvsum", "transfer")


def test_public_prefixed_keys_resolve_against_imported_dataset_names(tmp_path, shared_data):
    """DSNet .yml and VASNet _aug keys name the h5 file; import-h5 records the dataset from the
    eccv16 file name, so they resolve without --dataset."""
    sys.path.insert(0, os.path.dirname(__file__))
    from eccv16_h5 import write_eccv16_datasets

    h5 = write_eccv16_datasets(tmp_path / "h5", shared_data,
                               sizes={"tvsum": 3, "summe": 2, "ovp": 2, "youtube": 2}, max_frames=300)
    stores = {}
    for name, path in h5.items():
        stores[name] = str(tmp_path / f"{name}-store.zarr")  # a stem that names no dataset
        import_h5(str(path), stores[name])
    index = StoreIndex(list(stores.values()))
    assert sorted(index.datasets) == ["ovp", "summe", "tvsum", "youtube"]
    sp = read_splits(shared_data / "splits/dsnet/summe_aug.yml", index, missing="skip")
    for s in sp:
        assert {r.store for r in s.test} <= {stores["summe"]}
        assert {r.store for r in s.train} <= set(stores.values())
    vas = read_splits(shared_data / "splits/vasnet/tvsum_aug_splits.json", index, missing="skip")
    # VASNet's eccv16_dataset_ovp_google_pool5/video_1 -> the OVP store's first video
    ovp_first = FeatureStore(stores["ovp"]).attrs(index.by_key[("ovp", "video_1")].video_id)
    assert ovp_first["eccv16_key"] == "video_1" and ovp_first["dataset"] == "ovp"
    # the file's own keyframes are kept: the gtsummary target reads them
    from stores.targets import GTSUMMARY, supervised_target

    fs = FeatureStore(stores["tvsum"])
    vid = fs.video_ids()[0]
    assert fs.has(vid, GTSUMMARY)
    assert set(np.unique(supervised_target(fs, vid, "gtsummary"))) <= {0.0, 1.0}
    assert any(r.store == stores["ovp"] for s in vas for r in s.train)


def test_vsum_train_transfer_across_stores(stores, tmp_path):
    run = tmp_path / "run"
    args = [sys.executable, "-m", "jobs.cli", "train", "dsn_sup", "--store", stores["tvsum"],
            "--store", stores["summe"], "--store", stores["ovp"], "--setting", "transfer",
            "--test-dataset", "summe", "--splits", "kfold:2", "--out", str(run), "--epochs", "1",
            "--set", "hidden=8", "--preset", "published", "--no-ray", "--no-eval"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert res.returncode == 0, res.stderr[-2000:]
    info = read_run_json(run)
    assert info["setting"] == "transfer" and info["dataset"] == "summe"
    assert info["train_datasets"] == ["ovp", "tvsum"] and info["store"] == stores["summe"]
    assert info["config"]["sup_loss"] == "mle" and info["config"]["reward_scale"] == 0.5
    df = read_predictions(run)
    assert set(df["setting"]) == {"transfer"} and set(df["dataset"]) == {"summe"}
    assert sorted(df["video_id"]) == FeatureStore(stores["summe"]).video_ids()



def test_several_datasets_need_a_test_dataset(stores, tmp_path, capsys):
    from jobs.cli import main

    code = main(["train", "dsn", "--store", stores["tvsum"], "--store", stores["summe"],
                 "--out", str(tmp_path / "x"), "--no-ray"])
    err = capsys.readouterr().err
    assert code == 2 and "--test-dataset" in err and len(err.strip().splitlines()) == 1


def test_videos_of_other_stores_are_read_with_their_own_store_values(stores):
    """A ``<store>::<id>`` key opens that store with the options of the Store value the run
    was given; a store not given is read with the primary's options."""
    from stores.dataset import MultiStoreDataset, ref_key
    from stores.store import Store

    tv, su, ovp = stores["tvsum"], stores["summe"], stores["ovp"]
    keys = ["synth_000", ref_key(su, "synth_001", tv), ref_key(ovp, "synth_000", tv)]
    data = MultiStoreDataset(Store(tv, {"primary": 1}), keys, "googlenet",
                             others=[Store(su, {"summe": 2})])
    assert {s: p.store.storage_options for s, p in data.parts.items()} == {
        tv: {"primary": 1}, su: {"summe": 2}, ovp: {"primary": 1}}
    item = data.get(keys[1])  # a local store: the options are not used to read it
    assert item["video_id"] == keys[1] and item["x"].shape[1] == 8
