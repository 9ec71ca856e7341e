"""CSNet: the variance loss by hand, chunk/stride reassembly, gradient flow for T not divisible by
M, padding, the Table 2 ablation switches, and a short supervised learning test."""
from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from heads.base import get_head
from heads.csnet import (
    CSNetConfig,
    build_csnet,
    csnet_loss,
    make_optimizer,
    median_variance,
    stream_index,
    variance_loss,
)

torch.set_num_threads(1)
D = 16
SMALL = CSNetConfig(hidden=8, gan_hidden=8, gan_layers=1)


def _batch(T: int, B: int = 2, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, T, D, generator=g)
    mask = torch.ones(B, T, dtype=torch.bool)
    if B > 1:
        mask[1, max(1, T // 2 + 1):] = False  # the second video is shorter (padded)
    return {"x": x, "mask": mask, "gtscore": torch.rand(B, T, generator=g),
            "video_id": [f"v{i}" for i in range(B)]}


# ---- variance loss ------------------------------------------------------------------------


def test_variance_loss_uses_the_median_by_hand():
    # odd: med(0.1, 0.2, 0.9) = 0.2 → (0.01 + 0 + 0.49) / 3 = 1/6
    # even: med(0.1, 0.2, 0.6, 0.9) = 0.4 → (0.09 + 0.04 + 0.04 + 0.25) / 4 = 0.105
    # padded: med(0.3, 0.7) = 0.5 → 0.04; the padding (0.99) is ignored
    p = torch.tensor([[0.1, 0.2, 0.9, 0.0], [0.1, 0.2, 0.6, 0.9], [0.3, 0.7, 0.99, 0.99]])
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1], [1, 1, 0, 0]], dtype=torch.bool)
    np.testing.assert_allclose(median_variance(p, mask).numpy(), [1 / 6, 0.105, 0.04], rtol=1e-5)
    eps = 1e-4
    expected = np.mean([1 / (1 / 6 + eps), 1 / (0.105 + eps), 1 / (0.04 + eps)])
    assert float(variance_loss(p, mask, eps)) == pytest.approx(expected, rel=1e-5)
    # the median, not the mean: the mean of (0.1, 0.2, 0.9) is 0.4 → variance 0.1267, not 1/6
    assert float(median_variance(p[:1], mask[:1])) != pytest.approx(0.12667, rel=1e-3)


def test_variance_loss_is_maximal_for_flat_scores_and_pushes_them_apart():
    p = torch.full((1, 6), 0.5, requires_grad=True)
    mask = torch.ones(1, 6, dtype=torch.bool)
    assert float(variance_loss(p, mask, 1e-4).detach()) == pytest.approx(1e4)
    q = torch.tensor([[0.2, 0.4, 0.5, 0.6, 0.8]], requires_grad=True)
    variance_loss(q, torch.ones(1, 5, dtype=torch.bool)).backward()
    g = q.grad[0]
    assert g[0] > 0 and g[-1] < 0  # descent lowers the lowest score and raises the highest


# ---- streams ------------------------------------------------------------------------------


def test_stream_index_covers_each_step_once_in_time_order():
    chunks, strides = stream_index([7, 2], steps=7, m=4)
    assert [c.tolist() for c in chunks] == [[0, 1], [2, 3], [4, 5], [6], [7], [8]]
    assert [s.tolist() for s in strides] == [[0, 4], [1, 5], [2, 6], [3], [7], [8]]
    for parts in (chunks, strides):
        assert sorted(np.concatenate(parts).tolist()) == [0, 1, 2, 3, 4, 5, 6, 7, 8]


def test_streams_reassemble_in_original_order():
    """Perturbing step 1 changes c′ only inside its chunk and s′ only inside its stride group."""
    torch.manual_seed(0)
    model = build_csnet(SMALL, (D,)).eval()
    T, lengths = 7, torch.tensor([7])
    h = torch.randn(1, T, SMALL.hidden)
    h2 = h.clone()
    h2[0, 1] += 1.0
    with torch.no_grad():
        c1, s1 = model.stream_logits(h, lengths)
        c2, s2 = model.stream_logits(h2, lengths)
    changed = lambda a, b: set(torch.nonzero((a - b).abs()[0] > 1e-7).flatten().tolist())
    assert changed(c1, c2) == {0, 1}  # chunk [0, 1] of [0,1 | 2,3 | 4,5 | 6]
    assert changed(s1, s2) == {1, 5}  # stride group {1, 5} of M = 4


