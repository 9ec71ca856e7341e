"""Train/test splits: read the public forms, generate honest ones, across several stores.

Public forms read by ``read_splits`` (all ``[{"train_keys": [...], "test_keys": [...]}, ...]``):
  * PGL-SUM / CA-SUM JSON:  "video_16"                                   (one dataset)
  * VASNet JSON:            "eccv16_dataset_tvsum_google_pool5/video_41"
  * DSNet YAML:             "../datasets/eccv16_dataset_tvsum_google_pool5.h5/video_35"
  * our own JSON/YAML:      "tvsum/AwmHb44_ouw" (dataset/store id) or a plain store id
``video_N`` keys map to store ids through each video's ``eccv16_key`` and ``dataset`` attrs
(TVSum: .mat order; SumMe: ASCII order of names), which the importers record.

Generated splits: ``kfold`` (the default: every video tested exactly once) and ``random``
(the repos' resampled 80/20 form, which leaves some videos never tested); ``dataset_splits``
generates them over several stores by recorded dataset name. Settings:
  canonical   k folds over the target dataset
  augmented   the same test folds; every video of the other stores joins each training set
  transfer    one split: train on all the other stores, test on the whole target
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

SETTINGS = ("canonical", "augmented", "transfer")
_ECCV16 = re.compile(r"eccv16_dataset_([A-Za-z0-9]+?)_google_pool5(?:\.h5)?$")


def eccv16_dataset_name(name: str) -> str | None:
    """'…/eccv16_dataset_tvsum_google_pool5.h5' -> 'tvsum' (None when not that form)."""
    m = _ECCV16.search(Path(str(name)).name)
    return m.group(1).lower() if m else None
_VIDEO_N = re.compile(r"^video_\d+$")


class VideoRef(NamedTuple):
    store: str
    video_id: str


@dataclass
class Split:
    train: list[VideoRef]
    test: list[VideoRef]
    missing: list[str] = field(default_factory=list)  # public keys with no video in the stores

    @property
    def train_ids(self) -> list[str]:
        return [r.video_id for r in self.train]

    @property
    def test_ids(self) -> list[str]:
        return [r.video_id for r in self.test]


class StoreIndex:
    """(dataset, eccv16 key) and (dataset, video id) -> VideoRef over one or more stores
    (``stores.Store`` values, paths/URLs, or opened ``FeatureStore`` readers); a ref names its
    store by URL."""

    def __init__(self, stores):
        from stores.reader import FeatureStore
        from stores.store import Store

        self.by_key: dict[tuple[str, str], VideoRef] = {}
        self.by_id: dict[tuple[str, str], VideoRef] = {}
        self.datasets: dict[str, list[VideoRef]] = {}
        for s in stores:
            fs = s if isinstance(s, FeatureStore) else Store.at(s).reader()
            attrs = fs.all_attrs()  # the store's index: one read, not one per video
            for vid in fs.video_ids():
                a = attrs[vid]
                ds = str(a.get("dataset") or Path(fs.path.rstrip("/")).stem.removesuffix(".zarr"))
                ref = VideoRef(fs.path, vid)
                self.datasets.setdefault(ds, []).append(ref)
                self.by_id[(ds, vid)] = ref
                if a.get("eccv16_key"):
                    self.by_key[(ds, str(a["eccv16_key"]))] = ref

    def only_dataset(self) -> str | None:
        return next(iter(self.datasets)) if len(self.datasets) == 1 else None

    def resolve(self, key: str, dataset: str | None = None) -> VideoRef | None:
        """A public or own key -> VideoRef, or None when no store holds it."""
        prefix, _, last = str(key).rpartition("/")
        ds = dataset
        if prefix:
            m = _ECCV16.search(prefix)
            ds = m.group(1) if m else prefix.rsplit("/", 1)[-1]
        ds = ds or self.only_dataset()
        if _VIDEO_N.match(last) and (ds, last) in self.by_key:
            return self.by_key[(ds, last)]
        if ds is not None:
            return self.by_id.get((ds, last))
        hits = [r for (d, v), r in self.by_id.items() if v == last]
        return hits[0] if len(hits) == 1 else None


def load_split_file(path: str | Path) -> list[dict]:
    path = Path(path)
    text = path.read_text()
    if path.suffix.lower() in (".yml", ".yaml"):
        import yaml

        doc = yaml.safe_load(text)
    else:
        doc = json.loads(text)
    if isinstance(doc, dict):
        doc = [doc]
    if not isinstance(doc, list) or not all(
            isinstance(d, dict) and "train_keys" in d and "test_keys" in d for d in doc):
        raise ValueError(f"{path}: expected a list of {{train_keys, test_keys}} objects")
    return doc


def read_splits(path: str | Path, stores, dataset: str | None = None,
                missing: str = "error", fallback_dataset: str | None = None) -> list[Split]:
    """Public or own split file -> Splits of VideoRefs. ``dataset`` names the dataset of
    un-prefixed ``video_N`` keys when several stores are given (default: the one dataset
    named in the file name, e.g. ``summe_splits.json``, else ``fallback_dataset``).
    ``missing``: "error" raises on a key no store holds; "skip" drops it (recorded in
    ``Split.missing``)."""
    index = stores if isinstance(stores, StoreIndex) else StoreIndex(stores)
    if dataset is None and index.only_dataset() is None:
        # "summe_splits.json": un-prefixed keys belong to the dataset the file is named after
        named = [d for d in index.datasets if d.lower() in Path(path).stem.lower()]
        dataset = named[0] if len(named) == 1 else fallback_dataset
    out = []
    for i, d in enumerate(load_split_file(path)):
        sides, lost = {}, []
        for side in ("train_keys", "test_keys"):
            refs = []
            for k in d[side]:
                ref = index.resolve(k, dataset)
                if ref is None:
                    lost.append(str(k))
                else:
                    refs.append(ref)
            sides[side] = refs
        if lost and missing == "error":
            raise ValueError(f"{path}: split {i}: {len(lost)} keys not in the stores "
                             f"(first: {lost[0]}); import those datasets or pass missing='skip'")
        out.append(Split(sides["train_keys"], sides["test_keys"], lost))
    return out


def kfold_splits(items: list, k: int = 5, seed: int = 0) -> list[tuple[list, list]]:
    """Every item in exactly one test fold; folds differ in size by at most one."""
    if k < 2 or k > len(items):
        raise ValueError(f"k-fold needs 2 <= k <= {len(items)} videos, got k={k}")
    order = np.random.default_rng(seed).permutation(len(items))
    folds = np.array_split(order, k)
    return [([items[j] for j in sorted(np.concatenate(folds[:i] + folds[i + 1:]))],
             [items[j] for j in sorted(f)]) for i, f in enumerate(folds)]


def random_splits(items: list, n: int = 5, test_frac: float = 0.2,
                  seed: int = 0) -> list[tuple[list, list]]:
    """The public repos' form: n independent random 80/20 resamples (not a partition)."""
    rng = np.random.default_rng(seed)
    n_test = max(1, round(test_frac * len(items)))
    out = []
    for _ in range(n):
        perm = rng.permutation(len(items))
        test = sorted(perm[:n_test])
        train = sorted(perm[n_test:])
        out.append(([items[j] for j in train], [items[j] for j in test]))
    return out


