"""The single trainer: one (head, split, seed) run from a feature store to predictions.

It knows heads only through ``HeadSpec`` (heads/base.py). For a split it

1. resolves the head's config (paper defaults + overrides) and seeds python/numpy/torch;
2. loads the train (and optional validation) videos as whole sequences (``stores.dataset``),
   or asks the head's ``make_loader`` hook for batches (heads that stream, e.g. CRSum);
3. trains for ``cfg.epochs`` epochs with ``spec.loss`` and ``spec.make_optimizer`` (scheduler
   stepped once per epoch, gradient norm clipped at ``cfg.clip_grad`` when the head has one);
4. writes into ``RUN/split=<k>/seed=<s>/``: ``checkpoint.pt`` (self-describing: head, config,
   feature_spec, state_dict), ``config.json`` (resolved), ``metrics.jsonl`` (one line per epoch);
5. writes the test videos' scores with ``stores.predictions.write_predictions`` LAST, so a
   predictions file means the whole (split, seed) is done (resume relies on it).

Model selection never looks at test labels by default: "fixed-epochs" keeps the last epoch;
``val_fraction > 0`` holds out part of the TRAIN keys and keeps the epoch with the best
validation score ("validation"). ``legacy_best_test=True`` additionally scores the test videos
after every epoch and writes the best epoch's scores under ``RUN/legacy-best-test/`` with
selection "legacy-best-test" — a separate run folder, so it is never mixed into the default table.

Selection score (validation or legacy): mean F-score (avg over annotators) of the keyshot summary
when the store has user summaries and segments, else mean Kendall tau vs gtscore.

Several stores (the augmented and transfer settings): train videos may come from any store, as
``(store, video id)`` pairs; test videos are always in ``store`` (their predictions refer to it).
Inside the run a video of another store is keyed ``<store URL>::<id>`` (``stores.dataset.ref_key``).
Stores are ``stores.Store`` values (a path or URL is turned into one), so a Ray task that gets
them reads every store with the credentials the driver resolved.
Supervised targets: a head whose config has ``sup_target`` gets that target in the batch
(``stores/targets.py``), [B, T, n] for a frame-level head (``output="frame"``, n =
``scores_per_step``). A model with ``predict_scores`` decides what is written as predictions
(frame-level heads write n sub-scores per step).
"""
from __future__ import annotations

import copy
import json
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from heads.base import HeadSpec, get_head
from heads.config import config_dict, resolve_config
from pipeline.errors import InputError, UsageError
from stores import layout
from stores.dataset import REF_SEP, MultiStoreDataset, collate, ref_key, to_device
from stores.predictions import write_predictions
from stores.reader import FeatureStore
from stores.store import Store

CHECKPOINT = "checkpoint.pt"
CONFIG_JSON = "config.json"
METRICS_JSONL = "metrics.jsonl"
LEGACY_DIR = "legacy-best-test"


@dataclass
class TrainOptions:
    """Trainer options that are not the head's own config (those go in ``overrides``)."""

    features: str | None = None  # store feature name; None: the head's default_features
    epochs: int | None = None  # None: cfg.epochs
    lr: float | None = None  # None: cfg.lr
    overrides: dict = field(default_factory=dict)  # head config fields (strings parsed by type)
    val_fraction: float = 0.0  # > 0: hold out this part of the train keys for selection
    legacy_best_test: bool = False  # also record the max-over-epochs-on-test number (labelled)
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    num_threads: int | None = None  # torch intra-op threads (1 per Ray task)
    cache_bytes: int | None = None  # in-memory cache budget for whole videos
    progress: bool = False  # tqdm over epochs (off inside Ray tasks)


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_head_config(spec: HeadSpec, options: TrainOptions):
    overrides = dict(options.overrides)
    if options.epochs is not None:
        overrides["epochs"] = options.epochs
    if options.lr is not None:
        overrides["lr"] = options.lr
    return resolve_config(spec.config_cls, overrides)


def run_dir_for(run_dir: str | Path, split: int, seed: int) -> Path:
    return Path(run_dir) / f"split={split}" / f"seed={seed}"


