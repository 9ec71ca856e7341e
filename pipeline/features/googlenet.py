"""GoogLeNet pool5: 1024-d per frame (the eccv16 feature), from torchvision's GoogLeNet.

    frames uint8 [B, 224, 224, 3] -> features float32 [B, 1024]

Preprocessing is the ImageNet weights' own: the decoder resizes straight to 224×224 in swscale
(the eccv16 features were computed on whole frames resized to 224, not centre crops), then
/255 and mean/std normalisation. torchvision's pretrained builder sets ``transform_input=True``,
which re-maps ImageNet-normalised input to the original Inception normalisation inside the
model; we keep that flag whenever the ImageNet checkpoint is loaded, so the weights see what
they were trained on.

Weights policy (``opts.weights``):
    auto        torchvision's cache ($TORCH_HOME/hub/checkpoints/googlenet-1378be20.pth) or
                download; offline -> seeded random init with a loud warning, recorded in the store
    pretrained  same, but fail with one clear line if the weights cannot be had
    random      seeded random init (recorded)
    PATH        a state dict file (torchvision key names; aux heads are ignored)
"""
from __future__ import annotations

import os

import numpy as np
import torch
from torch import nn

from pipeline.features.base import (
    EXTRACTORS,
    RANDOM_INIT_SEED,
    ExtractorOptions,
    FeatureSpec,
    WeightsUnavailable,
    as_float_batch,
    torch_hub_checkpoint,
    warn_random_init,
)

CHECKPOINT_FILE = "googlenet-1378be20.pth"
WEIGHTS_NAME = "GoogLeNet_Weights.IMAGENET1K_V1"
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
SIZE = (224, 224)


def _bare_googlenet(transform_input: bool) -> nn.Module:
    """Seeded GoogLeNet returning pool5. torchvision's own init (truncated normal, std 0.01)
    shrinks the signal ~10x per layer, so a random-init fallback would give ~1e-13 features;
    a variance-preserving (Kaiming) init keeps them O(1), which KTS and the heads need."""
    from torchvision.models import googlenet

    torch.manual_seed(RANDOM_INIT_SEED)
    model = googlenet(weights=None, aux_logits=False, init_weights=False, transform_input=transform_input)
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
    model.fc = nn.Identity()  # pool5 -> dropout (identity in eval) -> fc: now returns 1024-d pool5
    return model


def _load_state(model: nn.Module, state: dict, origin: str) -> None:
    state = {k: v for k, v in state.items() if not k.startswith(("aux1.", "aux2.", "fc."))}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise WeightsUnavailable(
            f"{origin}: not a torchvision GoogLeNet state dict "
            f"(missing {missing[:3]}{'…' if len(missing) > 3 else ''}, unexpected {unexpected[:3]})"
        )


def load_googlenet(policy: str = "auto") -> tuple[nn.Module, str]:
    """(model in eval mode returning pool5, the weights string recorded in the store)."""
    if policy == "random":
        return _bare_googlenet(transform_input=False).eval(), f"random-init(seed={RANDOM_INIT_SEED})"
    if policy not in ("auto", "pretrained"):  # a path
        if not os.path.isfile(policy):
            raise WeightsUnavailable(f"{policy}: GoogLeNet weights file not found")
        model = _bare_googlenet(transform_input=True)
        _load_state(model, torch.load(policy, map_location="cpu", weights_only=True), policy)
        return model.eval(), os.path.abspath(policy)
    cached = torch_hub_checkpoint(CHECKPOINT_FILE)
    try:
        if cached.is_file():
            state = torch.load(cached, map_location="cpu", weights_only=True)
        else:
            from torch.hub import load_state_dict_from_url
            from torchvision.models import GoogLeNet_Weights

            state = load_state_dict_from_url(GoogLeNet_Weights.IMAGENET1K_V1.url, progress=False)
        model = _bare_googlenet(transform_input=True)
        _load_state(model, state, str(cached))
        return model.eval(), WEIGHTS_NAME
    except Exception as e:  # offline, corrupt cache, …
        reason = f"{type(e).__name__}: {' '.join(str(e).split())[:120]}"
        if policy == "pretrained":
            raise WeightsUnavailable(
                f"GoogLeNet ImageNet weights unavailable ({reason}); place {CHECKPOINT_FILE} "
                f"under {cached.parent} or pass --weights PATH"
            ) from None
        weights = warn_random_init("googlenet", reason)
        return _bare_googlenet(transform_input=False).eval(), weights


class GoogLeNetPool5:
    """Batched, inference-mode, channels_last GoogLeNet pool5 extractor."""

    def __init__(self, opts: ExtractorOptions = ExtractorOptions()):
        self.device = torch.device(opts.device)
        model, weights = load_googlenet(opts.weights)
        self.model = model.to(self.device).to(memory_format=torch.channels_last)
        self.batch_size = opts.batch_size
        self.mean = torch.tensor(MEAN, device=self.device).view(1, 3, 1, 1) * 255.0
        self.std = torch.tensor(STD, device=self.device).view(1, 3, 1, 1) * 255.0
        self.spec = FeatureSpec(
            name="googlenet",
            decode_size=SIZE,
            clip_len=1,
            feature_shape=(1024,),
            dtype="float32",
            weights=weights,
            preprocessing="resize 224x224 (swscale), /255, ImageNet mean/std, pool5",
        )

    @torch.inference_mode()
    def __call__(self, frames: np.ndarray) -> np.ndarray:
        """frames uint8 [B, 224, 224, 3] -> float32 [B, 1024]"""
        frames = as_float_batch(frames)
        out = []
        for i in range(0, len(frames), self.batch_size):
            x = torch.from_numpy(frames[i : i + self.batch_size]).to(self.device)
            # NHWC uint8 viewed as NCHW is already channels_last in memory: no copy
            x = x.permute(0, 3, 1, 2).float()
            x = ((x - self.mean) / self.std).contiguous(memory_format=torch.channels_last)
            out.append(self.model(x).float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, 1024), np.float32)


@EXTRACTORS.register("googlenet")
def build_googlenet(opts: ExtractorOptions = ExtractorOptions()) -> GoogLeNetPool5:
    return GoogLeNetPool5(opts)
