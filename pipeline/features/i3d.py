"""I3D: our InceptionI3d (``i3d_net.py``) on a clip around each pick.

    clips uint8 [B, 16, 224, 224, 3]  (decoder: swscale straight to 224×224, full frame)
      -> x/255 * 2 - 1  (the [-1, 1] range of both the I3D checkpoints and GoogLeNet's weights)
      -> Mixed_5c [B, 1024, 2, 7, 7] -> mean over time [B, 1024, 7, 7]
         (``--spatial S``: adaptive pool to [B, 1024, S, S]) -> float16

Decode size (224, 224), full frame squeezed like the GoogLeNet stream, so the decoder can share
one converted frame between the two and both see the same field of view.

Weights, in order of precedence:
  --i3d-weights PATH   a public pytorch-i3d RGB checkpoint (rgb_imagenet.pt), loaded strictly,
                       run with TF SAME padding as it was trained
  --weights PATH       an I3D state dict (detected by its keys) or a GoogLeNet one to inflate
  --weights auto|pretrained
                       torchvision's ImageNet GoogLeNet ($TORCH_HOME/hub/checkpoints/
                       googlenet-1378be20.pth) inflated to 3-D (inflate.py); auto falls back
                       to a loud, recorded seeded random init when the file is absent
  --weights random     seeded random init
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torchvision.models import GoogLeNet_Weights

from pipeline.features import clips as C
from pipeline.features.base import EXTRACTORS, WEIGHT_POLICIES, ExtractorOptions, FeatureSpec
from pipeline.features.i3d_net import FEATURE_CHANNELS, InceptionI3d
from pipeline.features.inflate import inflate_googlenet

DECODE_SIZE = (224, 224)
MEAN, STD = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)  # (x/255 - 0.5) / 0.5 = x/255 * 2 - 1
GOOGLENET_WEIGHTS = GoogLeNet_Weights.IMAGENET1K_V1
GOOGLENET_FILE = GOOGLENET_WEIGHTS.url.rsplit("/", 1)[-1]  # googlenet-1378be20.pth
I3D_MARKER_KEY = "Mixed_5c.b0.conv3d.weight"


def native_map_size(size: tuple[int, int] = DECODE_SIZE) -> tuple[int, int]:
    """Mixed_5c spatial size: five stride-2 stages, each ceil(n / 2) (SAME or symmetric stem)."""
    out = []
    for n in size:
        for _ in range(5):
            n = C.same_out(n, 2)
        out.append(n)
    return tuple(out)


def load_i3d_checkpoint(path: str) -> InceptionI3d:
    """A public pytorch-i3d RGB checkpoint, strictly: a wrong or missing key raises one line."""
    model = InceptionI3d(padding="same")
    C.load_strict(model, C.read_state_dict(path), str(path))
    return model


def build_i3d_model(opts: ExtractorOptions) -> tuple[InceptionI3d, str, dict]:
    """(model, recorded weights string, extra attrs) under the precedence in the module doc."""
    if opts.i3d_weights:
        return (
            load_i3d_checkpoint(opts.i3d_weights),
            str(opts.i3d_weights),
            {"source": "pytorch-i3d checkpoint", "padding": "same"},
        )
    policy = opts.weights
    if policy not in WEIGHT_POLICIES:  # a PATH: an I3D checkpoint or a GoogLeNet to inflate
        state = C.read_state_dict(policy)
        if I3D_MARKER_KEY in state:
            model = InceptionI3d(padding="same")
            C.load_strict(model, state, str(policy))
            return model, str(policy), {"source": "i3d checkpoint", "padding": "same"}
        try:
            model = C.seeded(lambda: inflate_googlenet(state))
        except ValueError as e:
            raise ValueError(f"{policy}: neither an I3D nor a GoogLeNet state dict ({e})") from None
        return (
            model,
            f"inflated({policy})",
            {"source": "inflated GoogLeNet", "padding": "symmetric"},
        )
    state, weights, checkpoint = C.resolve_weights(
        policy,
        GOOGLENET_FILE,
        str(GOOGLENET_WEIGHTS),
        "i3d",
        hint=" to inflate, or --i3d-weights PATH (pytorch-i3d rgb_imagenet.pt)",
    )
    if state is None:
        return (
            C.seeded(lambda: InceptionI3d(padding="same")),
            weights,
            {"source": "random", "padding": "same"},
        )
    model = C.seeded(lambda: inflate_googlenet(state))
    return (
        model,
        f"inflated({weights})",
        {"source": "inflated GoogLeNet", "padding": "symmetric", "checkpoint": checkpoint},
    )


@dataclass
class I3dExtractor:
    """uint8 [B, L, 224, 224, 3] -> float16 [B, 1024, h, w]."""

    spec: FeatureSpec
    model: InceptionI3d
    device: torch.device
    per_forward: int
    spatial: int | None
    channels_last: bool

    def _prepare(self, clips: np.ndarray) -> torch.Tensor:
        return C.to_input(clips, MEAN, STD, self.device, self.channels_last)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        C.check_clips(batch, self.spec.decode_size, self.spec.name)
        return C.run_batches(self.model, batch, self.per_forward, self._prepare, self.spatial)


@EXTRACTORS.register("i3d")
def build_i3d(opts: ExtractorOptions) -> I3dExtractor:
    C.check_spatial(opts.spatial, "i3d")
    device = C.resolve_device(opts.device)
    model, weights, extra = build_i3d_model(opts)
    model, channels_last = C.place_model(model, device)
    feature_shape = C.map_shape(FEATURE_CHANNELS, native_map_size(), opts.spatial)
    spec = FeatureSpec(
        name="i3d",
        decode_size=DECODE_SIZE,
        clip_len=opts.clip_len,
        feature_shape=feature_shape,
        dtype="float16",
        weights=weights,
        preprocessing=(
            f"{opts.clip_len} consecutive frames centred on the pick, swscale to "
            f"{DECODE_SIZE[0]}x{DECODE_SIZE[1]} (full frame), x/255*2-1; Mixed_5c mean "
            f"over time"
            + (f", adaptive avg pool {opts.spatial}x{opts.spatial}" if opts.spatial else "")
        ),
        extra={**extra, "spatial": opts.spatial},
    )
    return I3dExtractor(
        spec, model, device, max(1, opts.batch_size // 4), opts.spatial, channels_last
    )