# -- selection scores ---------------------------------------------------------------------------
def selection_score(store: FeatureStore, scores: dict[str, np.ndarray], locate=None) -> float:
    """Mean F-score (avg over annotators) when the store has user summaries and segments, else
    mean Kendall tau vs gtscore; NaN when neither is available. ``locate(key) -> (store, id)``
    finds videos of other stores (MultiStoreDataset.store_of). Sub-scores (n per step) count as
    their step mean here."""
    from pipeline.metrics import f_score_users, kendall_tau
    from pipeline.summary import select_keyshots

    vals = []
    for key, s in scores.items():
        store, vid = locate(key) if locate is not None else (store, key)
        n_steps = store.array(vid, layout.PICKS).shape[0]
        if len(s) != n_steps and n_steps and len(s) % n_steps == 0:
            s = np.asarray(s).reshape(n_steps, -1).mean(axis=1)
        if store.has(vid, layout.USER_SUMMARY) and store.has(vid, layout.CHANGE_POINTS):
            attrs = store.attrs(vid)
            summary, _ = select_keyshots(s, store.load(vid, layout.PICKS), int(attrs["n_frames"]),
                                         store.load(vid, layout.CHANGE_POINTS))
            vals.append(f_score_users(summary, store.load(vid, layout.USER_SUMMARY), "avg"))
        elif store.has(vid, layout.GTSCORE):
            vals.append(kendall_tau(s, store.load(vid, layout.GTSCORE)))
    vals = [v for v in vals if np.isfinite(v)]
    return float(np.mean(vals)) if vals else float("nan")


# -- prediction ----------------------------------------------------------------------------------
@torch.no_grad()
def predict_videos(spec: HeadSpec, model, cfg, store: FeatureStore, data: MultiStoreDataset | None,
                   video_ids: list[str], device) -> dict[str, np.ndarray]:
    """video key -> float32 [T] scores, or [T·n] for a frame-level head (model in eval mode, one
    video at a time)."""
    was_training = model.training
    model.eval()
    out = {}
    score = getattr(model, "predict_scores", model)
    for vid in video_ids:
        if spec.predict is not None:
            out[vid] = np.asarray(spec.predict(model, store, vid, cfg), np.float32).ravel()
        else:
            batch = collate([data.get(vid)], device)
            out[vid] = score(batch["x"], batch["mask"])[0].float().cpu().numpy().ravel()
    model.train(was_training)
    return out


def target_request(cfg) -> tuple[str | None, int]:
    """(target kind, sub-scores per step) a supervised head asks the data for; (None, 1) when
    it reads gtscore as such."""
    kind = getattr(cfg, "sup_target", None) if getattr(cfg, "supervised", False) else None
    frame = getattr(cfg, "output", "step") == "frame"
    return kind, (int(getattr(cfg, "scores_per_step", 1)) if frame else 1)


def _as_keys(store: str, items) -> list[str]:
    """Train/val items: video ids of ``store``, or (store, video id) pairs -> run keys."""
    out = []
    for it in items:
        if isinstance(it, str):
            out.append(it)
        else:
            s, vid = it
            out.append(ref_key(str(s), str(vid), str(store)))
    return out


# -- one epoch -----------------------------------------------------------------------------------
def video_batches(data: MultiStoreDataset, ids: list[str], batch_videos: int, rng: np.random.Generator):
    order = [ids[i] for i in rng.permutation(len(ids))]
    for i in range(0, len(order), batch_videos):
        yield [data.get(v) for v in order[i : i + batch_videos]]


def train_epoch(spec: HeadSpec, model, cfg, optimizer, state: dict, batches, device,
                clip_grad: float | None) -> dict:
    """One pass over ``batches`` (an iterator of collated or raw item lists). Returns the mean
    loss and head metrics plus ``sec_data`` (waiting on data) and ``sec_epoch``."""
    model.train()
    sums: dict[str, float] = {}
    n = 0
    sec_data = 0.0
    t0 = time.perf_counter()
    it = iter(batches)
    while True:
        td = time.perf_counter()
        try:
            batch = next(it)
        except StopIteration:
            break
        batch = collate(batch, device) if isinstance(batch, list) else to_device(batch, device)
        sec_data += time.perf_counter() - td
        optimizer.zero_grad(set_to_none=True)
        loss, metrics = spec.loss(model, batch, cfg, state)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"{spec.name}: non-finite loss at videos {batch['video_id']}")
        loss.backward()
        if clip_grad:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip_grad)
        optimizer.step()
        for k, v in {"loss": loss, **metrics}.items():
            sums[k] = sums.get(k, 0.0) + float(v.detach() if torch.is_tensor(v) else v)
        n += 1
    out = {k: v / max(n, 1) for k, v in sums.items()}
    out.update(steps=n, sec_data=sec_data, sec_epoch=time.perf_counter() - t0)
    return out


