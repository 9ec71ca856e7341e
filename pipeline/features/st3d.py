"""ST3D: a torchvision 3-D ResNet (r3d_18 default, r2plus1d_18) on Kinetics-400, per pick.

    clips uint8 [B, 16, 128, 171, 3]  (decoder: swscale straight to 128×171)
      -> centre crop 112×112, (x/255 - mean) / std with the Kinetics mean/std
      -> stem, layer1..layer4: [B, 512, 2, 7, 7]
      -> mean over time: [B, 512, 7, 7]   (``--spatial S``: adaptive pool to [B, 512, S, S])
      -> float16

Decode size: (128, 171) then a 112 centre crop is exactly the weights' own transform
(torchvision ``VideoClassification``: resize 128×171, crop 112), so features are what the
Kinetics-trained net saw; the decoder does the resize in swscale and only the crop is ours.

Weights (``pipeline/features/weights.py``): ``pretrained`` = torchvision's Kinetics-400 file
for the arch (``r3d_18-b3b3357e.pth`` / ``r2plus1d_18-91a641e6.pth``: cached, downloaded or from
a mirror, hash-checked); ``random`` = seeded init; ``PATH`` = a state dict, loaded strictly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torchvision.models import video as tv_video

from pipeline.features import clips as C
from pipeline.features.base import EXTRACTORS, RANDOM_INIT, ExtractorOptions, FeatureSpec, spec_weights
from pipeline.features.catalog import CHECKPOINTS
from pipeline.features.device_input import Uploader
from pipeline.features.weights import ResolvedWeights, load_state_dict, load_strict, resolved

KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
KINETICS_STD = (0.22803, 0.22145, 0.216989)
DECODE_SIZE = (128, 171)  # the weights' resize_size
CROP_SIZE = (112, 112)  # the weights' crop_size
FEATURE_CHANNELS = 512

# arch -> (builder, torchvision weights enum member)
ARCHS = {
    "r3d_18": (tv_video.r3d_18, tv_video.R3D_18_Weights.KINETICS400_V1),
    "r2plus1d_18": (tv_video.r2plus1d_18, tv_video.R2Plus1D_18_Weights.KINETICS400_V1),
}


def checkpoint_file_name(arch: str) -> str:
    """torchvision's exact cache file name, e.g. ``r3d_18-b3b3357e.pth``."""
    return CHECKPOINTS[arch].file


def native_map_size(crop: tuple[int, int] = CROP_SIZE) -> tuple[int, int]:
    """Spatial size of layer4 for a crop: stem stride 2 (k7, p3), then three stride-2 stages."""
    out = []
    for n in crop:
        n = C.conv_out(n, 7, 2, 3)
        for _ in range(3):
            n = C.conv_out(n, 3, 2, 1)
        out.append(n)
    return tuple(out)


@dataclass
class St3dExtractor:
    """uint8 [B, L, 128, 171, 3] -> float16 [B, 512, h, w]."""

    spec: FeatureSpec
    model: torch.nn.Module
    device: torch.device
    per_forward: int
    spatial: int | None
    channels_last: bool
    upload: Uploader

    def backbone(self, x: torch.Tensor) -> torch.Tensor:
        """[b, 3, L, 112, 112] -> [b, 512, L/8, 7, 7] (the last conv map, before avgpool)."""
        m = self.model
        return m.layer4(m.layer3(m.layer2(m.layer1(m.stem(x)))))

    def _prepare(self, clips: torch.Tensor) -> torch.Tensor:
        """uint8 [b, L, 128, 171, 3] on the device -> normalised [b, 3, L, 112, 112]."""
        return C.to_input(C.centre_crop(clips, CROP_SIZE), KINETICS_MEAN, KINETICS_STD, self.channels_last)

    def __call__(self, batch) -> np.ndarray:
        """uint8 [B, L, 128, 171, 3] (or a ClipBatch) -> float16 [B, 512, h, w]"""
        C.check_clips(batch, self.spec.decode_size, self.spec.name)
        return C.run_batches(self.backbone, batch, self.per_forward, self._prepare, self.spatial, self.upload)


def model_from_state(state: dict | None, w: ResolvedWeights, opts: ExtractorOptions):
    """(VideoResNet, recorded weights label, extra attrs); ``state`` None = seeded random init."""
    builder, _ = ARCHS[opts.st3d_arch]
    model = C.seeded(lambda: builder(weights=None))
    if state is None:
        return model, RANDOM_INIT, {}
    load_strict(model, state, w.path or "state dict", f"torchvision {opts.st3d_arch}")
    return model, w.name, {}


@EXTRACTORS.register("st3d")
def build_st3d(opts: ExtractorOptions) -> St3dExtractor:
    if opts.st3d_arch not in ARCHS:
        raise ValueError(
            f"st3d: unknown --st3d-arch {opts.st3d_arch!r} (known: {', '.join(ARCHS)})"
        )
    C.check_spatial(opts.spatial, "st3d")
    device = C.resolve_device(opts.device)
    w = resolved("st3d", opts)
    model, label, _ = model_from_state(load_state_dict(w), w, opts)
    model, channels_last = C.place_model(model, device)
    feature_shape = C.map_shape(FEATURE_CHANNELS, native_map_size(), opts.spatial)
    spec = FeatureSpec(
        name="st3d",
        decode_size=DECODE_SIZE,
        clip_len=opts.clip_len,
        feature_shape=feature_shape,
        dtype="float16",
        **spec_weights(w, label),
        preprocessing=(
            f"{opts.clip_len} consecutive frames centred on the pick, swscale to "
            f"{DECODE_SIZE[0]}x{DECODE_SIZE[1]}, centre crop {CROP_SIZE[0]}x{CROP_SIZE[1]}, "
            f"x/255, mean {KINETICS_MEAN}, std {KINETICS_STD}; layer4 mean over time"
            + (f", adaptive avg pool {opts.spatial}x{opts.spatial}" if opts.spatial else "")
        ),
        extra={"arch": opts.st3d_arch, "spatial": opts.spatial},
    )
    return St3dExtractor(
        spec, model, device, max(1, opts.batch_size // 4), opts.spatial, channels_last, Uploader(device)
    )
