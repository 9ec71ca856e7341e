"""What every feature extractor declares, and the weights policy they share.

An extractor is a small object with a ``spec`` (recorded in the store next to its array) and a
``__call__`` that maps a batch of decoded uint8 frames or clips to features:

    2-D (clip_len == 1):  uint8 [B, H, W, 3]     -> [B, *feature_shape]
    3-D (clip_len  > 1):  uint8 [B, L, H, W, 3]  -> [B, *feature_shape]

H, W are ``spec.decode_size``: the decoder converts frames straight to that size in swscale,
so the extractor only crops/normalises. Extractors never open files or write stores.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from pipeline.errors import WeightsError
from pipeline.registry import Registry

EXTRACTORS: Registry = Registry("extractor")

# The policy every extractor accepts for its weights (`--weights`).
WEIGHT_POLICIES = ("auto", "pretrained", "random")
RANDOM_INIT_SEED = 0


@dataclass(frozen=True)
class FeatureSpec:
    """Where a feature array came from; stored in the video's ``weights``/``features`` attrs."""

    name: str  # store array name: features/<name> (or "frames")
    decode_size: tuple[int, int]  # (H, W) the decoder delivers frames at
    clip_len: int  # 1 = per-pick frame; >1 = clip of consecutive decoded frames around the pick
    feature_shape: tuple[int, ...]  # per-step shape, e.g. (1024,) or (512, 4, 4)
    dtype: str  # "float32" | "float16" | "uint8"
    weights: str  # resolved: torchvision weight name, a path, or "random-init(seed=0)"
    preprocessing: str = ""  # human-readable: resize/crop/mean/std
    extra: dict = field(default_factory=dict)

    def to_attrs(self) -> dict:
        d = asdict(self)
        d["decode_size"] = list(self.decode_size)
        d["feature_shape"] = list(self.feature_shape)
        return d


class WeightsUnavailable(WeightsError):
    """Raised under ``--weights pretrained`` when the weights cannot be had."""


def torch_hub_checkpoint(file_name: str) -> Path:
    """Where torchvision looks for a cached checkpoint: $TORCH_HOME/hub/checkpoints/<file_name>."""
    torch_home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "torch"
    )
    return Path(torch_home) / "hub" / "checkpoints" / file_name


def warn_random_init(extractor: str, reason: str) -> str:
    """Loud, recorded fallback: returns the string stored as the video's weights attribute."""
    msg = (
        f"\n{'!' * 78}\n!! {extractor}: pretrained weights unavailable ({reason}).\n"
        f"!! Using a seeded RANDOM init (seed={RANDOM_INIT_SEED}); features are NOT semantic.\n"
        f"!! The store records weights='random-init'. Plant the checkpoint or pass a PATH.\n"
        f"{'!' * 78}"
    )
    warnings.warn(msg, stacklevel=2)
    print(msg, flush=True)
    return f"random-init(seed={RANDOM_INIT_SEED})"


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

    weights: str = "auto"  # auto | pretrained | random | PATH  (GoogLeNet, ST3D, I3D init)
    device: str = "cpu"
    batch_size: int = 32  # frames per forward for 2-D; clips per forward is batch_size // 4
    st3d_arch: str = "r3d_18"  # r3d_18 | r2plus1d_18
    spatial: int | None = None  # adaptive-pool the 3-D maps to S×S (1 = vector); None = native
    clip_len: int = 16  # consecutive decoded frames per 3-D clip, centred on the pick
    i3d_weights: str | None = None  # a public pytorch-i3d RGB checkpoint (rgb_imagenet.pt)
    frames_size: int = 128  # side of the stored raw frame shards (frames [T, S, S, 3])
