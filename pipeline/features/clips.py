"""What the 3-D clip extractors (ST3D, I3D) share: the weights policy for one checkpoint file,
strict state-dict checks with one clear line, and the uint8-clips → pooled-map batch loop.

    clips uint8 [B, L, H, W, 3] --(crop, scale, normalise)--> float [b, 3, L, h, w]
        --(backbone)--> [b, C, t, h', w'] --(mean over t, optional S×S pooling)--> [B, C, S, S]
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pipeline.features.base import (
    RANDOM_INIT_SEED,
    WEIGHT_POLICIES,
    WeightsUnavailable,
    as_float_batch,
    torch_hub_checkpoint,
    warn_random_init,
)

# BatchNorm buffers that old checkpoints (pre torch 0.4.1) do not carry; never required.
OPTIONAL_KEY_SUFFIXES = (".num_batches_tracked",)
FLOAT16_MAX = 65504.0


# -- weights -------------------------------------------------------------------------------
def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A state dict from a file (tensors only, no pickled code); unwraps {"state_dict": …} and a
    DataParallel ``module.`` prefix. Bad files raise one line naming the file."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such weights file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling/zip error is "not a checkpoint"
        # torch's own message is many lines about weights_only; the type says enough
        raise ValueError(
            f"{path}: not a readable tensors-only torch checkpoint ({type(e).__name__})"
        ) from None
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{path}: expected a state dict of tensors, got {type(obj).__name__}")
    if obj and all(k.startswith("module.") for k in obj):
        obj = {k[len("module.") :]: v for k, v in obj.items()}
    return obj


def load_strict(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """``model.load_state_dict(state)`` that fails with one line naming the first bad key.

    Missing ``num_batches_tracked`` buffers are allowed (old checkpoints lack them)."""
    own = model.state_dict()
    missing = [k for k in own if k not in state and not k.endswith(OPTIONAL_KEY_SUFFIXES)]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(
                f"missing key {missing[0]!r}"
                + (f" (+{len(missing) - 1} more)" if len(missing) > 1 else "")
            )
        if unexpected:
            parts.append(
                f"unexpected key {unexpected[0]!r}"
                + (f" (+{len(unexpected) - 1} more)" if len(unexpected) > 1 else "")
            )
        raise ValueError(f"{source}: does not match {type(model).__name__}: {'; '.join(parts)}")
    for k, v in state.items():
        if tuple(v.shape) != tuple(own[k].shape):
            raise ValueError(
                f"{source}: key {k!r} has shape {tuple(v.shape)}, "
                f"{type(model).__name__} expects {tuple(own[k].shape)}"
            )
    full = {**{k: own[k] for k in own if k not in state}, **state}
    model.load_state_dict(full, strict=True)


def resolve_weights(
    policy: str, file_name: str, weights_name: str, extractor: str, hint: str = ""
) -> tuple[dict | None, str, str | None]:
    """Apply the shared weights policy for one torchvision checkpoint file.

    Returns (state dict or None for a seeded random init, recorded weights string, checkpoint path).
      auto       $TORCH_HOME/hub/checkpoints/<file_name> when present, else loud random init
      pretrained that file, or WeightsUnavailable
      random     seeded random init, no warning (asked for)
      PATH       that file
    """
    if policy == "random":
        return None, f"random-init(seed={RANDOM_INIT_SEED})", None
    if policy in ("auto", "pretrained"):
        cached = torch_hub_checkpoint(file_name)
        if cached.is_file():
            return read_state_dict(cached), weights_name, str(cached)
        if policy == "pretrained":
            raise WeightsUnavailable(
                f"{extractor}: --weights pretrained needs {cached} (no downloads here){hint}"
            )
        return None, warn_random_init(extractor, f"{cached} not found"), None
    if policy not in WEIGHT_POLICIES and Path(policy).is_file():
        return read_state_dict(policy), str(policy), str(policy)
    raise ValueError(
        f"{extractor}: --weights {policy!r} is neither auto|pretrained|random nor an existing file"
    )


def seeded(build: Callable[[], nn.Module]) -> nn.Module:
    """Build a module under RANDOM_INIT_SEED without disturbing the global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_INIT_SEED)
        return build()


