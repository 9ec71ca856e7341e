"""Pretrained video trunks that can stand in for CRSum's CNN2 (this project's variant).

A trunk maps normalised clips [B, 3, T, H, W] to per-step features [B, T, D] with T preserved:
every temporal stride in the network is set to 1 (the convolution kernels are unchanged, so the
pretrained weights still load), which is what the paper asks of its own CNNs. Padded steps are
zeroed before every Conv3d/pool by forward pre-hooks, so a padded batch computes exactly what
each video would alone. BatchNorm is kept in eval mode (running statistics from pretraining),
the usual choice when fine-tuning with small batches, and it keeps batches independent.

Weights follow the extractors' one policy (``pipeline/features/weights.py``): ``pretrained``
(the default; ``auto`` is its deprecated alias) = torchvision's file from the torch hub cache,
else downloaded (or from ``$VSUM_WEIGHTS_URL``) with its hash check, else one WeightsUnavailable
line; ``random`` = a seeded init, only when asked; or a PATH to a state dict. The trunk's
``weights`` records the label ("R3D_18_Weights.KINETICS400_V1", "random-init(seed=0)", …).
"""
from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
KINETICS_STD = (0.22803, 0.22145, 0.216989)


def keep_time(module: nn.Module) -> None:
    """Set every temporal stride to 1 (and 'same' temporal padding for odd kernels)."""
    same_wrapped = set()
    for m in module.modules():  # I3D's SAME wrappers pad from their own ``stride``
        if hasattr(m, "dynamic_pad") or type(m).__name__ == "MaxPool3dSame":
            m.stride = (1, *m.stride[1:])
            for inner in m.children():
                if isinstance(inner, (nn.Conv3d, nn.MaxPool3d)):
                    inner.stride = (1, *tuple(inner.stride)[1:])
                    same_wrapped.add(inner)
    for m in module.modules():
        if m in same_wrapped:
            continue
        if isinstance(m, nn.Conv3d) and m.stride[0] != 1:
            m.stride = (1, *m.stride[1:])
            m.padding = ((m.kernel_size[0] - 1) // 2 * m.dilation[0], *m.padding[1:])
        elif isinstance(m, (nn.MaxPool3d, nn.AvgPool3d)):
            k = m.kernel_size if isinstance(m.kernel_size, tuple) else (m.kernel_size,) * 3
            s = m.stride if isinstance(m.stride, tuple) else (m.stride,) * 3
            p = m.padding if isinstance(m.padding, tuple) else (m.padding,) * 3
            if s[0] != 1:
                m.kernel_size, m.stride = k, (1, *s[1:])
                m.padding = ((k[0] - 1) // 2, *p[1:])


class MaskedTrunk(nn.Module):
    """Wraps ``body`` ([B, 3, T, H, W] → [B, D, T', h, w]) as [B, 3, T, H, W] → [B, T, D]."""

    def __init__(self, body: nn.Module, out_dim: int, weights: str, freeze_bn: bool = True):
        super().__init__()
        self.body, self.out_dim, self.weights, self.freeze_bn = body, out_dim, weights, freeze_bn
        self._tmask: torch.Tensor | None = None  # [B, 1, T, 1, 1], set per forward
        self._warned = False
        self.grad_checkpoint = False  # recompute each stage of ``body`` in backward
        for m in body.modules():  # (I3D's SAME wrappers get it before their own padding)
            if isinstance(m, (nn.Conv3d, nn.MaxPool3d, nn.AvgPool3d)) or hasattr(m, "kernel"):
                m.register_forward_pre_hook(self._zero_padding)
        self.train(True)  # applies freeze_bn from the start

    def _zero_padding(self, module, inputs):
        x = inputs[0]
        if self._tmask is None or x.shape[2] != self._tmask.shape[2]:  # None: nothing padded
            return None
        return (x * self._tmask.to(x.dtype),)

    def train(self, mode: bool = True):
        super().train(mode)
        if self.freeze_bn:
            for m in self.body.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        return self

    def forward(self, x: torch.Tensor, tmask: torch.Tensor) -> torch.Tensor:
        """x [B, 3, T, H, W], tmask float [B, 1, T, 1, 1] or None (no padding) → [B, T, D]"""
        self._tmask = tmask  # read by the pre-hooks (also when a checkpointed stage reruns)
        h = x
        for stage in self.body:
            if self.grad_checkpoint and self.training:
                h = checkpoint(stage, h, use_reentrant=False)
            else:
                h = stage(h)
        f = h.mean(dim=(3, 4))  # [B, D, T']
        if f.shape[2] != x.shape[2]:  # a trunk that still pools time: stretch back to T
            if not self._warned:
                warnings.warn(f"trunk returned {f.shape[2]} steps for {x.shape[2]}; "
                              f"interpolating features back to T", stacklevel=2)
                self._warned = True
            f = F.interpolate(f, size=x.shape[2], mode="linear", align_corners=False)
        return f.transpose(1, 2)


def build_r3d18_trunk(policy: str = "pretrained") -> MaskedTrunk:
    """torchvision r3d_18 up to layer4 (512-d per step), temporal strides set to 1; weights
    exactly as the ST3D extractor resolves them."""
    from pipeline.features.base import ExtractorOptions
    from pipeline.features.st3d import model_from_state
    from pipeline.features.weights import load_state_dict, resolve

    w = resolve("st3d", policy, st3d_arch="r3d_18", who="crsum trunk r3d_18")
    net, weights, _ = model_from_state(load_state_dict(w), w, ExtractorOptions(st3d_arch="r3d_18"))
    body = nn.Sequential(net.stem, net.layer1, net.layer2, net.layer3, net.layer4)
    keep_time(body)
    return MaskedTrunk(body, 512, weights)


def build_i3d_trunk(policy: str = "pretrained") -> MaskedTrunk:
    """The I3D extractor's InceptionI3d up to Mixed_5c (1024-d per step), temporal strides set
    to 1; weights exactly as the extractor resolves them (an I3D checkpoint PATH, GoogLeNet
    inflated, or a random init when asked)."""
    from pipeline.features.i3d import model_from_state
    from pipeline.features.weights import load_state_dict, resolve

    w = resolve("i3d", policy, who="crsum trunk i3d")
    net, weights, _ = model_from_state(load_state_dict(w), w)
    body = nn.Sequential(*(m for _, m in net.endpoints()))  # drops ``logits``
    keep_time(body)
    return MaskedTrunk(body, 1024, weights)


TRUNKS = {"r3d_18": (build_r3d18_trunk, "kinetics"), "i3d": (build_i3d_trunk, "minus1_1")}
