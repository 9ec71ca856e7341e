"""The single trainer: artefacts, repeatability, selection modes, 4-D features, the loader/predict
hooks, config overrides, and the dataset it reads through."""
import dataclasses
import json

import numpy as np
import pytest
import torch

from heads.base import HeadSpec
from heads.config import parse_set_options, resolve_config
from heads.dsn import DSNConfig
from pipeline.errors import UsageError
from heads.trainer import (
    CHECKPOINT,
    CONFIG_JSON,
    LEGACY_DIR,
    METRICS_JSONL,
    TrainOptions,
    load_checkpoint,
    run_dir_for,
    train_split,
)
from stores.dataset import StoreInputError, VideoDataset, collate
from stores.predictions import read_predictions, split_done
from stores.reader import FeatureStore
from stores.synthetic import build_synthetic_store

torch.set_num_threads(1)
SMALL = {"hidden": "8", "lr": "1e-3"}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("trainer") / "s.zarr")
    ids = build_synthetic_store(path, n_videos=6, seed=11, min_steps=30, max_steps=60,
                                feature_shapes={"googlenet": (32,), "st3d": (4, 2, 2)})
    return path, ids


def _opts(**kw) -> TrainOptions:
    return TrainOptions(epochs=kw.pop("epochs", 2), overrides={**SMALL, **kw.pop("overrides", {})}, **kw)


