"""What every feature extractor declares, and the weights policy they share.

An extractor is a small object with a ``spec`` (recorded in the store next to its array) and a
``__call__`` that maps a batch of decoded uint8 frames or clips to features:

    2-D (clip_len == 1):  uint8 [B, H, W, 3]     -> [B, *feature_shape]
    3-D (clip_len  > 1):  uint8 [B, L, H, W, 3]  -> [B, *feature_shape]

H, W are ``spec.decode_size``: the decoder converts frames straight to that size in swscale,
so the extractor only crops/normalises. Extractors never open files or write stores.
"""
from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

import numpy as np

from pipeline.features.catalog import EXTRACTOR_NAMES
from pipeline.features.weights import (  # noqa: F401 - the weights policy, re-exported
    RANDOM_INIT,
    RANDOM_INIT_SEED,
    ResolvedWeights,
    WeightsUnavailable,
    torch_hub_checkpoint,
)
from pipeline.registry import Registry


class _ExtractorRegistry(Registry):
    """Imports an extractor's module on first lookup, so that importing ``pipeline.features``
    (the driver of a job with nothing to do) never imports torch."""

    def _load(self, name: str) -> None:
        if name not in self._items and name in EXTRACTOR_NAMES:
            importlib.import_module(f"pipeline.features.{name}")

    def get(self, name: str):
        self._load(name)
        return super().get(name)

    def names(self) -> list[str]:
        for name in EXTRACTOR_NAMES:
            self._load(name)
        return super().names()

    def __contains__(self, name: str) -> bool:
        self._load(name)
        return super().__contains__(name)


EXTRACTORS: Registry = _ExtractorRegistry("extractor")


@dataclass(frozen=True)
class FeatureSpec:
    """Where a feature array came from; stored in the video's ``feature_specs``/``weights`` attrs."""

    name: str  # store array name: features/<name> (or "frames")
    decode_size: tuple[int, int]  # (H, W) the decoder delivers frames at
    clip_len: int  # 1 = per-pick frame; >1 = clip of consecutive decoded frames around the pick
    feature_shape: tuple[int, ...]  # per-step shape, e.g. (1024,) or (512, 4, 4)
    dtype: str  # "float32" | "float16" | "uint8"
    weights: str  # torchvision weight name, a file's name, "inflated(…)" or "random-init(seed=0)"
    preprocessing: str = ""  # human-readable: resize/crop/mean/std
    extra: dict = field(default_factory=dict)
    weights_file: str | None = None  # the file the weights came from (None: random init / none)
    weights_sha256: str | None = None

    def to_attrs(self) -> dict:
        d = asdict(self)
        d["decode_size"] = list(self.decode_size)
        d["feature_shape"] = list(self.feature_shape)
        return d

    def weights_identity(self) -> dict:
        """{"name", "file" (its base name), "sha256"}; file and sha256 are None for a random init
        (the full path is ``weights_file``)."""
        file = os.path.basename(self.weights_file) if self.weights_file else None
        return {"name": self.weights, "file": file, "sha256": self.weights_sha256}


def spec_weights(w: ResolvedWeights, label: str | None = None) -> dict:
    """FeatureSpec's weights fields from resolved weights (``label`` overrides the name)."""
    return {"weights": label or w.name, "weights_file": w.path, "weights_sha256": w.sha256}


def as_float_batch(frames: np.ndarray) -> np.ndarray:
    """Shape check shared by extractors: uint8 [..., H, W, 3]."""
    if frames.dtype != np.uint8 or frames.shape[-1] != 3:
        raise ValueError(f"expected uint8 [..., H, W, 3] frames, got {frames.dtype} {frames.shape}")
    return frames


@dataclass
class ExtractorOptions:
    """Every extractor option the CLI exposes; each builder reads the fields it needs.

    Builders are registered as ``@EXTRACTORS.register(name)`` and called as
    ``build(opts: ExtractorOptions) -> extractor`` (an object with ``spec`` and ``__call__``).
    """

    # "pretrained" | "random" | PATH for every extractor, or {extractor: that or ResolvedWeights}
    weights: str | Mapping = "pretrained"
    weights_url: str | None = None  # mirror BASE for pretrained files (default $VSUM_WEIGHTS_URL)
    device: str = "cpu"  # cpu | cuda | auto (cuda when this process sees one)
    batch_size: int = 32  # frames per forward for 2-D; clips per forward is batch_size // 4
    st3d_arch: str = "r3d_18"  # r3d_18 | r2plus1d_18
    spatial: int | None = None  # adaptive-pool the 3-D maps to S×S (1 = vector); None = native
    clip_len: int = 16  # consecutive decoded frames per 3-D clip, centred on the pick
    frames_size: int = 128  # side of the stored raw frame shards (frames [T, S, S, 3])
    # GoogLeNet's execution path on the CPU: eager | compile | onnx (pipeline/features/backends.py).
    # Not meaning-bearing (features equal eager's to ~1e-5), so not in the configuration hash.
    backend: str = "eager"