# -- the batch loop ------------------------------------------------------------------------
def check_clips(clips: np.ndarray, decode_size: tuple[int, int], name: str) -> np.ndarray:
    """uint8 [B, L, H, W, 3] with (H, W) == decode_size, or one clear ValueError."""
    as_float_batch(clips)
    if clips.ndim != 5 or tuple(clips.shape[2:4]) != tuple(decode_size):
        raise ValueError(
            f"{name}: expected uint8 clips [B, L, {decode_size[0]}, {decode_size[1]}, 3], "
            f"got {tuple(clips.shape)}"
        )
    return clips


def centre_crop(clips: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """[B, L, H, W, 3] -> [B, L, h, w, 3] (a view; crop before converting to float).

    Offsets round like torchvision's ``center_crop`` (171 -> 112 starts at column 30)."""
    h, w = size
    top, left = round((clips.shape[2] - h) / 2.0), round((clips.shape[3] - w) / 2.0)
    return clips[:, :, top : top + h, left : left + w]


def to_input(
    clips: np.ndarray, mean, std, device: torch.device, channels_last: bool
) -> torch.Tensor:
    """uint8 [b, L, H, W, 3] -> float32 [b, 3, L, H, W] = (x/255 - mean) / std."""
    x = torch.from_numpy(np.ascontiguousarray(clips)).to(device)
    x = x.permute(0, 4, 1, 2, 3).float().div_(255.0)
    m = torch.as_tensor(mean, dtype=torch.float32, device=device).view(1, 3, 1, 1, 1)
    s = torch.as_tensor(std, dtype=torch.float32, device=device).view(1, 3, 1, 1, 1)
    x = (x - m) / s
    fmt = torch.channels_last_3d if channels_last else torch.contiguous_format
    return x.contiguous(memory_format=fmt)


def place_model(model: nn.Module, device: torch.device) -> tuple[nn.Module, bool]:
    """Eval mode on ``device``; channels_last_3d on CPU, where oneDNN's 3-D convolutions prefer
    NDHWC (measured: st3d 0.35 vs 0.26-0.30, i3d 0.25-0.27 vs 0.14-0.16 clips/s, 2 threads).
    Returns (model, channels_last)."""
    channels_last = device.type == "cpu"
    model = model.eval().to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last_3d)
    return model, channels_last


def map_shape(channels: int, native: tuple[int, int], spatial: int | None) -> tuple[int, int, int]:
    """Per-step feature shape: [C, S, S] with ``--spatial S``, else the native [C, h, w]."""
    return (channels, spatial, spatial) if spatial else (channels, *native)


def pool_map(fmap: torch.Tensor, spatial: int | None) -> torch.Tensor:
    """[b, C, t, h, w] -> [b, C, h, w] (temporal mean), or [b, C, S, S] with adaptive pooling."""
    x = fmap.mean(dim=2)
    return F.adaptive_avg_pool2d(x, spatial) if spatial else x


def conv_out(n: int, k: int, s: int, p: int) -> int:
    """Output length of a convolution/pool along one axis (floor mode)."""
    return (n + 2 * p - k) // s + 1


def same_out(n: int, s: int) -> int:
    """Output length under TensorFlow 'SAME' padding."""
    return -(-n // s)


def check_spatial(spatial: int | None, name: str) -> int | None:
    """``--spatial S``: None (native map) or a positive int."""
    if spatial is not None and (not isinstance(spatial, int) or spatial < 1):
        raise ValueError(f"{name}: --spatial must be a positive integer, got {spatial!r}")
    return spatial


def resolve_device(device: str) -> torch.device:
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {device}: CUDA is not available on this machine")
    return dev


def run_batches(
    model: Callable[[torch.Tensor], torch.Tensor],
    clips: np.ndarray,
    per_forward: int,
    prepare: Callable[[np.ndarray], torch.Tensor],
    spatial: int | None,
) -> np.ndarray:
    """Forward ``clips`` ``per_forward`` at a time; returns float16 [B, C, h, w] on the host."""
    out = []
    with torch.inference_mode():
        for i in range(0, len(clips), per_forward):
            fmap = model(prepare(clips[i : i + per_forward]))
            # Saturate instead of overflowing to inf in the float16 store.
            pooled = pool_map(fmap, spatial).clamp_(-FLOAT16_MAX, FLOAT16_MAX)
            out.append(pooled.to(torch.float16).cpu().numpy())
    return np.concatenate(out, axis=0)