@pytest.mark.parametrize("T", [1, 5, 7, 13])
def test_shapes_and_gradient_flow_for_lengths_not_divisible_by_m(T):
    torch.manual_seed(T)
    model = build_csnet(SMALL, (D,))
    batch = _batch(T)
    p = model(batch["x"], batch["mask"])
    assert p.shape == (2, T)
    real = p[batch["mask"]]
    assert torch.all((real > 0) & (real < 1))
    assert torch.all(p[~batch["mask"]] == 0)
    (p * torch.randn(2, T)).sum().backward()
    for name in ("compress.weight", "lstm.weight_ih_l0", "lstm.weight_ih_l0_reverse",
                 "chunk_fc.weight", "stride_fc.weight", "fusion", "diff_fc.0.bias",
                 *(["diff_fc.0.weight", "diff_fc.2.weight"] if T > 1 else [])):
        # (T = 1: every difference is |x_1 − x_1| = 0, so only the diff FCs' biases learn)
        grad = dict(model.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, f"no gradient reaches {name} at T={T}"


@pytest.mark.parametrize("chunk_stride", [True, False])
def test_padding_gives_the_same_scores_as_the_video_alone(chunk_stride):
    torch.manual_seed(0)
    model = build_csnet(replace(SMALL, chunk_stride=chunk_stride), (D,)).eval()
    batch = _batch(13)
    n = int(batch["mask"][1].sum())
    padded = batch["x"].clone()
    padded[1, n:] = 50.0  # garbage on padded steps
    with torch.no_grad():
        together = model(padded, batch["mask"])[1, :n]
        alone = model(batch["x"][1:, :n], torch.ones(1, n, dtype=torch.bool))[0]
    torch.testing.assert_close(together, alone, atol=1e-6, rtol=1e-5)


def test_full_loss_backpropagates_into_every_parameter():
    torch.manual_seed(0)
    cfg = replace(SMALL, supervised=True)
    model = build_csnet(cfg, (D,))
    loss, metrics = csnet_loss(model, _batch(13), cfg, {})
    loss.backward()
    missing = [n for n, q in model.named_parameters() if q.grad is None or q.grad.abs().sum() == 0]
    assert not missing
    assert {"variance", "bce", "sparsity", "reconstruction", "prior", "gan_generator",
            "discriminator"} <= set(metrics)


# ---- Table 2 ablation switches -------------------------------------------------------------


@pytest.mark.parametrize("cs,diff,var", list(itertools.product([False, True], repeat=3)))
def test_ablation_switches_change_the_structure(cs, diff, var):
    cfg = replace(SMALL, chunk_stride=cs, diff_attention=diff, variance_loss=var)
    model = build_csnet(cfg, (D,))
    names = {n.split(".")[0] for n, _ in model.named_parameters()}
    assert ("stride_fc" in names) == cs and ("fusion" in names) == cs
    assert ("diff_fc" in names) == diff
    assert {"compress", "lstm", "chunk_fc", "gan"} <= names
    loss, metrics = csnet_loss(model, _batch(7), cfg, {})
    assert ("variance" in metrics) == var
    assert torch.isfinite(loss)


def test_config_rejects_nothing_to_train_and_head_is_registered():
    with pytest.raises(ValueError, match="no loss left"):
        CSNetConfig(variance_loss=False, gan=False, supervised=False)
    spec = get_head("csnet")
    assert spec.config_cls is CSNetConfig
    model = spec.build(SMALL, (4, 2, 2))  # multi-dim features are flattened per step
    assert model(torch.randn(1, 5, 4, 2, 2), torch.ones(1, 5, dtype=torch.bool)).shape == (1, 5)
    opt, sched = spec.make_optimizer(model, SMALL)
    assert [g["lr"] for g in opt.param_groups] == [1e-4, 1e-4]
    for _ in range(10):  # one scheduler step per epoch
        opt.step()
        sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-5)  # ×0.1 after 10 epochs


# ---- learning ------------------------------------------------------------------------------


def _labelled_videos(n: int, rng: np.random.Generator):
    """Videos of 30–70 steps made of shots (4–11 steps) of 6 content kinds. Each kind has a
    planted importance (0.05 … 0.95); features = the kind's prototype + noise (σ = 0.5);
    gtscore = the kind's importance + noise (σ = 0.05). A head that learns "which content
    matters" ranks steps like the labels; random scores do not."""
    proto = rng.normal(size=(6, D)).astype(np.float32)
    value = np.array([0.05, 0.1, 0.2, 0.5, 0.8, 0.95], dtype=np.float32)
    videos = []
    for _ in range(n):
        T = int(rng.integers(30, 70))
        kinds: list[int] = []
        while len(kinds) < T:
            kinds += [int(rng.integers(0, 6))] * int(rng.integers(4, 12))
        k = np.array(kinds[:T])
        x = proto[k] + 0.5 * rng.normal(size=(T, D)).astype(np.float32)
        g = np.clip(value[k] + 0.05 * rng.normal(size=T), 0, 1).astype(np.float32)
        videos.append((torch.from_numpy(x), torch.from_numpy(g)))
    return videos


def test_supervised_csnet_learns_and_beats_random_ranking():
    """Margin: mean test Spearman ρ(p, gtscore) ≥ random scores' ρ + 0.3 after 5 epochs, and the
    last epoch's mean BCE ≤ 0.85 × the first's. CSNet_sup with its defaults (chunk/stride,
    difference attention, SUM-GAN losses + BCE; the variance loss is reported, weight 0 in
    supervised mode) at small sizes; lr 1e-3 because 5 epochs, not the paper's 20."""
    rng = np.random.default_rng(0)
    videos = _labelled_videos(32, rng)
    train, test = videos[:24], videos[24:]
    torch.manual_seed(0)
    cfg = CSNetConfig(hidden=32, gan_hidden=32, supervised=True, lr=1e-3, disc_lr=1e-3)
    model = build_csnet(cfg, (D,))
    opt, _ = make_optimizer(model, cfg)
    epoch_bce = []
    for _ in range(5):
        bces = []
        for x, g in train:
            batch = {"x": x[None], "mask": torch.ones(1, len(x), dtype=torch.bool),
                     "gtscore": g[None], "video_id": ["v"]}
            opt.zero_grad()
            loss, metrics = csnet_loss(model, batch, cfg, {})
            loss.backward()
            opt.step()
            bces.append(metrics["bce"])
        epoch_bce.append(float(np.mean(bces)))
    model.eval()
    with torch.no_grad():
        rho = np.mean([spearmanr(model(x[None], torch.ones(1, len(x), dtype=torch.bool))[0], g)[0]
                       for x, g in test])
    rand = np.random.default_rng(1)
    rho_random = np.mean([spearmanr(rand.random(len(g)), g)[0] for _, g in test])
    assert epoch_bce[-1] <= 0.85 * epoch_bce[0], epoch_bce
    assert rho >= rho_random + 0.3, (rho, rho_random)
