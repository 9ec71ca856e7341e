"""I3D: inflation reproduces GoogLeNet on a "boring video", public checkpoint names load strictly,
the weights policy, and the extractor's shapes. No downloads: GoogLeNet is seeded and random."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torchvision.models import googlenet

from pipeline.errors import WeightsError
from pipeline.features.base import ExtractorOptions, WeightsUnavailable
from pipeline.features.i3d import build_i3d
from pipeline.features.i3d_net import (
    InceptionBlock3D,
    InceptionI3d,
    MaxPool3dSame,
    Unit3D,
    same_pads,
)
from pipeline.features.inflate import inflate_googlenet, inflate_kernel

torch.set_num_threads(1)


def seeded_googlenet(calibrate_bn: bool) -> nn.Module:
    """torchvision GoogLeNet, random (seed 0), no aux heads, raw [-1, 1] input, pool5 output.

    ``calibrate_bn``: its init leaves BN at identity (mean 0, var 1), so a wrong BN copy would go
    unnoticed; one train-mode pass on random images gives every BN real, distinct statistics."""
    torch.manual_seed(0)
    g = googlenet(weights=None, aux_logits=False, init_weights=True, transform_input=False)
    g.fc = nn.Identity()
    if calibrate_bn:
        for m in g.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.reset_running_stats()
                m.momentum = None  # cumulative average over the pass
        g.train()
        with torch.no_grad():
            g(torch.rand(8, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1)
    return g.eval()


def googlenet_layers(g: nn.Module) -> list[nn.Module]:
    """GoogLeNet's feature path, in the order of InceptionI3d.ENDPOINTS."""
    return [
        g.conv1,
        g.maxpool1,
        g.conv2,
        g.conv3,
        g.maxpool2,
        g.inception3a,
        g.inception3b,
        g.maxpool3,
        g.inception4a,
        g.inception4b,
        g.inception4c,
        g.inception4d,
        g.inception4e,
        g.maxpool4,
        g.inception5a,
        g.inception5b,
    ]


def temporal_geometry(layer: nn.Module, t_in: int) -> tuple[int, int, int]:
    """(kernel, stride, front padding) of a layer along time."""
    if isinstance(layer, (Unit3D, MaxPool3dSame)):
        k, s = layer.kernel[0], layer.stride[0]
        dynamic = isinstance(layer, MaxPool3dSame) or layer.dynamic_pad
        return k, s, same_pads(t_in, k, s)[0] if dynamic else k // 2
    assert isinstance(layer, InceptionBlock3D)
    return 3, 1, 1  # its widest temporal reach: 3×3×3 convs and pool, stride 1, pad 1


def test_inflated_layers_reproduce_googlenet_on_a_boring_video():
    """Every endpoint, stem to Mixed_5c, equals its 2-D counterpart (broadcast over time) at the
    temporal positions whose receptive field lies inside the clip; padding-reached positions
    differ. 128 frames at 32×32 keep Mixed_5c's padding-free window non-empty (every spatial
    size stays even, where SAME pooling equals torchvision's ceil_mode pooling)."""
    g = seeded_googlenet(calibrate_bn=True)
    i3d = inflate_googlenet(g).eval()
    img = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(2)) * 2 - 1
    x2, x3 = img, img.unsqueeze(2).repeat(1, 1, 128, 1, 1)
    lo, hi = 0, 127  # frames whose values are untouched by padding so far
    with torch.inference_mode():
        for (name, layer3), layer2 in zip(i3d.endpoints(), googlenet_layers(g), strict=True):
            k, s, pad = temporal_geometry(layer3, x3.shape[2])
            x3, x2 = layer3(x3), layer2(x2)
            valid = [
                t for t in range(x3.shape[2]) if s * t - pad >= lo and s * t - pad + k - 1 <= hi
            ]
            assert valid, f"{name}: no padding-free position; use a longer clip"
            lo, hi = valid[0], valid[-1]
            assert x3.shape[:2] == x2.shape[:2] and x3.shape[3:] == x2.shape[2:], name
            scale = x2.abs().max().item()
            assert scale > 0.1, f"{name}: degenerate activations"
            err = (x3[:, :, lo : hi + 1] - x2.unsqueeze(2)).abs().max().item()
            # measured: 6e-6 (stem) growing to 3e-4 (Mixed_5c) on activations of size ~4
            assert err <= 1e-3 * scale, f"{name}: inflated differs from 2-D by {err:.3g}"
            # the first position is reached by zero padding: it must differ (test is not vacuous)
            edge = (x3[:, :, 0] - x2).abs().max().item()
            assert edge > 1e-2 * scale, f"{name}: padded edge unexpectedly equal"