# -- the run -------------------------------------------------------------------------------------
def feature_spec_for(store: FeatureStore, video_id: str, features: str, l2_normalize: bool) -> dict:
    """What the checkpoint needs to find (or recompute) its inputs: name, shape, dtype, and the
    extractor spec recorded in the store when there is one."""
    arr = store.array(video_id, layout.feature_path(features))
    attrs = store.attrs(video_id)
    recorded = None
    for key in ("feature_specs", "features", "weights"):
        val = attrs.get(key)
        if isinstance(val, dict) and features in val:
            recorded = val[features]
            break
    return {"name": features, "shape": list(arr.shape[1:]), "dtype": str(arr.dtype),
            "l2_normalize": bool(l2_normalize), "store_spec": recorded,
            "sample": attrs.get("sample")}


@dataclass
class _Run:
    """One (split, seed) being trained: what every part of ``train_split`` shares."""

    spec: HeadSpec
    cfg: object
    options: TrainOptions
    store: Store  # the test store (predictions refer to it)
    others: list[Store]  # the run's other stores (augmented/transfer training videos)
    fstore: FeatureStore
    features: str
    l2: bool
    epochs: int
    batch_videos: int
    device: torch.device
    train_ids: list[str]  # run keys (``ref_key`` for videos of other stores)
    val_ids: list[str]
    test_ids: list[str]
    data: MultiStoreDataset | None = None  # None when the head streams (``make_loader``)
    loader: object | None = None
    model: object | None = None
    optimizer: object | None = None
    scheduler: object | None = None

    @property
    def hooked(self) -> bool:
        return self.spec.make_loader is not None

    def first_video(self) -> tuple[FeatureStore, str]:
        """(store, id) of the first training video: its features fix the model's input shape."""
        return self.data.store_of(self.train_ids[0]) if self.data is not None else (self.fstore, self.train_ids[0])

    def locate(self):
        return self.data.store_of if self.data is not None else None

    def predict(self, ids: list[str]) -> dict[str, np.ndarray]:
        return predict_videos(self.spec, self.model, self.cfg, self.fstore, self.data, ids, self.device)


@dataclass
class _Selection:
    """What the epoch loop keeps for the selection rule: the best validation epoch's weights and
    the legacy best-on-test epoch's scores."""

    best_score: float = -np.inf
    best_epoch: int | None = None
    best_state: dict | None = None
    legacy_score: float = -np.inf
    legacy_epoch: int | None = None
    legacy_scores: dict | None = None
    sec_data: float = 0.0


