"""Getting decoded uint8 frames onto the model's device: once per batch, and on CUDA through
pinned memory with a non-blocking copy.

    host uint8 [N, ...] --CPU:  a zero-copy tensor view (the CPU path is unchanged)
                        --CUDA: stacked straight into a reused pinned buffer, then one
                                non-blocking host-to-device copy

Everything after the upload (clip assembly by index, crop, /255, mean/std) runs on the device,
in the same order of operations on both devices, so CPU results are exactly what they were.
"""
from __future__ import annotations

import numpy as np
import torch


class Uploader:
    """Uploads uint8 batches to ``device``; one per extractor (the pinned buffer is reused)."""

    def __init__(self, device: torch.device):
        self.device = torch.device(device)
        self._pinned: torch.Tensor | None = None  # flat uint8, grown on demand
        self._copied: torch.cuda.Event | None = None  # the last upload out of the buffer

    @property
    def on_cuda(self) -> bool:
        return self.device.type == "cuda"

    def _staging(self, shape: tuple[int, ...]) -> torch.Tensor:
        """A pinned uint8 tensor of ``shape``, safe to overwrite: the previous non-blocking
        copy out of the buffer has finished (waited on its event)."""
        n = int(np.prod(shape))
        if self._copied is not None:
            self._copied.synchronize()
        if self._pinned is None or self._pinned.numel() < n:
            self._pinned = torch.empty(n, dtype=torch.uint8, pin_memory=True)
        return self._pinned[:n].view(shape)

    def _upload(self, staged: torch.Tensor) -> torch.Tensor:
        out = staged.to(self.device, non_blocking=True)
        self._copied = torch.cuda.Event()
        self._copied.record()
        return out

    def array(self, batch: np.ndarray) -> torch.Tensor:
        """uint8 [N, ...] -> the same tensor on the device."""
        host = torch.from_numpy(np.ascontiguousarray(batch))
        if not self.on_cuda:
            return host
        staged = self._staging(tuple(host.shape))
        staged.copy_(host)
        return self._upload(staged)

    def stack(self, frames: list[np.ndarray]) -> torch.Tensor:
        """N arrays of one shape -> uint8 [N, ...] on the device (on CUDA, stacked directly into
        pinned memory: one host copy in all)."""
        if not self.on_cuda:
            return torch.from_numpy(np.stack(frames))
        staged = self._staging((len(frames), *frames[0].shape))
        np.stack(frames, out=staged.numpy())
        return self._upload(staged)
