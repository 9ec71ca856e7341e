"""I3D: our InceptionI3d (``i3d_net.py``) on a clip around each pick.

    clips uint8 [B, 16, 224, 224, 3]  (decoder: swscale straight to 224×224, full frame)
      -> x/255 * 2 - 1  (the [-1, 1] range of both the I3D checkpoints and GoogLeNet's weights)
      -> Mixed_5c [B, 1024, 2, 7, 7] -> mean over time [B, 1024, 7, 7]
         (``--spatial S``: adaptive pool to [B, 1024, S, S]) -> float16

Decode size (224, 224), full frame squeezed like the GoogLeNet stream, so the decoder can share
one converted frame between the two and both see the same field of view.

Weights (``pipeline/features/weights.py``; ``--weights i3d=…``, alias ``--i3d-weights PATH``):
  PATH         an I3D state dict (detected by its keys, e.g. pytorch-i3d's rgb_imagenet.pt),
               loaded strictly and run with TF SAME padding as it was trained; or a GoogLeNet
               state dict, inflated to 3-D (inflate.py)
  pretrained   torchvision's ImageNet GoogLeNet (``googlenet-1378be20.pth``: cached,
               downloaded or from a mirror, hash-checked), inflated to 3-D
  random       seeded random init
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from pipeline.errors import WeightsError
from pipeline.features import clips as C
from pipeline.features.base import EXTRACTORS, RANDOM_INIT, ExtractorOptions, FeatureSpec, spec_weights
from pipeline.features.device_input import Uploader
from pipeline.features.i3d_net import FEATURE_CHANNELS, InceptionI3d
from pipeline.features.inflate import inflate_googlenet
from pipeline.features.weights import ResolvedWeights, load_state_dict, load_strict, resolved

DECODE_SIZE = (224, 224)
MEAN, STD = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)  # (x/255 - 0.5) / 0.5 = x/255 * 2 - 1
I3D_MARKER_KEY = "Mixed_5c.b0.conv3d.weight"


def native_map_size(size: tuple[int, int] = DECODE_SIZE) -> tuple[int, int]:
    """Mixed_5c spatial size: five stride-2 stages, each ceil(n / 2) (SAME or symmetric stem)."""
    out = []
    for n in size:
        for _ in range(5):
            n = C.same_out(n, 2)
        out.append(n)
    return tuple(out)


def model_from_state(state: dict | None, w: ResolvedWeights, opts: ExtractorOptions = None):
    """(InceptionI3d, recorded weights label, extra attrs) from an I3D state dict (strict, SAME
    padding), a GoogLeNet one (inflated), or None (seeded random init)."""
    if state is None:
        return C.seeded(lambda: InceptionI3d(padding="same")), RANDOM_INIT, {"source": "random", "padding": "same"}
    origin = w.path or "state dict"
    if I3D_MARKER_KEY in state:
        model = InceptionI3d(padding="same")
        load_strict(model, state, origin, "InceptionI3d")
        return model, w.name, {"source": "i3d checkpoint", "padding": "same"}
    try:
        model = C.seeded(lambda: inflate_googlenet(state))
    except ValueError as e:  # names the first GoogLeNet key it lacks
        raise WeightsError(f"neither an I3D nor a GoogLeNet state dict ({e})", file=origin) from None
    return model, f"inflated({w.name})", {"source": "inflated GoogLeNet", "padding": "symmetric"}


@dataclass
class I3dExtractor:
    """uint8 [B, L, 224, 224, 3] -> float16 [B, 1024, h, w]."""

    spec: FeatureSpec
    model: InceptionI3d
    device: torch.device
    per_forward: int
    spatial: int | None
    channels_last: bool
    upload: Uploader

    def _prepare(self, clips: torch.Tensor) -> torch.Tensor:
        """uint8 [b, L, 224, 224, 3] on the device -> [b, 3, L, 224, 224] in [-1, 1]."""
        return C.to_input(clips, MEAN, STD, self.channels_last)

    def __call__(self, batch) -> np.ndarray:
        """uint8 [B, L, 224, 224, 3] (or a ClipBatch) -> float16 [B, 1024, h, w]"""
        C.check_clips(batch, self.spec.decode_size, self.spec.name)
        return C.run_batches(self.model, batch, self.per_forward, self._prepare, self.spatial, self.upload)


@EXTRACTORS.register("i3d")
def build_i3d(opts: ExtractorOptions) -> I3dExtractor:
    C.check_spatial(opts.spatial, "i3d")
    device = C.resolve_device(opts.device)
    w = resolved("i3d", opts)
    model, label, extra = model_from_state(load_state_dict(w), w, opts)
    model, channels_last = C.place_model(model, device)
    feature_shape = C.map_shape(FEATURE_CHANNELS, native_map_size(), opts.spatial)
    spec = FeatureSpec(
        name="i3d",
        decode_size=DECODE_SIZE,
        clip_len=opts.clip_len,
        feature_shape=feature_shape,
        dtype="float16",
        **spec_weights(w, label),
        preprocessing=(
            f"{opts.clip_len} consecutive frames centred on the pick, swscale to "
            f"{DECODE_SIZE[0]}x{DECODE_SIZE[1]} (full frame), x/255*2-1; Mixed_5c mean "
            f"over time"
            + (f", adaptive avg pool {opts.spatial}x{opts.spatial}" if opts.spatial else "")
        ),
        extra={**extra, "spatial": opts.spatial},
    )
    return I3dExtractor(
        spec, model, device, max(1, opts.batch_size // 4), opts.spatial, channels_last, Uploader(device)
    )
