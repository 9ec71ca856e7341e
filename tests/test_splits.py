"""Split readers on the three public formats, and generated k-fold / random / settings."""
import json

import pytest

from stores.location import open_root
from stores.splits import (
    StoreIndex,
    kfold_splits,
    make_splits,
    random_splits,
    read_splits,
    write_splits,
)


def _fake_store(path, dataset, names):
    """Complete groups carrying only the attrs splits need (dataset, eccv16_key)."""
    root = open_root(str(path), "a")
    for k, name in enumerate(names):
        g = root.create_group(f"videos/{name}")
        g.attrs.update({"dataset": dataset, "eccv16_key": f"video_{k + 1}", "complete": True})
    return str(path)


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    d = tmp_path_factory.mktemp("splits")
    tv = _fake_store(d / "tv.zarr", "tvsum", [f"tv{k + 1:02d}" for k in range(50)])
    sm = _fake_store(d / "sm.zarr", "summe", [f"sm{k + 1:02d}" for k in range(25)])
    return tv, sm


def test_pgl_sum_json_plain_keys(stores, shared_data):
    sp = read_splits(shared_data / "splits/pgl-sum/tvsum_splits.json", [stores[0]])
    raw = json.loads((shared_data / "splits/pgl-sum/tvsum_splits.json").read_text())
    assert len(sp) == 5 and len(sp[0].test) == 10 and len(sp[0].train) == 40
    # video_N -> the store video whose eccv16_key is video_N
    assert sp[0].test_ids == [f"tv{int(k.split('_')[1]):02d}" for k in raw[0]["test_keys"]]


def test_vasnet_json_dataset_from_file_name_with_two_stores(stores, shared_data):
    sp = read_splits(shared_data / "splits/vasnet/summe_splits.json", list(stores))
    assert all(r.store == stores[1] for s in sp for r in s.train + s.test)
    assert len(sp[0].test) + len(sp[0].train) == 25


def test_dsnet_yaml_prefixed_keys_and_missing_datasets(stores, shared_data):
    sp = read_splits(shared_data / "splits/dsnet/tvsum.yml", list(stores))
    assert sp[0].test_ids[0] == "tv35"  # ../datasets/eccv16_dataset_tvsum_google_pool5.h5/video_35
    with pytest.raises(ValueError, match="not in the stores"):
        read_splits(shared_data / "splits/dsnet/tvsum_aug.yml", list(stores))  # ovp, youtube
    aug = read_splits(shared_data / "splits/dsnet/tvsum_aug.yml", list(stores), missing="skip")
    assert len(aug[0].missing) == 89  # 50 OVP + 39 YouTube keys
    assert {r.store for r in aug[0].train} == set(stores)


def test_public_splits_leave_videos_untested(stores, shared_data):
    sp = read_splits(shared_data / "splits/dsnet/tvsum.yml", list(stores))
    tested = {v for s in sp for v in s.test_ids}
    assert len(tested) < 50  # the README's warning, checked


def test_kfold_tests_every_video_exactly_once():
    items = list(range(23))
    folds = kfold_splits(items, k=5, seed=3)
    tests = [v for _, te in folds for v in te]
    assert sorted(tests) == items
    for tr, te in folds:
        assert not set(tr) & set(te) and len(tr) + len(te) == 23
        assert len(te) in (4, 5)
    with pytest.raises(ValueError, match="k-fold"):
        kfold_splits(items[:3], k=5)


def test_random_splits_are_80_20_resamples():
    sp = random_splits(list(range(50)), n=5, test_frac=0.2, seed=0)
    assert all(len(te) == 10 and len(tr) == 40 for tr, te in sp)
    assert sp[0][1] != sp[1][1]


def test_settings(stores, tmp_path):
    tv, sm = stores
    canon = make_splits(tv, setting="canonical", k=5)
    assert sorted(v for s in canon for v in s.test_ids) == sorted(StoreIndex([tv]).by_id[k].video_id
                                                                  for k in StoreIndex([tv]).by_id)
    aug = make_splits(tv, [sm], setting="augmented", k=5)
    assert all(len(s.train) == 40 + 25 and len(s.test) == 10 for s in aug)
    tr = make_splits(tv, [sm], setting="transfer")
    assert len(tr) == 1 and len(tr[0].test) == 50 and len(tr[0].train) == 25
    # our own form round-trips through the reader
    path = write_splits(tmp_path / "own.json", aug, datasets={tv: "tvsum", sm: "summe"})
    back = read_splits(path, [tv, sm])
    assert [s.test for s in back] == [s.test for s in aug]
    assert sorted(back[0].train) == sorted(aug[0].train)
