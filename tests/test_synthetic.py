"""The labelled synthetic store: contract shapes, determinism, and that importance is planted in
the features (a linear probe trained on some videos ranks the steps of others)."""
import math

import numpy as np
import pytest

from pipeline.metrics import f_scores_per_user, kendall_tau
from stores import layout
from stores.manifest import read_manifest
from stores.reader import FeatureStore
from stores.synthetic import build_synthetic_store

SHAPES = {"googlenet": (64,), "st3d": (8, 2, 2)}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("syn") / "s.zarr")
    ids = build_synthetic_store(path, n_videos=8, seed=5, feature_shapes=SHAPES,
                                min_steps=60, max_steps=120)
    return path, ids


def test_videos_follow_the_store_contract(store):
    path, ids = store
    fs = FeatureStore(path)
    assert fs.video_ids() == sorted(ids) and len(ids) == 8
    for v in ids:
        a = fs.attrs(v)
        n, t = a["n_frames"], a["n_steps"]
        assert a["complete"] is True and a["source"].startswith("synthetic://") and a["fps"] == 30.0
        assert 60 <= t <= 120 and t == math.ceil(n / 15)
        picks = fs.load(v, layout.PICKS)
        assert picks.dtype == np.int32 and np.array_equal(picks, np.arange(t) * 15)
        g = fs.load(v, "features/googlenet")
        s = fs.load(v, "features/st3d")
        assert g.shape == (t, 64) and g.dtype == np.float32
        assert s.shape == (t, 8, 2, 2) and s.dtype == np.float16
        cps = fs.load(v, layout.CHANGE_POINTS)
        assert cps[0, 0] == 0 and cps[-1, 1] == n - 1
        assert np.array_equal(cps[1:, 0], cps[:-1, 1] + 1)  # contiguous, inclusive ends
        assert np.array_equal(fs.load(v, layout.N_FRAME_PER_SEG), cps[:, 1] - cps[:, 0] + 1)
        us = fs.load(v, layout.USER_SCORES)
        summ = fs.load(v, layout.USER_SUMMARY)
        assert 5 <= len(us) <= 20 and us.shape == summ.shape == (len(us), n)
        assert set(np.unique(us)) <= {1.0, 2.0, 3.0, 4.0, 5.0}
        assert (summ.sum(axis=1) <= int(0.15 * n)).all() and (summ.sum(axis=1) > 0.1 * n).all()
        gt = fs.load(v, layout.GTSCORE)
        assert gt.shape == (t,) and 0 <= gt.min() and gt.max() <= 1
    m = read_manifest(path)
    assert sorted(m["video_id"]) == sorted(ids) and (m["status"] == "complete").all()


def test_same_seed_same_store_other_seed_differs(store, tmp_path):
    path, ids = store
    again = str(tmp_path / "again.zarr")
    other = str(tmp_path / "other.zarr")
    build_synthetic_store(again, n_videos=2, seed=5, feature_shapes=SHAPES, min_steps=60, max_steps=120)
    build_synthetic_store(other, n_videos=2, seed=6, feature_shapes=SHAPES, min_steps=60, max_steps=120)
    a, b, c = FeatureStore(path), FeatureStore(again), FeatureStore(other)
    v = ids[0]
    assert np.array_equal(a.load(v, "features/st3d"), b.load(v, "features/st3d"))
    assert np.array_equal(a.load(v, layout.USER_SUMMARY), b.load(v, layout.USER_SUMMARY))
    assert not np.array_equal(a.load(v, layout.GTSCORE)[:50], c.load(v, layout.GTSCORE)[:50])


def test_annotators_agree_with_the_plant_but_not_with_each_other_exactly(store):
    path, ids = store
    fs = FeatureStore(path)
    taus, pair_f = [], []
    for v in ids:
        taus.append(kendall_tau(fs.load(v, layout.GTSCORE), fs.load(v, "labels/importance")))
        summ = fs.load(v, layout.USER_SUMMARY)
        pair_f.append(np.mean([f_scores_per_user(summ[i], np.delete(summ, i, 0)).mean()
                               for i in range(len(summ))]))
    assert np.mean(taus) > 0.4  # gtscore follows the planted importance
    assert 0.3 < np.mean(pair_f) < 0.95  # annotators overlap, but disagree


def test_importance_is_recoverable_from_features(store):
    """Ridge regression on 6 videos' features predicts the other 2 videos' gtscore ranking."""
    path, ids = store
    fs = FeatureStore(path)
    def xy(v):
        return fs.load(v, "features/googlenet").astype(np.float64), fs.load(v, layout.GTSCORE)
    tr = [xy(v) for v in ids[:6]]
    x = np.concatenate([a for a, _ in tr])
    y = np.concatenate([b for _, b in tr])
    x1 = np.c_[x, np.ones(len(x))]
    w = np.linalg.solve(x1.T @ x1 + 1e-2 * np.eye(x1.shape[1]), x1.T @ y)
    rng = np.random.default_rng(0)
    probe, rand = [], []
    for v in ids[6:]:
        xt, yt = xy(v)
        probe.append(kendall_tau(np.c_[xt, np.ones(len(xt))] @ w, yt))
        rand.append(kendall_tau(rng.random(len(yt)), yt))
    assert np.mean(probe) > 0.3 > np.mean(rand) + 0.2


def test_bad_arguments_raise_clearly(tmp_path):
    with pytest.raises(ValueError, match="n_videos"):
        build_synthetic_store(str(tmp_path / "x.zarr"), n_videos=0)
    with pytest.raises(ValueError, match="min_steps"):
        build_synthetic_store(str(tmp_path / "x.zarr"), n_videos=1, min_steps=50, max_steps=10)


def test_plant_features_onto_labelled_videos(tmp_path):
    """Real-annotation stores have labels but no features: planted ones follow the gtscore level."""
    from stores.synthetic import plant_features

    path = str(tmp_path / "p.zarr")
    ids = build_synthetic_store(path, n_videos=2, seed=1, feature_shapes={"googlenet": (8,)},
                                min_steps=80, max_steps=100)
    assert plant_features(path, name="planted", shape=(32,), seed=3) == ids
    fs = FeatureStore(path)
    assert fs.video_ids() == ids  # complete again after the write
    x = np.concatenate([fs.load(v, "features/planted") for v in ids])
    level = np.concatenate([np.minimum((fs.load(v, layout.GTSCORE) * 8).astype(int), 7) for v in ids])
    assert x.shape == (len(level), 32) and x.dtype == np.float32
    means = {lv: x[level == lv].mean(axis=0) for lv in np.unique(level)}
    keys = sorted(means)
    nearest = np.array(keys)[np.argmin([[np.linalg.norm(r - means[k]) for k in keys] for r in x], axis=1)]
    assert (nearest == level).mean() > 0.8
    assert fs.attrs(ids[0])["weights"]["planted"].startswith("synthetic-from-labels")
