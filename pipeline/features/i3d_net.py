"""InceptionI3d: Inception-v1 (GoogLeNet) inflated to 3-D (Carreira & Zisserman, CVPR 2017).

Module and parameter names follow the public PyTorch I3D checkpoints (pytorch-i3d's
``rgb_imagenet.pt``) so they load strictly: ``Conv3d_1a_7x7.conv3d.weight``,
``Mixed_4b.b1b.bn.running_var``, ``logits.conv3d.bias`` …

    x [B, 3, T, 224, 224] in [-1, 1]
      Conv3d_1a_7x7 (7³, stride 2)      [B,   64, T/2, 112, 112]
      MaxPool3d_2a_3x3 (1×3×3, s 1,2,2) [B,   64, T/2,  56,  56]
      Conv3d_2b_1x1, Conv3d_2c_3x3      [B,  192, T/2,  56,  56]
      MaxPool3d_3a_3x3 (1×3×3, s 1,2,2) [B,  192, T/2,  28,  28]
      Mixed_3b, Mixed_3c                [B,  480, T/2,  28,  28]
      MaxPool3d_4a_3x3 (3³, stride 2)   [B,  480, T/4,  14,  14]
      Mixed_4b … Mixed_4f               [B,  832, T/4,  14,  14]
      MaxPool3d_5a_2x2 (2³, stride 2)   [B,  832, T/8,   7,   7]
      Mixed_5b, Mixed_5c                [B, 1024, T/8,   7,   7]   <- ``forward`` returns this

Padding. ``padding="same"`` is TensorFlow's SAME rule, which the public checkpoints were trained
with (it pads the stride-2 stem asymmetrically: 2 before, 3 after). ``padding="symmetric"``
pads the stem by 3 on both sides, as torchvision's GoogLeNet does, so that a GoogLeNet inflated
into this net reproduces GoogLeNet exactly on a static clip (the "boring video" property). The
two differ only in the stem: every other conv has stride 1 and an odd kernel, where SAME is
symmetric, and the stride-2 max-pools use SAME zero padding in both modes, which equals
torchvision's ``ceil_mode`` pooling on even sizes because pooled inputs are post-ReLU (≥ 0).

``logits`` (400 Kinetics classes) is kept only so that public checkpoints load strictly; the
extractor never uses it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

PADDINGS = ("same", "symmetric")

# (name, in_channels, [b0, b1a, b1b, b2a, b2b, b3b]) — GoogLeNet's inception widths.
INCEPTION_BLOCKS = {
    "Mixed_3b": (192, (64, 96, 128, 16, 32, 32)),
    "Mixed_3c": (256, (128, 128, 192, 32, 96, 64)),
    "Mixed_4b": (480, (192, 96, 208, 16, 48, 64)),
    "Mixed_4c": (512, (160, 112, 224, 24, 64, 64)),
    "Mixed_4d": (512, (128, 128, 256, 24, 64, 64)),
    "Mixed_4e": (512, (112, 144, 288, 32, 64, 64)),
    "Mixed_4f": (528, (256, 160, 320, 32, 128, 128)),
    "Mixed_5b": (832, (256, 160, 320, 32, 128, 128)),
    "Mixed_5c": (832, (384, 192, 384, 48, 128, 128)),
}
FEATURE_CHANNELS = 1024
NUM_CLASSES = 400
BN_EPS = 1e-3  # as in the TF original and torchvision's GoogLeNet


def same_pads(size: int, k: int, s: int) -> tuple[int, int]:
    """TF SAME padding (before, after) along one axis of length ``size``."""
    total = max(k - (s if size % s == 0 else size % s), 0)
    return total // 2, total - total // 2


def _pads_3d(x: torch.Tensor, kernel, stride) -> tuple[int, ...]:
    """F.pad order (w0, w1, h0, h1, t0, t1) for SAME padding of [B, C, T, H, W]."""
    t, h, w = x.shape[2:]
    pt, ph, pw = (same_pads(n, k, s) for n, k, s in zip((t, h, w), kernel, stride))
    return (*pw, *ph, *pt)


class Unit3D(nn.Module):
    """conv3d (+ bn) (+ relu): [B, Cin, T, H, W] -> [B, Cout, T', H', W']."""

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel=(1, 1, 1),
        stride=(1, 1, 1),
        padding: str = "same",
        bn: bool = True,
        relu: bool = True,
        bias: bool = False,
    ):
        super().__init__()
        self.kernel, self.stride = tuple(kernel), tuple(stride)
        # Stride-1 odd kernels: SAME == k//2 on both sides, so use the conv's own (faster)
        # padding. Only a strided conv under SAME needs the dynamic, possibly asymmetric pad.
        self.dynamic_pad = padding == "same" and any(s != 1 for s in self.stride)
        static = (0, 0, 0) if self.dynamic_pad else tuple(k // 2 for k in self.kernel)
        self.conv3d = nn.Conv3d(cin, cout, self.kernel, self.stride, padding=static, bias=bias)
        self.bn = nn.BatchNorm3d(cout, eps=BN_EPS, momentum=0.01) if bn else None
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.dynamic_pad:
            x = F.pad(x, _pads_3d(x, self.kernel, self.stride))
        x = self.conv3d(x)
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x, inplace=True) if self.relu else x