def make_splits(target, others=(), setting: str = "canonical", k: int = 5, seed: int = 0,
                form: str = "kfold") -> list[Split]:
    """Splits for a setting. target/others: stores (paths) — the target's videos are tested.

    form: "kfold" (default) or "random" (80/20 resamples, k of them).
    """
    tgt = [r for refs in StoreIndex([target]).datasets.values() for r in refs]
    extra = [r for refs in StoreIndex(list(others)).datasets.values() for r in refs] if others else []
    return _setting_splits(tgt, extra, setting, k, seed, form)


def dataset_splits(stores, test_dataset: str, setting: str = "canonical", k: int = 5,
                   seed: int = 0, form: str = "kfold") -> list[Split]:
    """Splits for a setting over several stores, by recorded dataset name: the videos of
    ``test_dataset`` are tested; every other dataset's videos are the "others" of the augmented
    and transfer settings (CSNet Table 1, 3DST-UNet-RL §IV.E)."""
    index = stores if isinstance(stores, StoreIndex) else StoreIndex(stores)
    if test_dataset not in index.datasets:
        raise ValueError(f"no videos of dataset {test_dataset!r} in the stores "
                         f"(have: {', '.join(sorted(index.datasets)) or 'none'})")
    tgt = sorted(index.datasets[test_dataset])
    extra = sorted(r for d, refs in index.datasets.items() if d != test_dataset for r in refs)
    return _setting_splits(tgt, extra, setting, k, seed, form)


def _setting_splits(tgt: list[VideoRef], extra: list[VideoRef], setting: str, k: int, seed: int,
                    form: str) -> list[Split]:
    if setting not in SETTINGS:
        raise ValueError(f"setting must be one of {SETTINGS}, not {setting!r}")
    if setting == "transfer":
        if not extra:
            raise ValueError("the transfer setting needs other stores to train on")
        return [Split(sorted(extra), sorted(tgt))]
    if setting == "augmented" and not extra:
        raise ValueError("the augmented setting needs other stores to add to the training sets")
    parts = kfold_splits(tgt, k, seed) if form == "kfold" else random_splits(tgt, k, seed=seed)
    if setting == "augmented":
        return [Split(sorted(tr + extra), te) for tr, te in parts]
    return [Split(tr, te) for tr, te in parts]


def write_splits(path: str | Path, splits: list[Split], datasets: dict[str, str] | None = None) -> Path:
    """Own JSON form; keys ``<dataset>/<video id>`` when ``datasets`` (store -> name) is given,
    else plain store ids."""
    def key(r: VideoRef) -> str:
        return f"{datasets[r.store]}/{r.video_id}" if datasets else r.video_id

    doc = [{"train_keys": [key(r) for r in s.train], "test_keys": [key(r) for r in s.test]}
           for s in splits]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2))
    return path
