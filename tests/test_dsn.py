"""DR-DSN: shapes, masking, the hand-checked loss terms, and learning on the synthetic store."""
import math

import numpy as np
import pytest
import torch

from heads.base import get_head
from heads.config import resolve_config
from heads.dsn import DSNConfig, build_dsn, dsn_loss, episode_rewards, reinforce_loss
from heads.rewards import diversity_reward, representativeness_reward

torch.set_num_threads(1)


def _small(**kw) -> DSNConfig:
    return resolve_config(DSNConfig, {"hidden": 8, **kw})


def test_registered_with_paper_defaults():
    spec = get_head("dsn")
    cfg = spec.config_cls()
    assert (cfg.hidden, cfg.episodes, cfg.eps, cfg.beta, cfg.lr, cfg.weight_decay, cfg.epochs) == \
        (256, 5, 0.5, 0.01, 1e-5, 1e-5, 60)
    assert get_head("dsn_sup").config_cls().supervised is True
    model = spec.build(cfg, (1024,))
    assert model.rnn.bidirectional and model.rnn.hidden_size == 256 and model.fc.in_features == 512


@pytest.mark.parametrize("shape", [(16,), (4, 2, 2)])
def test_shapes_and_range(shape):
    torch.manual_seed(0)
    model = build_dsn(_small(), shape)
    p = model(torch.randn(2, 7, *shape), torch.ones(2, 7, dtype=torch.bool))
    assert p.shape == (2, 7) and ((p > 0) & (p < 1)).all()


def test_padding_does_not_change_real_steps():
    torch.manual_seed(0)
    model = build_dsn(_small(), (6,)).eval()
    a, b = torch.randn(1, 9, 6), torch.randn(1, 5, 6)
    x = torch.zeros(2, 9, 6)
    x[0], x[1, :5] = a[0], b[0]
    mask = torch.zeros(2, 9, dtype=torch.bool)
    mask[0], mask[1, :5] = True, True
    batched = model(x, mask)
    assert torch.allclose(batched[0], model(a)[0], atol=1e-6)
    assert torch.allclose(batched[1, :5], model(b)[0], atol=1e-6)


def test_reinforce_loss_matches_the_formula():
    """p = 0.5 everywhere: log π(a_t) = log 0.5 for any action, so the loss is
    −Σ_e log(0.5)·(R_e − b) with R_e the rewards of the very episodes sampled."""
    cfg = _small(episodes=3)
    x = torch.randn(10, 4)
    p = torch.full((10,), 0.5)
    torch.manual_seed(1)
    loss, mean_r = reinforce_loss(p, x, baseline=0.2, cfg=cfg)
    torch.manual_seed(1)
    actions = torch.distributions.Bernoulli(probs=p).sample((3,))
    r = diversity_reward(x, actions, 20) + representativeness_reward(x, actions)
    assert torch.allclose(episode_rewards(x, actions, cfg), r)
    assert loss.item() == pytest.approx(-(math.log(0.5) * (r - 0.2)).sum().item(), rel=1e-5)
    assert mean_r == pytest.approx(r.mean().item(), rel=1e-5)


def test_reward_switches():
    x = torch.randn(6, 3)
    a = torch.tensor([[1, 0, 1, 0, 1, 0]])
    only_div = episode_rewards(x, a, _small(use_representativeness=False))
    only_rep = episode_rewards(x, a, _small(use_diversity=False))
    assert torch.allclose(only_div, diversity_reward(x, a, 20))
    assert torch.allclose(only_rep, representativeness_reward(x, a))


def test_length_penalty_and_mse_terms_without_rl():
    cfg = _small(rl_weight=0.0, supervised=True, beta=0.5, eps=0.5)
    model = build_dsn(cfg, (4,))
    with torch.no_grad():  # force p = sigmoid(0) = 0.5 on every step
        for prm in model.parameters():
            prm.zero_()
    gt = torch.tensor([[0.0, 1.0, 0.5]])
    batch = {"x": torch.randn(1, 3, 4), "mask": torch.ones(1, 3, dtype=torch.bool),
             "gtscore": gt, "has_gtscore": torch.tensor([True]), "video_id": ["v"]}
    loss, m = dsn_loss(model, batch, cfg, {})
    # length penalty (0.5 − 0.5)² = 0; MSE = (0.25 + 0.25 + 0) / 3
    assert loss.item() == pytest.approx(0.5 / 3, rel=1e-6)
    assert m["mse"] == pytest.approx(0.5 / 3, rel=1e-6)


def test_baseline_is_a_per_video_moving_average_and_gradients_flow():
    torch.manual_seed(0)
    cfg = _small()
    model = build_dsn(cfg, (5,))
    batch = {"x": torch.randn(2, 8, 5), "mask": torch.ones(2, 8, dtype=torch.bool),
             "gtscore": torch.zeros(2, 8), "video_id": ["a", "b"]}
    state = {}
    loss, _ = dsn_loss(model, batch, cfg, state)
    loss.backward()
    assert set(state["baselines"]) == {"a", "b"}
    assert all(0 < b < 0.1 * 3 for b in state["baselines"].values())  # 0.9·0 + 0.1·R, R ≤ 3
    assert all(prm.grad is not None and torch.isfinite(prm.grad).all() for prm in model.parameters())
    b_a = state["baselines"]["a"]
    dsn_loss(model, batch, cfg, state)
    assert state["baselines"]["a"] != b_a


def test_supervised_without_labels_names_the_video():
    cfg = _small(supervised=True)
    model = build_dsn(cfg, (3,))
    batch = {"x": torch.randn(1, 4, 3), "mask": torch.ones(1, 4, dtype=torch.bool),
             "gtscore": torch.zeros(1, 4), "has_gtscore": torch.tensor([False]), "video_id": ["vid7"]}
    with pytest.raises(ValueError, match="vid7"):
        dsn_loss(model, batch, cfg, {})


def test_supervised_dsn_beats_random_on_the_synthetic_store(tmp_path):
    """Fixed seeds; margin stated: Kendall tau vs gtscore ≥ random + 0.3, F-score ≥ random + 0.05."""
    from heads.trainer import TrainOptions, selection_score, train_split
    from pipeline.metrics import kendall_tau
    from stores.predictions import read_predictions
    from stores.reader import FeatureStore
    from stores.synthetic import build_synthetic_store

    store = str(tmp_path / "s.zarr")
    ids = build_synthetic_store(store, n_videos=14, seed=3, min_steps=100, max_steps=180)
    train_split("dsn_sup", store, ids[:10], ids[10:], tmp_path / "run", 0, 0,
                TrainOptions(epochs=6, overrides={"lr": "3e-3", "hidden": "64", "rl_weight": "0"}))
    df = read_predictions(tmp_path / "run")
    learned = dict(zip(df["video_id"], df["scores"]))
    rng = np.random.default_rng(0)
    rand = {v: rng.random(len(s)) for v, s in learned.items()}
    fs = FeatureStore(store)
    tau = np.mean([kendall_tau(learned[v], fs.load(v, "labels/gtscore")) for v in learned])
    tau_rand = np.mean([kendall_tau(rand[v], fs.load(v, "labels/gtscore")) for v in learned])
    f, f_rand = selection_score(fs, learned), selection_score(fs, rand)
    assert tau >= tau_rand + 0.3, (tau, tau_rand)
    assert f >= f_rand + 0.05, (f, f_rand)
