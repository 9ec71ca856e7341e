"""What the driver needs to know about each extractor without importing torch.

A re-run with nothing to do must not pay for ``import torch`` (3–15 s on a loaded 2-core
machine), so the facts that decide *what* would be computed live here as plain data:

* ``EXTRACTOR_NAMES``: every extractor ``--features`` accepts; ``WEIGHTED`` are those with weights;
* ``CHECKPOINTS``: torchvision's pretrained files (exact cache name, URL, weights name). The
  name carries the first hex digits of the file's sha256 (``googlenet-1378be20.pth``), which
  is what ``torch.hub``'s hash check compares a download against;
* ``pretrained_checkpoint(name, opts)``: which of those files an extractor's ``pretrained`` means;
* ``extractor_config(name, opts)``: the options that change an extractor's output (part of the
  configuration hash, with the weights' identity).

``tests/test_weights.py`` checks this table against torchvision's own weight enums.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

EXTRACTOR_NAMES = ("googlenet", "st3d", "i3d", "frames")
WEIGHTED = ("googlenet", "st3d", "i3d")
ST3D_ARCHS = ("r3d_18", "r2plus1d_18")

# Bumped when an extractor's computation changes, so stores recompute instead of mixing.
EXTRACTOR_VERSIONS = {"googlenet": 1, "st3d": 1, "i3d": 1, "frames": 1}

_HASH_IN_NAME = re.compile(r"-([a-f0-9]+)\.")  # torch.hub's HASH_REGEX


@dataclass(frozen=True)
class Checkpoint:
    """One torchvision pretrained file."""

    file: str  # exact cache file name: $TORCH_HOME/hub/checkpoints/<file>
    url: str  # the default host
    weights_name: str  # torchvision's weights enum, recorded in the store

    @property
    def hash_prefix(self) -> str:
        """The sha256 prefix in the file name (what ``torch.hub`` checks a download against)."""
        m = _HASH_IN_NAME.search(self.file)
        return m.group(1) if m else ""


_HOST = "https://download.pytorch.org/models"
CHECKPOINTS = {
    "googlenet": Checkpoint("googlenet-1378be20.pth", f"{_HOST}/googlenet-1378be20.pth",
                            "GoogLeNet_Weights.IMAGENET1K_V1"),
    "r3d_18": Checkpoint("r3d_18-b3b3357e.pth", f"{_HOST}/r3d_18-b3b3357e.pth",
                         "R3D_18_Weights.KINETICS400_V1"),
    "r2plus1d_18": Checkpoint("r2plus1d_18-91a641e6.pth", f"{_HOST}/r2plus1d_18-91a641e6.pth",
                              "R2Plus1D_18_Weights.KINETICS400_V1"),
}


def pretrained_checkpoint(extractor: str, st3d_arch: str = "r3d_18") -> Checkpoint:
    """The file ``--weights pretrained`` means for an extractor. I3D has no torchvision
    checkpoint of its own: its pretrained weights are ImageNet GoogLeNet, inflated to 3-D."""
    if extractor in ("googlenet", "i3d"):
        return CHECKPOINTS["googlenet"]
    if extractor == "st3d":
        return CHECKPOINTS[st3d_arch]
    raise KeyError(f"{extractor!r} has no pretrained weights")


def extractor_config(name: str, opts) -> dict:
    """The options that change ``name``'s features (``opts``: ExtractorOptions); batch size,
    device and thread counts are left out on purpose: they change speed, not meaning."""
    cfg: dict = {"name": name, "version": EXTRACTOR_VERSIONS[name]}
    if name == "st3d":
        cfg.update(arch=opts.st3d_arch, clip_len=opts.clip_len, spatial=opts.spatial)
    elif name == "i3d":
        cfg.update(clip_len=opts.clip_len, spatial=opts.spatial)
    elif name == "frames":
        cfg.update(size=opts.frames_size)
    return cfg
