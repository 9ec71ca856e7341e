"""Hand-checked rewards (heads/rewards.py) on tiny tensors, including 0 and 1 selected steps."""
import math

import pytest
import torch

from heads.rewards import diversity_reward, length_penalty, representativeness_reward

X2 = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])  # orthogonal, orthogonal, 45 degrees
D45 = 1.0 - 1.0 / math.sqrt(2.0)  # cosine dissimilarity at 45 degrees


@pytest.mark.parametrize("actions,expected", [
    ([1, 1, 0], 1.0),                       # orthogonal pair
    ([1, 0, 1], D45),
    ([1, 1, 1], (1.0 + 2 * D45) / 3.0),    # mean over the three pairs
    ([0, 0, 0], 0.0),                       # nothing selected
    ([0, 1, 0], 0.0),                       # one selected: no pair
])
def test_diversity_hand_checked(actions, expected):
    r = diversity_reward(X2, torch.tensor(actions))
    assert r.dim() == 0
    assert r.item() == pytest.approx(expected, abs=1e-6)


def test_diversity_temporal_distance_counts_far_pairs_as_dissimilar():
    x = torch.ones(3, 4)  # identical steps: plain diversity is 0
    assert diversity_reward(x, torch.ones(3)).item() == pytest.approx(0.0, abs=1e-6)
    # λ = 1: pair (0, 2) is 2 steps apart -> d = 1; 2 of 6 ordered pairs -> 1/3
    assert diversity_reward(x, torch.ones(3), temporal_distance=1).item() == pytest.approx(1 / 3)


def test_diversity_flattens_4d_and_batches_episodes():
    x = X2.reshape(3, 2, 1, 1)
    a = torch.tensor([[1, 1, 0], [1, 0, 1], [0, 0, 0]])
    r = diversity_reward(x, a)
    assert r.shape == (3,)
    assert r.tolist() == pytest.approx([1.0, D45, 0.0], abs=1e-6)


X1 = torch.tensor([[0.0], [1.0], [3.0]])


@pytest.mark.parametrize("actions,mean_min_sq", [
    ([1, 0, 0], (0 + 1 + 9) / 3),
    ([0, 1, 0], (1 + 0 + 4) / 3),
    ([1, 0, 1], (0 + 1 + 0) / 3),
    ([1, 1, 1], 0.0),
])
def test_representativeness_hand_checked(actions, mean_min_sq):
    r = representativeness_reward(X1, torch.tensor(actions))
    assert r.item() == pytest.approx(math.exp(-mean_min_sq), rel=1e-5)


def test_representativeness_nothing_selected_is_zero_and_episodes_batch():
    assert representativeness_reward(X1, torch.zeros(3)).item() == 0.0
    r = representativeness_reward(X1, torch.tensor([[0, 0, 0], [1, 0, 1]]))
    assert r.tolist() == pytest.approx([0.0, math.exp(-1 / 3)], rel=1e-5)


def test_representativeness_is_differentiable_in_x():
    x = X1.clone().requires_grad_(True)
    representativeness_reward(x, torch.tensor([1, 0, 0])).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_rewards_reject_mismatched_lengths():
    with pytest.raises(ValueError, match="steps"):
        diversity_reward(X2, torch.ones(4))


def test_length_penalty_hand_checked():
    assert length_penalty(torch.tensor([0.2, 0.6])).item() == pytest.approx(0.01)
    assert length_penalty(torch.tensor([0.5, 0.5])).item() == pytest.approx(0.0)
    assert length_penalty(torch.tensor([1.0, 1.0]), eps=0.2).item() == pytest.approx(0.64)
    p = torch.tensor([[0.9, 0.1, 0.0]])
    mask = torch.tensor([[True, True, False]])  # padded step ignored: mean 0.5
    assert length_penalty(p, mask=mask).item() == pytest.approx(0.0)
    assert length_penalty(p).item() == pytest.approx((1 / 3 - 0.5) ** 2)
