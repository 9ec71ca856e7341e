"""What one training run is — its stores, setting, splits, config and ``run.json`` — before any
work starts. Shared by ``vsum train`` (jobs/train.py) and ``vsum reproduce`` (jobs/reproduce.py).

Settings (CSNet Table 1; 3DST-UNet-RL §IV.E), over stores whose videos record a dataset name
(``vsum store import-h5``, the importers; a store without one is named after its file):
    canonical   train and test on ``test_dataset``
    augmented   test folds of ``test_dataset``; its other videos plus every other dataset train
    transfer    train on every other dataset, test on all of ``test_dataset``
Split specs: ``kfold:K`` / ``random:K`` generate the setting's splits; a split file (DSNet
``.yml``, VASNet ``_aug`` JSON, PGL-SUM JSON, our own) resolves its keys against the stores, and
its train/test datasets must match the setting it is run as.

A split's train items are video ids of the test store or ``(store URL, id)`` pairs of the
others; its test ids are all in the test store (predictions name one store). Stores are
``stores.Store`` values (paths and URLs become one here, reading ``$VSUM_STORAGE_OPTIONS`` in the
driver); run.json records their URLs.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from stores.store import Store

SAME_RUN_KEYS = ("head", "features", "stores", "store", "setting", "splits", "split_seed", "config",
                 "val_fraction", "preset")


@dataclass
class RunPlan:
    head: str
    out: Path
    info: dict  # run.json
    pairs: list[tuple[list, list[str]]]  # per split: (train items, test ids)
    overrides: dict  # head config overrides: the preset's, then the caller's
    stores: list[Store]  # every store of the run (their credentials travel with them to tasks)

    @property
    def test_store(self) -> Store:
        """The Store whose videos are tested (run.json's ``store``)."""
        return next(s for s in self.stores if s.url == self.info["store"])


def as_stores(stores) -> list[Store]:
    """One Store, path or URL, or a list of them -> [Store]."""
    return [Store.at(stores)] if isinstance(stores, (str, Path, Store)) else [Store.at(s) for s in stores]


def test_side(stores: list[Store], test_dataset: str | None):
    """-> (StoreIndex, test dataset name, the URL of the one store holding its videos)."""
    from stores.splits import StoreIndex

    index = StoreIndex(stores)
    name = test_dataset or index.only_dataset()
    if name is None:
        raise ValueError(f"the stores hold several datasets ({', '.join(sorted(index.datasets))}): "
                         "name the one to test with --test-dataset")
    refs = index.datasets.get(name)
    if not refs:
        raise ValueError(f"no videos of dataset {name!r} in the stores "
                         f"(have: {', '.join(sorted(index.datasets)) or 'none'})")
    holders = sorted({r.store for r in refs})
    if len(holders) > 1:
        raise ValueError(f"dataset {name!r} is spread over several stores ({', '.join(holders)}); "
                         "tested videos must come from one store")
    return index, name, holders[0]


def resolve_splits(spec: str, stores, test_dataset: str | None = None, setting: str = "canonical",
                   split_seed: int = 0, missing: str = "error") -> list[tuple[list, list[str]]]:
    """``kfold:K`` | ``random:K`` | a split file -> [(train items, test ids)] (see the module
    docstring). ``stores``: one Store (or path) or a list."""
    from stores.splits import dataset_splits, read_splits

    stores = as_stores(stores)
    index, name, test_store = test_side(stores, test_dataset)
    kind, _, k = spec.partition(":")
    if kind in ("kfold", "random") and k.isdigit():
        splits = dataset_splits(index, name, setting, k=int(k), seed=split_seed, form=kind)
    elif Path(spec).is_file():
        splits = read_splits(spec, index, missing=missing, fallback_dataset=name)
    else:
        raise ValueError(f"--splits {spec!r}: expected kfold:K, random:K or an existing split file")
    dataset_of = {r: d for d, refs in index.datasets.items() for r in refs}
    out = []
    for i, s in enumerate(splits):
        if not s.train or not s.test:
            raise ValueError(f"--splits {spec}: split {i} has {len(s.train)} train and "
                             f"{len(s.test)} test videos in the stores")
        check_setting(spec, i, setting, name, [dataset_of[r] for r in s.train],
                      [dataset_of[r] for r in s.test])
        train = [r.video_id if r.store == test_store else [r.store, r.video_id] for r in s.train]
        out.append((train, [r.video_id for r in s.test]))
    return out


def check_setting(spec: str, i: int, setting: str, test_dataset: str, train_ds: list[str],
                  test_ds: list[str]) -> None:
    """A split must test only ``test_dataset`` and train on what its setting says."""
    if set(test_ds) != {test_dataset}:
        raise ValueError(f"--splits {spec}: split {i} tests videos of {sorted(set(test_ds))}, "
                         f"not only {test_dataset!r}")
    own, other = test_dataset in train_ds, bool(set(train_ds) - {test_dataset})
    want = {"canonical": (True, False), "augmented": (True, True), "transfer": (False, True)}
    if (own, other) != want[setting]:
        raise ValueError(f"--splits {spec}: split {i} trains on {sorted(set(train_ds))}, which is "
                         f"not the {setting} setting for {test_dataset!r}")


def run_info(head: str, stores: list[Store], test_store: str, name: str, splits: str, o: dict) -> dict:
    from heads.base import get_head
    from heads.config import config_dict
    from heads.trainer import TrainOptions, resolve_head_config

    spec = get_head(head)
    cfg = resolve_head_config(spec, TrainOptions(epochs=o["epochs"], lr=o["lr"],
                                                 overrides=dict(o["overrides"] or {})))
    return {"head": head, "features": o["features"] or spec.default_features,
            "dataset": name, "setting": o["setting"], "store": str(test_store),
            "stores": [s.url for s in stores], "splits": splits, "split_seed": o["split_seed"],
            "config": config_dict(cfg), "preset": o["preset"] or "default",
            "val_fraction": o["val_fraction"],
            "selection": "validation" if o["val_fraction"] > 0 else "fixed-epochs"}


def check_same_run(out: Path, info: dict) -> None:
    from stores.predictions import read_run_json

    if not (out / "run.json").exists():
        return
    old = read_run_json(out)
    old.setdefault("stores", [old.get("store")])  # run.json written before several stores
    old.setdefault("setting", "canonical")
    old.setdefault("preset", "default")
    diff = [k for k in SAME_RUN_KEYS if json.dumps(old.get(k), sort_keys=True, default=str)
            != json.dumps(info.get(k), sort_keys=True, default=str)]
    if diff:
        raise ValueError(f"{out}/run.json describes a different run ({', '.join(diff)} differ); "
                         "use another --out to start a new run")


def plan_run(head: str, stores, splits: str, out: str | Path, o: dict) -> RunPlan:
    """Resolve everything about a run and check it against an existing RUN/run.json.
    ``o``: jobs/train.py's options (DEFAULTS filled in)."""
    from heads.base import get_head
    from heads.presets import preset_overrides

    get_head(head)  # unknown head: a clear error before any work
    stores = as_stores(stores)
    o = {**o, "overrides": {**preset_overrides(head, o["preset"]), **dict(o["overrides"] or {})}}
    _, name, test_store = test_side(stores, o["test_dataset"])
    info = run_info(head, stores, test_store, name, splits, o)
    check_same_run(Path(out), info)
    pairs = resolve_splits(splits, stores, name, o["setting"], o["split_seed"], o["missing_keys"])
    info.update(n_splits=len(pairs), seeds=list(o["seeds"]),
                train_datasets=_train_datasets(pairs, stores, test_store))
    return RunPlan(head, Path(out), info, pairs, o["overrides"], stores)


def _train_datasets(pairs, stores, test_store: str) -> list[str]:
    """Datasets the run trains on (recorded in run.json)."""
    from stores.splits import StoreIndex

    index = StoreIndex(stores)
    dataset_of = {(r.store, r.video_id): d for d, refs in index.datasets.items() for r in refs}
    return sorted({dataset_of.get((test_store, it) if isinstance(it, str) else tuple(it), "?")
                   for train, _ in pairs for it in train})
