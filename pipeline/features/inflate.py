"""Inflate torchvision's 2-D GoogLeNet into InceptionI3d (Carreira & Zisserman 2017, §2.3).

Every 2-D kernel ``w`` [O, I, kh, kw] becomes ``w / t`` repeated t times along time
[O, I, t, kh, kw], so a clip that repeats one image ("boring video") gives every layer the same
response as the 2-D net on that image, wherever temporal padding does not reach. BatchNorm
affine weights and running statistics are copied unchanged. ``logits`` is left as initialised:
GoogLeNet's 1000-way ImageNet classifier has no I3D counterpart and features never use it.
"""

from __future__ import annotations

import torch
from torch import nn

from pipeline.features.i3d_net import InceptionI3d

# torchvision GoogLeNet module -> InceptionI3d module (both BasicConv2d/Unit3D: conv + bn)
STEM = {"conv1": "Conv3d_1a_7x7", "conv2": "Conv3d_2b_1x1", "conv3": "Conv3d_2c_3x3"}
BLOCKS = {
    "inception3a": "Mixed_3b",
    "inception3b": "Mixed_3c",
    "inception4a": "Mixed_4b",
    "inception4b": "Mixed_4c",
    "inception4c": "Mixed_4d",
    "inception4d": "Mixed_4e",
    "inception4e": "Mixed_4f",
    "inception5a": "Mixed_5b",
    "inception5b": "Mixed_5c",
}
BRANCHES = {
    "branch1": "b0",
    "branch2.0": "b1a",
    "branch2.1": "b1b",
    "branch3.0": "b2a",
    "branch3.1": "b2b",
    "branch4.1": "b3b",
}
BN_TENSORS = ("weight", "bias", "running_mean", "running_var")


def unit_pairs() -> list[tuple[str, str]]:
    """(GoogLeNet prefix, I3D prefix) for every conv+bn unit, in network order."""
    pairs = list(STEM.items())
    for g, i in BLOCKS.items():
        pairs += [(f"{g}.{gb}", f"{i}.{ib}") for gb, ib in BRANCHES.items()]
    return pairs


def inflate_kernel(w2d: torch.Tensor, t: int) -> torch.Tensor:
    """[O, I, kh, kw] -> [O, I, t, kh, kw], each slice w2d / t (sums back to w2d over time)."""
    return w2d.unsqueeze(2).repeat(1, 1, t, 1, 1) / t


def inflated_state(
    googlenet_state: dict[str, torch.Tensor], i3d: InceptionI3d
) -> dict[str, torch.Tensor]:
    """I3D tensors (all but ``logits``) from a GoogLeNet state dict; temporal sizes are read
    off ``i3d``'s own kernels. A missing GoogLeNet key or a shape mismatch raises one line."""
    own = i3d.state_dict()
    out: dict[str, torch.Tensor] = {}
    for g, i in unit_pairs():
        key = f"{g}.conv.weight"
        if key not in googlenet_state:
            raise ValueError(f"GoogLeNet state dict lacks {key!r} (needed for {i}.conv3d.weight)")
        w2d = googlenet_state[key]
        target = own[f"{i}.conv3d.weight"].shape
        if tuple(w2d.shape) != (*target[:2], *target[3:]):
            raise ValueError(
                f"GoogLeNet {key!r} has shape {tuple(w2d.shape)}; cannot inflate to "
                f"{i}.conv3d.weight {tuple(target)}"
            )
        out[f"{i}.conv3d.weight"] = inflate_kernel(w2d, target[2])
        for name in BN_TENSORS:
            out[f"{i}.bn.{name}"] = googlenet_state[f"{g}.bn.{name}"].clone()
        if f"{g}.bn.num_batches_tracked" in googlenet_state:
            out[f"{i}.bn.num_batches_tracked"] = googlenet_state[
                f"{g}.bn.num_batches_tracked"
            ].clone()
    return out


def inflate_googlenet(
    googlenet: nn.Module | dict[str, torch.Tensor], padding: str = "symmetric"
) -> InceptionI3d:
    """A new InceptionI3d holding inflated GoogLeNet weights (``logits`` keeps its init).

    ``padding="symmetric"`` (default) matches torchvision's GoogLeNet stem exactly.
    """
    state = googlenet.state_dict() if isinstance(googlenet, nn.Module) else googlenet
    i3d = InceptionI3d(padding=padding)
    with torch.no_grad():
        missing, unexpected = i3d.load_state_dict(inflated_state(state, i3d), strict=False)
    assert not unexpected, unexpected
    assert all(k.startswith("logits.") or k.endswith(".num_batches_tracked") for k in missing), (
        missing
    )
    return i3d
