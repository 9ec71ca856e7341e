"""3DST-UNet-RL head: shapes for any T and spatial size, hand-checked rewards/regularisers through
the loss, gradient to the squeeze layer, and learning on a synthetic store with 4-D features."""
from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from heads.base import get_head
from heads.unet3d_rl import UNet3DRLConfig, binary_reg, build_unet3d, spatial_pool, video_loss

torch.set_num_threads(1)
SMALL = UNet3DRLConfig(squeeze_channels=8, levels=2)


@pytest.mark.parametrize("feat", [(32, 1, 1), (32, 7, 7), (48,)], ids=["1x1", "7x7", "2d"])
@pytest.mark.parametrize("t", [1, 3, 17])
def test_shapes_any_t_and_spatial_size(feat, t):
    torch.manual_seed(0)
    model = build_unet3d(SMALL, feat)
    x = torch.randn(2, t, *feat)
    p = model(x, torch.ones(2, t, dtype=torch.bool))
    assert p.shape == (2, t)
    assert torch.all((p > 0) & (p < 1))


def test_default_config_levels_and_per_frame_scores():
    cfg = replace(UNet3DRLConfig(), scores_per_step=4)
    model = build_unet3d(cfg, (64, 4, 4))
    x = torch.randn(1, 13, 64, 4, 4)
    assert model.frame_logits(x).shape == (1, 13, 4)  # n latent scores per step
    assert model(x).shape == (1, 13)
    # 32 → 64 → 128 → 256 channels over 3 temporal poolings (paper defaults: C′ = 32)
    assert model.bottom[0].out_channels == 256 and model.squeeze.out_channels == 32


def test_time_is_padded_to_the_stride_and_cropped_back():
    # T = 17 is padded to 20 (stride 4) and cropped back: a longer clip gives more scores
    model = build_unet3d(SMALL, (8, 2, 2))
    assert model(torch.randn(1, 17, 8, 2, 2)).shape == (1, 17)
    assert model(torch.randn(1, 21, 8, 2, 2)).shape == (1, 21)


def test_bad_feature_shape_is_one_clear_error():
    with pytest.raises(ValueError, match="unet3d_rl needs features"):
        build_unet3d(SMALL, (8, 2))
    with pytest.raises(ValueError, match="logprob_reduce"):
        build_unet3d(replace(SMALL, logprob_reduce="max"), (8, 1, 1))


# -- hand-checked rewards and regularisers ----------------------------------------------------
def _features() -> torch.Tensor:
    """[T=3, C=2, 2, 2] whose spatial means are [1,0], [0,1], [1,1] but whose maps vary, so
    rewards on unpooled (flattened) features would give other numbers."""
    means = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    wiggle = torch.tensor([[1.0, -1.0], [-1.0, 1.0]])  # zero-mean spatial pattern
    return means[:, :, None, None] + 3.0 * wiggle


P = torch.full((3,), 0.25)
LOG_SEL, LOG_OFF = math.log(0.25), math.log(0.75)
REG = (0.25 - 0.5) ** 2 + 0.01 * (1 / 0.25)  # L_preg + λ L_breg at p = 0.25


def test_pooling_gives_the_planted_means():
    assert torch.allclose(spatial_pool(_features()), torch.tensor([[1.0, 0], [0, 1], [1, 1]]))


def test_zero_selected_steps():
    a = torch.zeros(1, 3)
    loss, m = video_loss(P, _features(), UNet3DRLConfig(), baseline=0.2, actions=a)
    assert m["r_rep"] == 0 and m["r_div"] == 0 and m["reward"] == 0
    # −(R − c)·Σ log π = −(0 − 0.2)·3·log 0.75
    assert loss.item() == pytest.approx(REG + 0.2 * 3 * LOG_OFF, abs=1e-5)