def test_static_16_frame_clip_pooled_vector_vs_pool5():
    """How close I3D's pooled Mixed_5c vector of a static 16-frame 224² clip comes to GoogLeNet's
    pool5 on that image (seeded random GoogLeNet, raw init, inflated).

    Measured: relative L2 error 0.113, cosine 0.9936. At 16 frames Mixed_5c has 2 temporal
    positions and the zero padding of every temporal conv/pool reaches both, so the vector is
    close but not equal. With BN statistics calibrated as in the layer test (real BN shifts make
    padded zeros matter more) the same clip gives relative error 0.76 but cosine 0.969: mostly a
    change of magnitude, little of direction. Where padding does not reach, every layer is exact
    (test above)."""
    g = seeded_googlenet(calibrate_bn=False)
    i3d = inflate_googlenet(g).eval().to(memory_format=torch.channels_last_3d)
    img = torch.rand(1, 3, 224, 224, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.inference_mode():
        pool5 = g(img)[0].double()
        clip = (
            img.unsqueeze(2).repeat(1, 1, 16, 1, 1).contiguous(memory_format=torch.channels_last_3d)
        )
        fmap = i3d(clip)
    assert tuple(fmap.shape) == (1, 1024, 2, 7, 7)
    vec = fmap.mean(dim=(2, 3, 4))[0].double()
    rel = ((vec - pool5).norm() / pool5.norm()).item()
    cos = (vec @ pool5 / (vec.norm() * pool5.norm())).item()  # float64: the raw init is ~1e-10
    assert rel < 0.13, f"pooled I3D vs pool5: relative error {rel:.3f} (measured 0.113)"
    assert cos > 0.99, f"pooled I3D vs pool5: cosine {cos:.4f} (measured 0.994)"


def test_inflate_kernel_repeats_and_divides():
    w = torch.randn(4, 3, 5, 5)
    w3 = inflate_kernel(w, 7)
    assert w3.shape == (4, 3, 7, 5, 5)
    torch.testing.assert_close(w3.sum(dim=2), w)
    torch.testing.assert_close(w3[:, :, 3], w / 7)


# -- the public checkpoint's names ---------------------------------------------------------
# Written out here, independently of i3d_net.py: pytorch-i3d's InceptionI3d widths.
PUBLIC_BLOCKS = {  # name: (in, [b0, b1a, b1b, b2a, b2b, b3b])
    "Mixed_3b": (192, [64, 96, 128, 16, 32, 32]),
    "Mixed_3c": (256, [128, 128, 192, 32, 96, 64]),
    "Mixed_4b": (480, [192, 96, 208, 16, 48, 64]),
    "Mixed_4c": (512, [160, 112, 224, 24, 64, 64]),
    "Mixed_4d": (512, [128, 128, 256, 24, 64, 64]),
    "Mixed_4e": (512, [112, 144, 288, 32, 64, 64]),
    "Mixed_4f": (528, [256, 160, 320, 32, 128, 128]),
    "Mixed_5b": (832, [256, 160, 320, 32, 128, 128]),
    "Mixed_5c": (832, [384, 192, 384, 48, 128, 128]),
}


def public_i3d_state(seed: int = 5) -> dict[str, torch.Tensor]:
    """A synthetic state dict with the public rgb_imagenet.pt key names and shapes (no
    num_batches_tracked: the public file predates it)."""
    gen = torch.Generator().manual_seed(seed)
    units = {
        "Conv3d_1a_7x7": (3, 64, 7),
        "Conv3d_2b_1x1": (64, 64, 1),
        "Conv3d_2c_3x3": (64, 192, 3),
    }
    for name, (cin, (c0, c1a, c1b, c2a, c2b, c3b)) in PUBLIC_BLOCKS.items():
        units.update(
            {
                f"{name}.b0": (cin, c0, 1),
                f"{name}.b1a": (cin, c1a, 1),
                f"{name}.b1b": (c1a, c1b, 3),
                f"{name}.b2a": (cin, c2a, 1),
                f"{name}.b2b": (c2a, c2b, 3),
                f"{name}.b3b": (cin, c3b, 1),
            }
        )
    state = {}
    for unit, (cin, cout, k) in units.items():
        state[f"{unit}.conv3d.weight"] = torch.randn(cout, cin, k, k, k, generator=gen) * 0.05
        state[f"{unit}.bn.weight"] = torch.rand(cout, generator=gen) + 0.5
        state[f"{unit}.bn.bias"] = torch.randn(cout, generator=gen) * 0.1
        state[f"{unit}.bn.running_mean"] = torch.randn(cout, generator=gen) * 0.1
        state[f"{unit}.bn.running_var"] = torch.rand(cout, generator=gen) + 0.5
    state["logits.conv3d.weight"] = torch.randn(400, 1024, 1, 1, 1, generator=gen) * 0.01
    state["logits.conv3d.bias"] = torch.zeros(400)
    return state


def test_public_key_names_load_strictly(tmp_path):
    state = public_i3d_state()
    assert len(state) == 57 * 5 + 2
    path = tmp_path / "rgb_imagenet.pt"
    torch.save(state, path)
    ext = build_i3d(ExtractorOptions(weights={"i3d": str(path)}, clip_len=2))
    assert ext.spec.weights == "rgb_imagenet.pt" and ext.spec.weights_file == str(path)
    assert ext.spec.extra["padding"] == "same"
    own = ext.model.state_dict()
    for key in (
        "Conv3d_1a_7x7.conv3d.weight",
        "Mixed_5c.b3b.bn.running_var",
        "Mixed_4b.b2b.conv3d.weight",
        "logits.conv3d.weight",
    ):
        torch.testing.assert_close(own[key], state[key])


def test_weights_path_is_detected_as_i3d_or_rejected(tmp_path):
    """``--weights PATH`` with I3D keys loads as I3D; a state dict of neither kind fails clearly."""
    path = tmp_path / "i3d_as_weights.pt"
    torch.save(public_i3d_state(), path)
    ext = build_i3d(ExtractorOptions(weights=str(path), clip_len=2))
    assert ext.spec.weights == "i3d_as_weights.pt" and ext.spec.extra["source"] == "i3d checkpoint"
    other = tmp_path / "other.pt"
    torch.save({"fc.weight": torch.zeros(2, 2)}, other)
    with pytest.raises(
        WeightsError, match=r"neither an I3D nor a GoogLeNet.*conv1\.conv\.weight.*other\.pt"
    ):
        build_i3d(ExtractorOptions(weights=str(other)))


def test_wrong_key_fails_with_a_clear_message(tmp_path):
    state = public_i3d_state()
    state["Mixed_4b.b1c.conv3d.weight"] = state.pop("Mixed_4b.b1b.conv3d.weight")
    path = tmp_path / "renamed.pt"
    torch.save(state, path)
    with pytest.raises(
        WeightsError,
        match=r"missing key 'Mixed_4b\.b1b\.conv3d\.weight'.*"
        r"unexpected key 'Mixed_4b\.b1c\.conv3d\.weight'.*renamed\.pt",
    ):
        build_i3d(ExtractorOptions(weights={"i3d": str(path)}))

    state = public_i3d_state()
    state["Mixed_5c.b0.conv3d.weight"] = torch.zeros(384, 832, 3, 3, 3)
    torch.save(state, path)
    with pytest.raises(
        WeightsError, match=r"'Mixed_5c\.b0\.conv3d\.weight' has shape \(384, 832, 3, 3, 3\)"
    ):
        build_i3d(ExtractorOptions(weights={"i3d": str(path)}))

    with pytest.raises(WeightsError, match="weights file not found"):
        build_i3d(ExtractorOptions(weights={"i3d": str(tmp_path / "absent.pt")}))


# -- weights policy ------------------------------------------------------------------------
def test_planted_googlenet_is_inflated_and_recorded(tmp_path, monkeypatch):
    torch.manual_seed(3)
    g = googlenet(weights=None, aux_logits=True, init_weights=True)  # a real file has aux1/aux2
    ckpt = tmp_path / "hub" / "checkpoints" / "googlenet-1378be20.pth"
    ckpt.parent.mkdir(parents=True)
    torch.save(g.state_dict(), ckpt)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    ext = build_i3d(ExtractorOptions(weights="pretrained", clip_len=2))
    assert ext.spec.weights == "inflated(GoogLeNet_Weights.IMAGENET1K_V1)"
    assert ext.spec.weights_file == str(ckpt)
    own = ext.model.state_dict()
    torch.testing.assert_close(
        own["Conv3d_1a_7x7.conv3d.weight"], inflate_kernel(g.conv1.conv.weight.detach(), 7)
    )
    torch.testing.assert_close(
        own["Mixed_4f.b2b.bn.running_var"], g.inception4e.branch3[1].bn.running_var
    )


def test_missing_googlenet_raises_random_only_when_asked(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("VSUM_WEIGHTS_URL", "http://127.0.0.1:9")  # nothing listens: no download
    for policy in ("pretrained", "auto"):
        with pytest.raises(WeightsUnavailable, match="googlenet-1378be20.pth"):
            build_i3d(ExtractorOptions(weights=policy))
    a = build_i3d(ExtractorOptions(weights="random", clip_len=2))
    assert a.spec.weights == "random-init(seed=0)"
    b = build_i3d(ExtractorOptions(weights="random", clip_len=2))
    torch.testing.assert_close(a.model.state_dict(), b.model.state_dict())  # seeded


# -- the extractor -------------------------------------------------------------------------
def test_extractor_shapes_and_spatial_pooling():
    """2-frame clips keep this cheap; 224² is the extractor's fixed decode size."""
    rng = np.random.default_rng(0)
    clips = rng.integers(0, 256, (1, 2, 224, 224, 3), dtype=np.uint8)
    native = build_i3d(ExtractorOptions(weights="random", clip_len=2))
    assert native.spec.decode_size == (224, 224) and native.spec.dtype == "float16"
    out = native(clips)
    assert out.shape == (1, *native.spec.feature_shape) == (1, 1024, 7, 7)
    assert out.dtype == np.float16 and np.isfinite(out).all() and out.std() > 0

    pooled = build_i3d(ExtractorOptions(weights="random", clip_len=2, spatial=1))
    assert pooled.spec.feature_shape == (1024, 1, 1)
    vec = pooled(clips)
    np.testing.assert_allclose(
        vec[:, :, 0, 0], out.astype(np.float32).mean(axis=(2, 3)), rtol=1e-2, atol=1e-2
    )

    with pytest.raises(ValueError, match=r"i3d: expected uint8 clips \[B, L, 224, 224, 3\]"):
        native(rng.integers(0, 256, (1, 2, 112, 112, 3), dtype=np.uint8))


def test_model_runs_on_small_clips():
    """The net itself is size-agnostic: [B, 3, 8, 64, 64] -> [B, 1024, 1, 2, 2]."""
    m = InceptionI3d().eval()
    with torch.inference_mode():
        y = m(torch.zeros(2, 3, 8, 64, 64))
    assert y.shape == (2, 1024, 1, 2, 2)