def train_split(head: str | HeadSpec, store: Store | str, train_ids: list[str], test_ids: list[str],
                run_dir: str | Path, split: int, seed: int, options: TrainOptions | None = None,
                meta: dict | None = None, stores: list[Store] | None = None) -> dict:
    """Train one (split, seed) and write its checkpoint, config, metrics and predictions.

    head: a registered name, or a HeadSpec (tests train unregistered heads this way).
    store: the test store (a ``stores.Store``, or a path/URL); stores: the run's stores, whose
    URLs ``(store, id)`` train items name (default: read those with ``store``'s options).
    meta: predictions metadata (run, dataset, setting, ...); head/features/store filled here.
    Returns a summary dict (paths, timings, selection, best epoch).
    """
    options = options or TrainOptions()
    if options.num_threads:
        torch.set_num_threads(options.num_threads)
    spec = head if isinstance(head, HeadSpec) else get_head(head)
    cfg = resolve_head_config(spec, options)
    seed_everything(seed)
    rng = np.random.default_rng(seed)
    store = Store.at(store)
    fstore = store.reader()
    if not train_ids or not test_ids:
        raise ValueError(f"split {split}: {len(train_ids)} train and {len(test_ids)} test videos")
    train_keys, val_keys = split_validation(_as_keys(store.url, train_ids), options.val_fraction, rng, split)
    run = _Run(spec=spec, cfg=cfg, options=options, store=store,
               others=[Store.at(s) for s in stores or ()], fstore=fstore,
               features=options.features or spec.default_features,
               l2=bool(getattr(cfg, "l2_normalize", False)), epochs=int(getattr(cfg, "epochs", 1)),
               batch_videos=int(getattr(cfg, "batch_videos", spec.batch_videos)),
               device=pick_device(options.device), train_ids=train_keys, val_ids=val_keys,
               test_ids=list(test_ids))
    _open_data(run)
    _build_model(run)
    out_dir = run_dir_for(run_dir, split, seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_resolved_config(run, out_dir, split, seed)

    t_start = time.perf_counter()
    with (out_dir / METRICS_JSONL).open("w") as mf:
        sel = run_epochs(run, rng, mf, desc=f"{spec.name} split {split} seed {seed}")
    selection = apply_selection_rule(run, sel, f"{spec.name} split {split} seed {seed}")
    sec_train = time.perf_counter() - t_start
    pred_path = write_outputs(run, sel, selection, run_dir, out_dir, split, seed, meta)
    return {"split": split, "seed": seed, "head": spec.name, "features": run.features,
            "selection": selection, "best_epoch": sel.best_epoch or run.epochs, "epochs": run.epochs,
            "legacy_best_epoch": sel.legacy_epoch, "sec_train": sec_train, "sec_data": sel.sec_data,
            "n_train": len(run.train_ids), "n_val": len(run.val_ids), "n_test": len(run.test_ids),
            "predictions": str(pred_path), "checkpoint": str(out_dir / CHECKPOINT)}


def split_validation(train_keys: list[str], val_fraction: float, rng: np.random.Generator,
                     split: int) -> tuple[list[str], list[str]]:
    """(train keys, validation keys): ``val_fraction`` of the TRAIN keys held out at random
    (never test videos); ([all], []) when the fraction is 0."""
    if val_fraction <= 0:
        return train_keys, []
    n_val = max(1, round(val_fraction * len(train_keys)))
    perm = rng.permutation(len(train_keys))
    val = sorted(train_keys[i] for i in perm[:n_val])
    train = sorted(train_keys[i] for i in perm[n_val:])
    if not train:
        raise ValueError(f"split {split}: val_fraction {val_fraction} leaves no training videos")
    return train, val


def _open_data(run: _Run) -> None:
    """The dataset over every video of the run (train, validation, test), and the labels check
    for supervised heads; a streaming head (``make_loader``) reads its own store instead."""
    if run.hooked:
        if any(REF_SEP in k for k in run.train_ids):
            raise ValueError(f"head {run.spec.name} streams from one store; its training videos must all "
                             f"be in {run.store} (the augmented/transfer settings need a feature head)")
        return
    target, n_sub = target_request(run.cfg)
    keys = sorted(set(run.train_ids) | set(run.val_ids) | set(run.test_ids))
    run.data = MultiStoreDataset(run.store, keys, run.features, others=run.others,
                                 l2_normalize=run.l2, cache_bytes=run.options.cache_bytes,
                                 target=target, n_sub=n_sub)
    if getattr(run.cfg, "supervised", False):  # checks only
        MultiStoreDataset(run.store, run.train_ids, run.features, others=run.others,
                          need_labels=target in (None, "gtscore"), cache_bytes=0)


def _build_model(run: _Run) -> None:
    """The model (input shape from the first training video), its optimizer and scheduler, and
    the streaming head's loader."""
    first_store, first_id = run.first_video()
    shape = tuple(first_store.array(first_id, layout.feature_path(run.features)).shape[1:])
    run.model = run.spec.build(run.cfg, shape).to(run.device)
    run.optimizer, run.scheduler = run.spec.make_optimizer(run.model, run.cfg)
    if run.hooked and run.spec.predict is None:
        raise ValueError(f"head {run.spec.name}: a make_loader hook needs a predict hook too")
    if run.hooked:
        run.loader = run.spec.make_loader(run.fstore, run.train_ids, run.cfg, True)


def _write_resolved_config(run: _Run, out_dir: Path, split: int, seed: int) -> None:
    resolved = {"head": run.spec.name, "features": run.features, "split": split, "seed": seed,
                "epochs": run.epochs, "batch_videos": run.batch_videos, "device": str(run.device),
                "train_keys": run.train_ids, "val_keys": run.val_ids, "test_keys": run.test_ids,
                "val_fraction": run.options.val_fraction, "config": config_dict(run.cfg)}
    (out_dir / CONFIG_JSON).write_text(json.dumps(resolved, indent=2, default=str))


def run_epochs(run: _Run, rng: np.random.Generator, metrics_file, desc: str) -> _Selection:
    """Train ``run.epochs`` epochs, one ``metrics.jsonl`` line each; after every epoch score the
    validation videos (and, when asked, the test videos for the legacy number)."""
    sel = _Selection()
    state: dict = {"device": run.device}
    epoch_iter = range(1, run.epochs + 1)
    if run.options.progress:
        from tqdm import tqdm

        epoch_iter = tqdm(epoch_iter, desc=desc, unit="epoch")
    for epoch in epoch_iter:
        state["epoch"] = epoch
        batches = run.loader if run.hooked else video_batches(run.data, run.train_ids, run.batch_videos, rng)
        row = train_epoch(run.spec, run.model, run.cfg, run.optimizer, state, batches, run.device,
                          getattr(run.cfg, "clip_grad", None))
        row = {"epoch": epoch, "lr": run.optimizer.param_groups[0]["lr"], **row}
        if run.scheduler is not None:
            run.scheduler.step()
        sel.sec_data += row["sec_data"]
        if run.val_ids:
            row["val_score"] = _keep_best_validation(run, sel, epoch)
        if run.options.legacy_best_test:
            row["legacy_test_score"] = _keep_best_on_test(run, sel, epoch)
        metrics_file.write(json.dumps(row) + "\n")
        metrics_file.flush()
    return sel


def _keep_best_validation(run: _Run, sel: _Selection, epoch: int) -> float:
    """Score the validation videos; keep this epoch's weights when it is the best so far."""
    score = selection_score(run.fstore, run.predict(run.val_ids), run.locate())
    if np.isfinite(score) and score > sel.best_score:
        sel.best_score, sel.best_epoch = score, epoch
        sel.best_state = copy.deepcopy(run.model.state_dict())
    return score


def _keep_best_on_test(run: _Run, sel: _Selection, epoch: int) -> float:
    """The legacy number (max over epochs on the TEST split): keep the best epoch's test scores."""
    test_scores = run.predict(run.test_ids)
    score = selection_score(run.fstore, test_scores)
    if sel.legacy_scores is None or (np.isfinite(score) and score > sel.legacy_score):
        sel.legacy_score, sel.legacy_epoch, sel.legacy_scores = score, epoch, test_scores
    return score


def apply_selection_rule(run: _Run, sel: _Selection, desc: str) -> str:
    """Load the selected weights into the model and name the rule: "validation" (best
    validation epoch) or "fixed-epochs" (the last epoch; also when no validation score was
    finite, e.g. no labels on the held-out videos)."""
    if sel.best_state is not None:
        run.model.load_state_dict(sel.best_state)
        return "validation"
    if run.val_ids:
        print(f"{desc}: no finite validation score; keeping the last epoch")
    return "fixed-epochs"


def write_outputs(run: _Run, sel: _Selection, selection: str, run_dir, out_dir: Path, split: int,
                  seed: int, meta: dict | None) -> Path:
    """The checkpoint, the legacy-best-test predictions (when asked, in their own run folder),
    then the test predictions LAST (their file marks the (split, seed) done). Returns the
    predictions' path."""
    first_store, first_id = run.first_video()
    save_checkpoint(out_dir / CHECKPOINT, run.model, run.spec.name, run.cfg,
                    feature_spec_for(first_store, first_id, run.features, run.l2),
                    selection=selection, epoch=sel.best_epoch or run.epochs, split=split, seed=seed)
    scores = run.predict(run.test_ids)
    pmeta = {"run": Path(run_dir).name, "dataset": "", "setting": "canonical", **(meta or {}),
             "head": run.spec.name, "features": run.features, "store": run.fstore.path,
             "selection": selection}
    if sel.legacy_scores is not None:
        write_predictions(Path(run_dir) / LEGACY_DIR, split, seed, sel.legacy_scores,
                          {**pmeta, "run": f"{pmeta['run']} [legacy-best-test]",
                           "selection": "legacy-best-test"})
    return write_predictions(run_dir, split, seed, scores, pmeta)


# -- checkpoints ---------------------------------------------------------------------------------
CHECKPOINT_KEYS = ("head", "config", "feature_spec", "state_dict")
# Config fields naming where a head's initial weights come from (CRSum's pretrained trunk and
# CNN1). The saved state dict holds the trained weights, so a reload builds these parts
# randomly: it needs no weights file or download, and never follows a path written inside a
# checkpoint (which may come from anyone).
SUPERSEDED_BY_STATE_DICT = {"trunk_weights": "random", "cnn1_weights": ""}


def plain(value):
    """JSON-compatible copy (tuples -> lists, numpy scalars and paths -> str or numbers), so a
    checkpoint loads with ``torch.load(weights_only=True)``."""
    return json.loads(json.dumps(value, default=_jsonable))


def _jsonable(v):
    if isinstance(v, np.generic):
        return v.item()
    return str(v)


def save_checkpoint(path: str | Path, model, head: str, cfg, feature_spec: dict, **extra) -> Path:
    """``{"head", "config", "feature_spec", "state_dict", **extra}``: tensors and plain values
    only, so ``load_checkpoint`` can refuse anything else."""
    ckpt = {"head": head, "config": plain(config_dict(cfg)), "feature_spec": plain(feature_spec),
            "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            **plain(extra)}
    torch.save(ckpt, str(path))
    return Path(path)


def read_checkpoint(path: str | Path, device: str = "cpu") -> dict:
    """The checkpoint's dict, loaded with ``weights_only=True``: a file that is not a vsum
    checkpoint, or one holding other objects (a pickle that could run code), is one InputError."""
    import pickle
    import zipfile

    if not Path(path).is_file():
        raise InputError("checkpoint not found", str(path))
    if not zipfile.is_zipfile(path):
        raise InputError("not a vsum checkpoint (not a PyTorch zip archive)", str(path))
    try:
        ckpt = torch.load(str(path), map_location=device, weights_only=True)
    except pickle.UnpicklingError:
        raise InputError("refused: the checkpoint holds objects other than tensors and plain "
                         "values (unpickling it could run code)", str(path)) from None
    except (OSError, RuntimeError, EOFError, ValueError) as e:
        reason = " ".join(str(e).split())[:120]
        raise InputError(f"not a readable checkpoint ({reason})", str(path)) from None
    if not isinstance(ckpt, dict) or not set(CHECKPOINT_KEYS) <= set(ckpt):
        raise InputError(f"not a vsum checkpoint (needs {', '.join(CHECKPOINT_KEYS)})", str(path))
    return ckpt


def load_checkpoint(path: str | Path, device: str = "cpu"):
    """Rebuild a head from its checkpoint alone -> (model in eval mode, spec, cfg, checkpoint).

    ``cfg`` is the config as trained; the model is built with SUPERSEDED_BY_STATE_DICT applied
    (random trunk, no CNN1 file), then the state dict replaces every weight."""
    ckpt = read_checkpoint(path, device)
    try:
        spec = get_head(ckpt["head"])
    except KeyError as e:
        raise InputError(f"the checkpoint's head: {e.args[0]}", str(path)) from None
    try:
        known = _known_fields(spec.config_cls, ckpt["config"])
        cfg = resolve_config(spec.config_cls, known)
        rebuild = {k: v for k, v in SUPERSEDED_BY_STATE_DICT.items() if k in known}
        build_cfg = resolve_config(spec.config_cls, {**known, **rebuild})
        model = spec.build(build_cfg, tuple(ckpt["feature_spec"]["shape"]))
        model.load_state_dict(ckpt["state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError, UsageError) as e:  # config/weights do not fit
        reason = " ".join(str(e).split())[:160]
        raise InputError(f"does not rebuild head {spec.name!r} ({reason})", str(path)) from None
    model.to(device).eval()
    return model, spec, cfg, ckpt


def _known_fields(config_cls: type, values: dict) -> dict:
    """The config's own fields from a saved config (JSON lists back to tuples)."""
    import dataclasses

    if not isinstance(values, dict):
        raise TypeError(f"config is a {type(values).__name__}, not a mapping")
    names = {f.name for f in dataclasses.fields(config_cls)}
    return {k: (tuple(v) if isinstance(v, list) else v) for k, v in values.items() if k in names}
