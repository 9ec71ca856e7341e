"""ST3D: torchvision's 3-D ResNets behind the weights policy, checked against torchvision's own
forward and transforms. Small clips (8 frames) keep it fast; no downloads."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision.models.video import R3D_18_Weights, r3d_18

from pipeline.errors import UsageError, WeightsError
from pipeline.features.base import ExtractorOptions, WeightsUnavailable
from pipeline.features.st3d import build_st3d

torch.set_num_threads(1)


@pytest.fixture
def clips() -> np.ndarray:
    """uint8 [2, 8, 128, 171, 3]: the decoder's 128×171 frames."""
    return np.random.default_rng(0).integers(0, 256, (2, 8, 128, 171, 3), dtype=np.uint8)


@pytest.fixture
def planted(tmp_path, monkeypatch):
    """A seeded r3d_18 saved under a temporary TORCH_HOME with torchvision's exact file name."""
    torch.manual_seed(7)
    model = r3d_18(weights=None)
    ckpt = tmp_path / "hub" / "checkpoints" / "r3d_18-b3b3357e.pth"
    ckpt.parent.mkdir(parents=True)
    torch.save(model.state_dict(), ckpt)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    return model.eval(), ckpt


def test_planted_checkpoint_loads_and_matches_torchvision(planted, clips):
    model, ckpt = planted
    ext = build_st3d(ExtractorOptions(weights="pretrained", clip_len=8, batch_size=4))  # 1 clip/forward
    assert ext.spec.weights == "R3D_18_Weights.KINETICS400_V1"
    assert ext.spec.weights_file == str(ckpt)
    assert ext.spec.decode_size == (128, 171) and ext.spec.dtype == "float16"
    out = ext(clips)
    assert out.shape == (2, *ext.spec.feature_shape) == (2, 512, 7, 7) and out.dtype == np.float16

    # Reference: torchvision's own transform for these weights (resize 128×171 is the identity
    # here, crop 112, Kinetics mean/std) and its own forward with fc = Identity, which is the
    # mean of layer4 over (t, h, w) — so our map's spatial mean must equal it.
    x = torch.from_numpy(clips).permute(0, 1, 4, 2, 3)  # [B, T, 3, H, W] uint8
    x = R3D_18_Weights.KINETICS400_V1.transforms()(x)  # -> [B, 3, T, 112, 112]
    model.fc = torch.nn.Identity()
    with torch.inference_mode():
        ref = model(x).numpy()
    ours = out.astype(np.float32).mean(axis=(2, 3))
    np.testing.assert_allclose(ours, ref, rtol=2e-2, atol=2e-3 * np.abs(ref).max())


def test_spatial_option_pools_the_map(clips):
    native = build_st3d(ExtractorOptions(weights="random", clip_len=8))
    pooled = build_st3d(ExtractorOptions(weights="random", clip_len=8, spatial=2))
    assert pooled.spec.feature_shape == (512, 2, 2)
    a, b = native(clips[:1]).astype(np.float32), pooled(clips[:1]).astype(np.float32)
    assert b.shape == (1, 512, 2, 2)
    # adaptive 7 -> 2: windows [0, 4) and [3, 7) on each axis
    np.testing.assert_allclose(
        b[0, :, 0, 0], a[0, :, 0:4, 0:4].mean(axis=(1, 2)), rtol=1e-2, atol=1e-2
    )
    np.testing.assert_allclose(
        b[0, :, 1, 1], a[0, :, 3:7, 3:7].mean(axis=(1, 2)), rtol=1e-2, atol=1e-2
    )


def test_weights_policy(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("VSUM_WEIGHTS_URL", "http://127.0.0.1:9")  # nothing listens: no download
    for policy in ("pretrained", "auto"):  # auto: deprecated alias, no silent random fallback
        with pytest.raises(WeightsUnavailable, match="r3d_18-b3b3357e.pth.*--weights random"):
            build_st3d(ExtractorOptions(weights=policy))
    a = build_st3d(ExtractorOptions(weights="random"))
    assert a.spec.weights == "random-init(seed=0)" and a.spec.weights_file is None
    b = build_st3d(ExtractorOptions(weights="random"))
    torch.testing.assert_close(a.model.state_dict(), b.model.state_dict())  # seeded, reproducible

    bad = r3d_18(weights=None).state_dict()
    bad["layer9.weight"] = bad.pop("layer4.1.conv2.0.weight")
    path = tmp_path / "bad.pth"
    torch.save(bad, path)
    with pytest.raises(WeightsError, match=r"missing key 'layer4\.1\.conv2\.0\.weight'.*bad\.pth"):
        build_st3d(ExtractorOptions(weights=str(path)))
    with pytest.raises(WeightsError, match=r"st3d: weights file not found .*absent\.pth"):
        build_st3d(ExtractorOptions(weights=str(tmp_path / "absent.pth")))
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match=r"not a readable tensors-only torch checkpoint .*garbage\.pth"):
        build_st3d(ExtractorOptions(weights=str(garbage)))
    with pytest.raises(ValueError, match="unknown --st3d-arch"):
        build_st3d(ExtractorOptions(st3d_arch="r50"))


def test_r2plus1d_and_bad_input(clips):
    ext = build_st3d(ExtractorOptions(weights="random", st3d_arch="r2plus1d_18", clip_len=8))
    assert ext.spec.extra["arch"] == "r2plus1d_18"
    out = ext(clips[:1])
    assert out.shape == (1, 512, 7, 7) and np.isfinite(out).all() and out.std() > 0
    with pytest.raises(ValueError, match=r"st3d: expected uint8 clips \[B, L, 128, 171, 3\]"):
        ext(clips[:, :, :112, :112])
    with pytest.raises(ValueError, match="expected uint8"):
        ext(clips.astype(np.float32))


def test_bad_options_fail_before_building():
    with pytest.raises(ValueError, match="st3d: --spatial must be a positive integer"):
        build_st3d(ExtractorOptions(spatial=0))
    if not torch.cuda.is_available():
        with pytest.raises(UsageError, match="CUDA is not available"):
            build_st3d(ExtractorOptions(device="cuda"))
