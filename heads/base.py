"""The contract between heads and the single trainer (``heads/trainer.py``).

A head registers a ``HeadSpec``. The trainer reads videos from a store, builds batches, and for
each step calls ``spec.loss(model, batch, cfg, state)``; it never knows which head it trains.

Batch (dict), all tensors on the training device:
    "x"        float32 [B, T, *feature_shape]   features (or frames for end-to-end heads)
    "mask"     bool    [B, T]                   True on real steps (variable lengths padded)
    "gtscore"  float32 [B, T]                   ground-truth importance at picks (0..1), if any
    "video_id" list[str] of length B
``model(x, mask) -> p``: float32 [B, T] scores in (0, 1). Heads map tensors to tensors: no
numpy, no paths, no device choice inside a head.
``state``: a dict the trainer keeps for the whole run (e.g. per-video moving-average rewards).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from pipeline.registry import Registry

HEADS: Registry = Registry("head")


@dataclass(frozen=True)
class HeadSpec:
    name: str
    config_cls: type  # frozen dataclass; defaults are the paper's
    build: Callable[[Any, tuple[int, ...]], Any]  # (cfg, feature_shape) -> nn.Module
    loss: Callable[..., tuple[Any, dict]]  # (model, batch, cfg, state) -> (loss, metrics)
    make_optimizer: Callable[[Any, Any], Any]  # (model, cfg) -> (optimizer, scheduler | None)
    inputs: str = "features"  # "features" or "frames"
    default_features: str = "googlenet"
    batch_videos: int = 1  # videos per optimisation step (from cfg if the head exposes it)
    # Optional hooks for heads that do not fit "whole videos of features in memory"
    # (e.g. CRSum streams frame windows): the trainer uses them when set.
    # store: a stores.reader.FeatureStore. make_loader is called once per run and iterated once
    # per epoch (so it must be re-iterable, e.g. a DataLoader); its batches follow the batch
    # contract above (the trainer moves tensors to the device). predict gets the model on the
    # device in eval mode, under torch.no_grad().
    make_loader: Callable[..., Any] | None = None  # (store, video_ids, cfg, train) -> iterable of batches
    predict: Callable[..., Any] | None = None  # (model, store, video_id, cfg) -> np.ndarray [T]


def register_head(spec: HeadSpec) -> HeadSpec:
    HEADS.register(spec.name)(spec)
    return spec


def get_head(name: str) -> HeadSpec:
    import heads  # noqa: F401  (importing the package registers every head)

    return HEADS.get(name)