def test_one_selected_step():
    a = torch.tensor([[1.0, 0.0, 0.0]])
    loss, m = video_loss(P, _features(), UNet3DRLConfig(), baseline=0.5, actions=a)
    r_rep = math.exp(-(0 + 2 + 1) / 3)  # squared distances to [1,0]: 0, 2, 1
    assert m["r_div"] == 0  # no pair
    assert m["r_rep"] == pytest.approx(r_rep, rel=1e-5)
    logp = LOG_SEL + 2 * LOG_OFF
    assert loss.item() == pytest.approx(REG - (r_rep - 0.5) * logp, abs=1e-5)


def test_two_selected_steps_and_reward_switches():
    a = torch.tensor([[1.0, 1.0, 0.0]])
    _, m = video_loss(P, _features(), UNet3DRLConfig(), baseline=0.0, actions=a)
    assert m["r_div"] == pytest.approx(1.0, abs=1e-6)  # [1,0] ⟂ [0,1]: cosine distance 1
    assert m["r_rep"] == pytest.approx(math.exp(-1 / 3), rel=1e-5)  # nearest: 0, 0, 1
    assert m["reward"] == pytest.approx(1.0 + math.exp(-1 / 3), rel=1e-5)
    _, m_div = video_loss(P, _features(), UNet3DRLConfig(use_rep=False), 0.0, actions=a)
    _, m_rep = video_loss(P, _features(), UNet3DRLConfig(use_div=False), 0.0, actions=a)
    assert m_div["reward"] == pytest.approx(1.0, abs=1e-6)
    assert m_rep["reward"] == pytest.approx(math.exp(-1 / 3), rel=1e-5)


def test_regularisers_and_supervised_mse():
    p = torch.tensor([0.1, 0.9, 0.6, 0.4])
    assert binary_reg(p).item() == pytest.approx(1 / 0.25, rel=1e-4)  # mean |p − .5| = .25
    gt = torch.tensor([0.0, 1.0, 1.0, 0.0])
    a = torch.zeros(1, 4)
    x = torch.randn(4, 3, 1, 1)
    unsup, _ = video_loss(p, x, UNet3DRLConfig(), 0.0, actions=a)
    sup, m = video_loss(p, x, UNet3DRLConfig(supervised=True), 0.0, gtscore=gt, actions=a)
    mse = (0.01 + 0.01 + 0.16 + 0.16) / 4
    assert m["mse"] == pytest.approx(mse, rel=1e-5)
    assert (sup - unsup).item() == pytest.approx(mse, rel=1e-4)


def test_gradient_reaches_squeeze_and_baseline_moves():
    torch.manual_seed(0)
    spec = get_head("unet3d_rl")
    cfg = replace(SMALL, supervised=True)
    model = spec.build(cfg, (16, 3, 3))
    batch = {"x": torch.randn(2, 9, 16, 3, 3), "mask": torch.ones(2, 9, dtype=torch.bool),
             "gtscore": torch.rand(2, 9), "video_id": ["a", "b"]}
    batch["mask"][1, 6:] = False  # second video is 6 steps long
    state: dict = {}
    loss, metrics = spec.loss(model, batch, cfg, state)
    loss.backward()
    g = model.squeeze.weight.grad
    assert g is not None and torch.isfinite(g).all() and g.abs().sum() > 0
    assert set(state["baselines"]) == {"a", "b"}
    # c ← 0.9·0 + 0.1·mean episode reward, per video; metrics average the two videos
    b = state["baselines"]
    assert b["a"] + b["b"] == pytest.approx(0.1 * 2 * metrics["reward"], rel=1e-5)
    assert b["a"] > 0 and b["b"] > 0
    assert 0 < metrics["selected"] <= 1 and "mse" in metrics


