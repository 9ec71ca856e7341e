"""What the 3-D clip extractors (ST3D, I3D) share: the uint8-clips → pooled-map batch loop.

    clips uint8 [B, L, H, W, 3] --(crop, scale, normalise)--> float [b, 3, L, h, w]
        --(backbone)--> [b, C, t, h', w'] --(mean over t, optional S×S pooling)--> [B, C, S, S]

Clips arrive either stacked on the host (uint8 [B, L, H, W, 3], the CPU path) or as a
``ClipBatch`` (distinct frames + indices; the decoder's ``assemble_clips=False``), which is
uploaded once and assembled on the device. Both give the same numbers on the CPU.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pipeline.errors import UsageError
from pipeline.decode import ClipBatch
from pipeline.features.base import RANDOM_INIT_SEED, as_float_batch
from pipeline.features.device_input import Uploader

FLOAT16_MAX = 65504.0


def seeded(build: Callable[[], nn.Module]) -> nn.Module:
    """Build a module under RANDOM_INIT_SEED without disturbing the global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_INIT_SEED)
        return build()


# -- the batch loop ------------------------------------------------------------------------
def check_clips(clips, decode_size: tuple[int, int], name: str):
    """uint8 [B, L, H, W, 3] (or a ClipBatch of that shape) with (H, W) == decode_size, or
    one clear ValueError."""
    if isinstance(clips, ClipBatch):
        ok = clips.index.ndim == 2 and all(f.dtype == np.uint8 and f.shape[:2] == tuple(decode_size)
                                             and f.shape[2:] == (3,) for f in clips.frames)
        shape = clips.shape
    else:
        as_float_batch(clips)
        ok, shape = clips.ndim == 5 and tuple(clips.shape[2:4]) == tuple(decode_size), clips.shape
    if not ok:
        raise ValueError(
            f"{name}: expected uint8 clips [B, L, {decode_size[0]}, {decode_size[1]}, 3], "
            f"got {tuple(shape)}"
        )
    return clips


def crop_offsets(shape_hw: tuple[int, int], size: tuple[int, int]) -> tuple[int, int]:
    """(top, left) of a centre crop; rounds like torchvision's ``center_crop`` (171 -> 112
    starts at column 30)."""
    return round((shape_hw[0] - size[0]) / 2.0), round((shape_hw[1] - size[1]) / 2.0)


def centre_crop(clips, size: tuple[int, int]):
    """[B, L, H, W, 3] -> [B, L, h, w, 3]: a view (numpy array or tensor)."""
    top, left = crop_offsets(tuple(clips.shape[2:4]), size)
    return clips[:, :, top : top + size[0], left : left + size[1]]


def to_input(x: torch.Tensor, mean, std, channels_last: bool) -> torch.Tensor:
    """uint8 [b, L, H, W, 3] (on the model's device) -> float32 [b, 3, L, H, W] = (x/255 - mean) / std."""
    device = x.device
    x = x.permute(0, 4, 1, 2, 3).float().div_(255.0)
    m = torch.as_tensor(mean, dtype=torch.float32, device=device).view(1, 3, 1, 1, 1)
    s = torch.as_tensor(std, dtype=torch.float32, device=device).view(1, 3, 1, 1, 1)
    x = (x - m) / s
    fmt = torch.channels_last_3d if channels_last else torch.contiguous_format
    return x.contiguous(memory_format=fmt)


def device_clips(clips, upload: Uploader) -> Callable[[int, int], torch.Tensor]:
    """Put a batch on the device once; returns ``take(i, j)``: clips i..j-1, uint8
    [j-i, L, H, W, 3] on the device. A ClipBatch uploads its distinct frames and assembles
    clips there by index; a stacked array uploads as it is (CPU: a zero-copy view)."""
    if isinstance(clips, ClipBatch):
        frames = upload.stack(clips.frames)  # [N, H, W, 3]
        index = torch.from_numpy(clips.index).to(frames.device)  # [B, L]
        return lambda i, j: frames[index[i:j]]
    stacked = upload.array(clips)
    return lambda i, j: stacked[i:j]


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
    """``auto``: CUDA when this process sees a GPU, else the CPU; ``cuda`` without one is a
    UsageError. (In a Ray worker, ``jobs/placement.py`` decides first, from Ray's GPU ids.)"""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"--device {device}: CUDA is not available on this machine")
    return dev


def run_batches(
    model: Callable[[torch.Tensor], torch.Tensor],
    clips,
    per_forward: int,
    prepare: Callable[[torch.Tensor], torch.Tensor],
    spatial: int | None,
    upload: Uploader,
) -> np.ndarray:
    """Forward ``clips`` (uint8 [B, L, H, W, 3] or a ClipBatch) ``per_forward`` at a time;
    ``prepare`` maps uint8 [b, L, H, W, 3] on the device to the model's input. Returns float16
    [B, C, h, w] on the host."""
    out = []
    with torch.inference_mode():
        take = device_clips(clips, upload)
        for i in range(0, len(clips), per_forward):
            fmap = model(prepare(take(i, i + per_forward)))
            # Saturate instead of overflowing to inf in the float16 store.
            pooled = pool_map(fmap, spatial).clamp_(-FLOAT16_MAX, FLOAT16_MAX)
            out.append(pooled.to(torch.float16).cpu().numpy())
    return np.concatenate(out, axis=0)