def test_artefacts_and_self_describing_checkpoint(store, tmp_path):
    path, ids = store
    summary = train_split("dsn", path, ids[:4], ids[4:], tmp_path, 1, 7, _opts(),
                          meta={"dataset": "syn"})
    out = run_dir_for(tmp_path, 1, 7)
    rows = [json.loads(line) for line in (out / METRICS_JSONL).read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    assert all(np.isfinite(r["loss"]) and r["steps"] == 4 and 0 <= r["sec_data"] <= r["sec_epoch"]
               for r in rows)
    cfg = json.loads((out / CONFIG_JSON).read_text())
    assert cfg["config"]["hidden"] == 8 and cfg["config"]["lr"] == 1e-3 and cfg["epochs"] == 2
    assert cfg["train_keys"] == ids[:4] and cfg["test_keys"] == ids[4:]
    df = read_predictions(tmp_path)
    assert sorted(df["video_id"]) == ids[4:] and split_done(tmp_path, 1, 7)
    assert (df["selection"] == "fixed-epochs").all() and (df["dataset"] == "syn").all()
    assert (df["head"] == "dsn").all() and (df["store"] == path).all()
    fs = FeatureStore(path)
    for v, s in zip(df["video_id"], df["scores"]):
        assert len(s) == len(fs.load(v, "picks"))
    model, spec, cfg_obj, ckpt = load_checkpoint(out / CHECKPOINT)
    assert {"head", "config", "feature_spec", "state_dict"} <= set(ckpt) and spec.name == "dsn"
    assert ckpt["feature_spec"]["name"] == "googlenet" and ckpt["feature_spec"]["shape"] == [32]
    assert cfg_obj.hidden == 8
    x = torch.from_numpy(fs.load(ids[4], "features/googlenet"))[None]
    again = model(x, torch.ones(x.shape[:2], dtype=torch.bool))[0].detach().numpy()
    np.testing.assert_allclose(again, df.set_index("video_id").loc[ids[4], "scores"], atol=1e-6)
    assert summary["selection"] == "fixed-epochs" and summary["best_epoch"] == 2


def test_same_seed_repeats_other_seed_differs(store, tmp_path):
    path, ids = store
    for run, seed in (("a", 0), ("b", 0), ("c", 1)):
        train_split("dsn", path, ids[:4], ids[4:], tmp_path / run, 0, seed, _opts())
    a, b, c = (read_predictions(tmp_path / r).sort_values("video_id") for r in "abc")
    for sa, sb, sc in zip(a["scores"], b["scores"], c["scores"]):
        np.testing.assert_array_equal(sa, sb)
        assert not np.array_equal(sa, sc)


def test_validation_selection_uses_train_keys_only(store, tmp_path):
    path, ids = store
    s = train_split("dsn_sup", path, ids[:4], ids[4:], tmp_path, 0, 0,
                    _opts(epochs=3, val_fraction=0.25))
    cfg = json.loads((run_dir_for(tmp_path, 0, 0) / CONFIG_JSON).read_text())
    assert len(cfg["val_keys"]) == 1 and set(cfg["val_keys"]) <= set(ids[:4])
    assert not set(cfg["val_keys"]) & set(cfg["train_keys"])
    rows = [json.loads(line) for line in (run_dir_for(tmp_path, 0, 0) / METRICS_JSONL).open()]
    best = int(np.nanargmax([r["val_score"] for r in rows])) + 1
    assert s["selection"] == "validation" and s["best_epoch"] == best
    assert (read_predictions(tmp_path)["selection"] == "validation").all()


def test_legacy_best_test_is_written_apart_and_labelled(store, tmp_path):
    path, ids = store
    s = train_split("dsn", path, ids[:4], ids[4:], tmp_path, 0, 0, _opts(legacy_best_test=True))
    main, legacy = read_predictions(tmp_path), read_predictions(tmp_path / LEGACY_DIR)
    assert (main["selection"] == "fixed-epochs").all()
    assert (legacy["selection"] == "legacy-best-test").all()
    assert legacy["run"].iloc[0] != main["run"].iloc[0]
    rows = [json.loads(line) for line in (run_dir_for(tmp_path, 0, 0) / METRICS_JSONL).open()]
    assert s["legacy_best_epoch"] == int(np.nanargmax([r["legacy_test_score"] for r in rows])) + 1


def test_four_d_features(store, tmp_path):
    path, ids = store
    train_split("dsn", path, ids[:4], ids[4:], tmp_path, 0, 0, _opts(features="st3d", epochs=1))
    ckpt = torch.load(run_dir_for(tmp_path, 0, 0) / CHECKPOINT, weights_only=True)
    assert ckpt["feature_spec"]["shape"] == [4, 2, 2] and ckpt["feature_spec"]["dtype"] == "float16"
    assert len(read_predictions(tmp_path)) == 2


@dataclasses.dataclass(frozen=True)
class _HookCfg:
    epochs: int = 2
    lr: float = 0.1


class _Bias(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.b = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x, mask=None):
        return torch.sigmoid(self.b).expand(x.shape[:2])


def test_make_loader_and_predict_hooks_replace_the_in_memory_path(store, tmp_path):
    path, ids = store
    calls = {"loader": 0, "batches": 0, "predict": []}

    class Loader:  # re-iterable, like a DataLoader
        def __iter__(self):
            for v in ids[:4]:
                calls["batches"] += 1
                yield {"x": torch.zeros(1, 5, 3), "mask": torch.ones(1, 5, dtype=torch.bool),
                       "gtscore": torch.ones(1, 5), "video_id": [v]}

    def make_loader(fs, video_ids, cfg, train):
        assert isinstance(fs, FeatureStore) and video_ids == ids[:4] and train
        calls["loader"] += 1
        return Loader()

    def predict(model, fs, vid, cfg):
        calls["predict"].append(vid)
        return np.full(len(fs.load(vid, "picks")), float(torch.sigmoid(model.b)), np.float32)

    def loss(model, batch, cfg, state):
        return torch.nn.functional.mse_loss(model(batch["x"]), batch["gtscore"]), {}

    spec = HeadSpec(name="hooked", config_cls=_HookCfg, build=lambda cfg, shape: _Bias(),
                    loss=loss, make_optimizer=lambda m, c: (torch.optim.SGD(m.parameters(), lr=c.lr), None),
                    make_loader=make_loader, predict=predict)
    train_split(spec, path, ids[:4], ids[4:], tmp_path, 0, 0, TrainOptions())
    assert calls["loader"] == 1 and calls["batches"] == 8 and calls["predict"] == ids[4:]
    df = read_predictions(tmp_path)
    assert (df["head"] == "hooked").all()
    assert all(s[0] > 0.5 for s in df["scores"])  # the bias moved towards gtscore = 1


def test_resolve_config_parses_by_field_type():
    cfg = resolve_config(DSNConfig, parse_set_options(
        ["lr=3e-4", "hidden=64", "supervised=true", "div_temporal_distance=none", "epochs=1e1"]))
    assert (cfg.lr, cfg.hidden, cfg.supervised, cfg.div_temporal_distance, cfg.epochs) == \
        (3e-4, 64, True, None, 10)
    with pytest.raises(UsageError, match="hiden.*known: .*hidden"):
        resolve_config(DSNConfig, {"hiden": "3"})
    with pytest.raises(UsageError, match="supervised"):
        resolve_config(DSNConfig, {"supervised": "maybe"})
    with pytest.raises(UsageError, match="key=value"):
        parse_set_options(["lr"])


def test_dataset_caches_pads_and_names_bad_input(store):
    path, ids = store
    ds = VideoDataset(path, ids[:2], "st3d")
    assert ds.cached and ds.feature_shape() == (4, 2, 2)
    assert ds.get(ids[0]) is ds.get(ids[0])  # cached: read once
    assert not VideoDataset(path, ids[:2], "st3d", cache_bytes=0).cached
    batch = collate([ds.get(ids[0]), ds.get(ids[1])])
    n0, n1 = (len(ds.get(v)["x"]) for v in ids[:2])
    assert batch["x"].shape == (2, max(n0, n1), 4, 2, 2) and batch["x"].dtype == torch.float32
    assert batch["mask"].sum(1).tolist() == [n0, n1] and batch["has_gtscore"].all()
    with pytest.raises(StoreInputError, match="no features 'i3d'"):
        VideoDataset(path, ids[:1], "i3d")
    with pytest.raises(StoreInputError, match="not complete"):
        VideoDataset(path, ["nope"], "googlenet")
