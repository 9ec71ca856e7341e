"""GoogLeNet pool5: 1024-d per frame (the eccv16 feature), from torchvision's GoogLeNet.

    frames uint8 [B, 224, 224, 3] -> features float32 [B, 1024]

Preprocessing is the ImageNet weights' own: the decoder resizes straight to 224×224 in swscale
(the eccv16 features were computed on whole frames resized to 224, not centre crops), then
/255 and mean/std normalisation on the model's device. torchvision's pretrained builder sets
``transform_input=True``, which re-maps ImageNet-normalised input to the original Inception
normalisation inside the model; we keep that flag whenever a checkpoint is loaded, so the
weights see what they were trained on.

Weights (``pipeline/features/weights.py``): ``pretrained`` = torchvision's
``googlenet-1378be20.pth`` (cached, downloaded or from a mirror, hash-checked); ``random`` = a
seeded Kaiming init; ``PATH`` = a state dict with torchvision's key names (aux heads ignored).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from pipeline.features.base import (
    EXTRACTORS,
    RANDOM_INIT,
    RANDOM_INIT_SEED,
    ExtractorOptions,
    FeatureSpec,
    as_float_batch,
    spec_weights,
)
from pipeline.features.catalog import CHECKPOINTS
from pipeline.features.clips import resolve_device
from pipeline.features.device_input import Uploader
from pipeline.features.weights import ResolvedWeights, load_state_dict, load_strict, resolved

CHECKPOINT_FILE = CHECKPOINTS["googlenet"].file  # googlenet-1378be20.pth
WEIGHTS_NAME = CHECKPOINTS["googlenet"].weights_name
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
SIZE = (224, 224)
CHECKPOINT_ONLY = ("aux1.", "aux2.", "fc.")  # in torchvision's file, not in a pool5 model


def _bare_googlenet(transform_input: bool) -> nn.Module:
    """Seeded GoogLeNet returning pool5. torchvision's own init (truncated normal, std 0.01)
    shrinks the signal ~10x per layer, so a random init would give ~1e-13 features; a
    variance-preserving (Kaiming) init keeps them O(1), which KTS and the heads need."""
    from torchvision.models import googlenet

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_INIT_SEED)
        model = googlenet(weights=None, aux_logits=False, init_weights=False, transform_input=transform_input)
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
    model.fc = nn.Identity()  # pool5 -> dropout (identity in eval) -> fc: now returns 1024-d pool5
    return model


def model_from_state(state: dict | None, w: ResolvedWeights, opts: ExtractorOptions = None):
    """(pool5 model in eval mode, recorded weights label, extra attrs); ``state`` None = random."""
    if state is None:
        return _bare_googlenet(transform_input=False).eval(), RANDOM_INIT, {}
    model = _bare_googlenet(transform_input=True)
    load_strict(model, {k: v for k, v in state.items() if not k.startswith(CHECKPOINT_ONLY)},
                w.path or "state dict", "torchvision GoogLeNet")
    return model.eval(), w.name, {}


def load_googlenet(policy: str = "pretrained") -> tuple[nn.Module, str]:
    """(model in eval mode returning pool5, the weights label recorded in the store)."""
    w = resolved("googlenet", ExtractorOptions(weights=policy))
    model, label, _ = model_from_state(load_state_dict(w), w)
    return model, label


class GoogLeNetPool5:
    """Batched, inference-mode, channels_last GoogLeNet pool5 extractor."""

    def __init__(self, opts: ExtractorOptions = ExtractorOptions()):
        self.device = resolve_device(opts.device)
        w = resolved("googlenet", opts)
        model, label, _ = model_from_state(load_state_dict(w), w, opts)
        self.model = model.to(self.device).to(memory_format=torch.channels_last)
        self.batch_size = opts.batch_size
        self.run = self._backend(opts.backend)
        self.upload = Uploader(self.device)
        self.mean = torch.tensor(MEAN, device=self.device).view(1, 3, 1, 1) * 255.0
        self.std = torch.tensor(STD, device=self.device).view(1, 3, 1, 1) * 255.0
        self.spec = FeatureSpec(
            name="googlenet",
            decode_size=SIZE,
            clip_len=1,
            feature_shape=(1024,),
            dtype="float32",
            preprocessing="resize 224x224 (swscale), /255, ImageNet mean/std, pool5",
            **spec_weights(w, label),
        )

    def _backend(self, backend: str):
        """None (eager, channels_last: today's path) or a compiled/exported runner, built once.
        The backends are CPU paths; on a GPU the model runs eagerly whatever was asked."""
        if backend == "eager" or self.device.type != "cpu":
            return None
        from pipeline.features.backends import compile_for

        example = torch.zeros(self.batch_size, 3, SIZE[0], SIZE[1]).contiguous(memory_format=torch.channels_last)
        return compile_for(self.model, backend, example, threads=torch.get_num_threads())

    @torch.inference_mode()
    def __call__(self, frames: np.ndarray) -> np.ndarray:
        """frames uint8 [B, 224, 224, 3] -> float32 [B, 1024]"""
        frames = as_float_batch(frames)
        if not len(frames):
            return np.zeros((0, 1024), np.float32)
        batch = self.upload.array(frames)  # once per call; CPU: a view of ``frames``
        out = []
        for i in range(0, len(batch), self.batch_size):
            # NHWC uint8 viewed as NCHW is already channels_last in memory: no copy
            x = batch[i : i + self.batch_size].permute(0, 3, 1, 2).float()
            x = ((x - self.mean) / self.std).contiguous(memory_format=torch.channels_last)
            out.append(self.run(x) if self.run else self.model(x).float().cpu().numpy())
        return np.concatenate(out)


@EXTRACTORS.register("googlenet")
def build_googlenet(opts: ExtractorOptions = ExtractorOptions()) -> GoogLeNetPool5:
    return GoogLeNetPool5(opts)