class MaxPool3dSame(nn.Module):
    """Max-pool with TF SAME zero padding (inputs are post-ReLU, so 0 acts as -inf)."""

    def __init__(self, kernel, stride):
        super().__init__()
        self.kernel, self.stride = tuple(kernel), tuple(stride)
        self.pool = nn.MaxPool3d(self.kernel, self.stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(F.pad(x, _pads_3d(x, self.kernel, self.stride)))


class InceptionBlock3D(nn.Module):
    """Four branches concatenated on channels: [B, Cin, T, H, W] -> [B, b0+b1b+b2b+b3b, T, H, W].

    b2b is 3×3×3, not 5×5×5: the I3D checkpoints and torchvision's GoogLeNet both use 3×3 there.
    """

    def __init__(self, cin: int, widths, padding: str = "same"):
        super().__init__()
        c0, c1a, c1b, c2a, c2b, c3b = widths
        self.b0 = Unit3D(cin, c0, padding=padding)
        self.b1a = Unit3D(cin, c1a, padding=padding)
        self.b1b = Unit3D(c1a, c1b, (3, 3, 3), padding=padding)
        self.b2a = Unit3D(cin, c2a, padding=padding)
        self.b2b = Unit3D(c2a, c2b, (3, 3, 3), padding=padding)
        # stride 1: SAME pads 1 each side; -inf vs 0 padding agree on post-ReLU inputs
        self.b3a = nn.MaxPool3d(3, stride=1, padding=1)
        self.b3b = Unit3D(cin, c3b, padding=padding)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))], dim=1
        )


class InceptionI3d(nn.Module):
    """[B, 3, T, H, W] in [-1, 1] -> Mixed_5c [B, 1024, T/8, H/32, W/32]."""

    # The feature path in order (everything but ``logits``).
    ENDPOINTS = (
        "Conv3d_1a_7x7",
        "MaxPool3d_2a_3x3",
        "Conv3d_2b_1x1",
        "Conv3d_2c_3x3",
        "MaxPool3d_3a_3x3",
        "Mixed_3b",
        "Mixed_3c",
        "MaxPool3d_4a_3x3",
        "Mixed_4b",
        "Mixed_4c",
        "Mixed_4d",
        "Mixed_4e",
        "Mixed_4f",
        "MaxPool3d_5a_2x2",
        "Mixed_5b",
        "Mixed_5c",
    )

    def __init__(self, padding: str = "same", num_classes: int = NUM_CLASSES):
        super().__init__()
        if padding not in PADDINGS:
            raise ValueError(f"InceptionI3d: padding must be one of {PADDINGS}, got {padding!r}")
        self.padding = padding
        self.Conv3d_1a_7x7 = Unit3D(3, 64, (7, 7, 7), (2, 2, 2), padding=padding)
        self.MaxPool3d_2a_3x3 = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        self.Conv3d_2b_1x1 = Unit3D(64, 64, padding=padding)
        self.Conv3d_2c_3x3 = Unit3D(64, 192, (3, 3, 3), padding=padding)
        self.MaxPool3d_3a_3x3 = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        for name in ("Mixed_3b", "Mixed_3c"):
            self.add_module(name, InceptionBlock3D(*INCEPTION_BLOCKS[name], padding=padding))
        self.MaxPool3d_4a_3x3 = MaxPool3dSame((3, 3, 3), (2, 2, 2))
        for name in ("Mixed_4b", "Mixed_4c", "Mixed_4d", "Mixed_4e", "Mixed_4f"):
            self.add_module(name, InceptionBlock3D(*INCEPTION_BLOCKS[name], padding=padding))
        self.MaxPool3d_5a_2x2 = MaxPool3dSame((2, 2, 2), (2, 2, 2))
        for name in ("Mixed_5b", "Mixed_5c"):
            self.add_module(name, InceptionBlock3D(*INCEPTION_BLOCKS[name], padding=padding))
        self.logits = Unit3D(FEATURE_CHANNELS, num_classes, bn=False, relu=False, bias=True)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """He init for convs (keeps activations O(1) through depth, so a random-init fallback
        still gives float16-representable, non-degenerate features); BN as identity."""
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def endpoints(self):
        """(name, module) along the feature path, for layer-by-layer checks."""
        return [(name, getattr(self, name)) for name in self.ENDPOINTS]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for _, layer in self.endpoints():
            x = layer(x)
        return x