def test_optimizer_is_paper_sgd_with_halving():
    spec = get_head("unet3d_rl")
    cfg = UNet3DRLConfig()
    assert spec.default_features == "st3d"
    opt, sched = spec.make_optimizer(build_unet3d(SMALL, (8, 1, 1)), cfg)
    g = opt.param_groups[0]
    assert isinstance(opt, torch.optim.SGD)
    assert (g["lr"], g["momentum"], g["weight_decay"]) == (1e-5, 0.9, 1e-6)
    for _ in range(30):
        opt.step()
        sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.5e-5)



def test_bilstm_baseline_sees_spatially_pooled_vectors():
    """The ablation's BiLSTM (the dsn head) on st3d maps = the same BiLSTM on the pooled vectors."""
    from heads.base import HEADS

    if "dsn" not in HEADS:
        pytest.skip("heads/dsn.py is not there")
    spec = get_head("dsn")
    torch.manual_seed(0)
    model = spec.build(spec.config_cls(hidden=8), (16, 3, 3)).eval()
    x = torch.randn(1, 11, 16, 3, 3)
    with torch.no_grad():
        assert torch.allclose(model(x), model(x.mean(dim=(3, 4))), atol=1e-6)

# -- learning on a synthetic store with planted 4-D features ------------------------------------
def _mean_corr(run_dir, store) -> float:
    import numpy as np

    from stores.predictions import read_predictions
    from stores.reader import FeatureStore

    fs = FeatureStore(str(store))
    df = read_predictions(run_dir)
    corr = [np.corrcoef(s, fs.load(v, "labels/importance"))[0, 1] if np.std(s) > 0 else 0.0
            for v, s in zip(df["video_id"], df["scores"])]
    return float(np.mean(corr))


def test_learns_planted_importance_from_st3d_maps(tmp_path):
    """Supervised 3DST-UNet-RL (rewards on) through the real trainer on [T, 16, 3, 3] features.

    NOT the paper's optimiser settings: lr 0.1 instead of 1e-5 and ``logprob_reduce=mean``
    (DR-DSN's code) instead of Eq. (11)'s sum, so that 15 short CPU epochs learn; with the sum
    and a large lr, REINFORCE saturates p at 0 or 1 early on."""
    from heads.trainer import TrainOptions, train_split
    from stores.synthetic import build_synthetic_store

    store = tmp_path / "synth.zarr"
    ids = build_synthetic_store(str(store), n_videos=10, seed=0,
                                feature_shapes={"st3d": (16, 3, 3)}, min_steps=40, max_steps=64)
    overrides = {"supervised": "true", "levels": "2", "squeeze_channels": "8",
                 "logprob_reduce": "mean"}
    corr = {}
    for epochs in (0, 15):
        run = tmp_path / f"run{epochs}"
        opts = TrainOptions(features="st3d", epochs=epochs, lr=0.1, overrides=overrides,
                            device="cpu", num_threads=1)
        train_split("unet3d_rl", str(store), ids[:6], ids[6:], run, 0, 0, opts)
        corr[epochs] = _mean_corr(run, store)
    # Pearson r with the planted step importance on 4 unseen videos
    assert corr[15] > 0.6, corr
    assert corr[15] > corr[0] + 0.2, corr


def test_epoch_benchmark_reports_time_and_memory(tmp_path):
    """The function ``vsum bench train`` calls: one epoch through the HeadSpec hooks (no timing
    assertions: only that it measured something and trained every video)."""
    from jobs.bench.train_unet3d import unet3d_epoch_benchmark
    from stores.synthetic import build_synthetic_store

    store = tmp_path / "b.zarr"
    build_synthetic_store(str(store), n_videos=2, seed=1, feature_shapes={"st3d": (8, 2, 2)},
                          min_steps=10, max_steps=20)
    r = unet3d_epoch_benchmark(str(store), overrides={"squeeze_channels": 4, "levels": 1})
    assert r["n_videos"] == 2 and r["feature_shape"] == [8, 2, 2]
    assert r["epoch_s"] > 0 and r["peak_rss_mb"] >= r["start_rss_mb"] > 0
