"""SUM-GAN losses: hand-checked terms, masking, and that each term trains exactly the parameter
groups SUM-GAN's Algorithm 1 gives it (the basis of the single-optimiser design)."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from heads.sumgan import SumGAN, kl_prior, param_groups, sparsity_loss, sumgan_losses

torch.set_num_threads(1)
D = 12


class TinyScorer(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(D, 1)

    def forward(self, x):
        return torch.sigmoid(self.fc(x)).squeeze(-1)


def _setup(fake="uniform"):
    torch.manual_seed(0)
    scorer, gan = TinyScorer(), SumGAN(D, hidden=8, layers=2)
    x = torch.randn(2, 9, D)
    mask = torch.ones(2, 9, dtype=torch.bool)
    mask[1, 6:] = False
    return scorer, gan, x, mask


def _touched(term: torch.Tensor, modules: dict[str, nn.Module]) -> set[str]:
    for mod in modules.values():
        mod.zero_grad(set_to_none=True)
    term.backward(retain_graph=True)
    return {name for name, mod in modules.items()
            if any(q.grad is not None and q.grad.abs().sum() > 0 for q in mod.parameters())}


@pytest.mark.parametrize("fake", ["uniform", "prior"])
def test_each_term_reaches_only_its_algorithm1_group(fake):
    scorer, gan, x, mask = _setup()
    p = scorer(x)
    terms = sumgan_losses(gan, x, p, mask, fake=fake)
    groups = {"scorer": scorer, "encoder": gan.encoder, "decoder": gan.decoder,
              "discriminator": gan.discriminator}
    assert _touched(terms["sparsity"], groups) == {"scorer"}
    assert _touched(terms["prior"], groups) == {"scorer", "encoder"}
    assert _touched(terms["reconstruction"], groups) == {"scorer", "encoder", "decoder"}
    assert _touched(terms["gan_generator"], groups) == {"decoder"}
    assert _touched(terms["discriminator"], groups) == {"discriminator"}


def test_padding_does_not_change_any_term():
    scorer, gan, x, mask = _setup()
    alone_x, alone_mask = x[1:, :6], mask[1:, :6]
    padded_x = x[1:].clone()
    padded_x[:, 6:] = 100.0  # garbage on padded steps must not leak in
    torch.manual_seed(1)
    alone = sumgan_losses(gan, alone_x, scorer(alone_x), alone_mask, fake="none")
    torch.manual_seed(1)
    padded = sumgan_losses(gan, padded_x, scorer(padded_x), mask[1:], fake="none")
    for k in alone:
        assert torch.allclose(alone[k], padded[k], atol=1e-5), k


def test_kl_and_sparsity_by_hand():
    assert float(kl_prior(torch.zeros(3, 4), torch.zeros(3, 4))) == pytest.approx(0.0)
    # 0.5·(e^0 + 1 + 4 − 1 − 0 + e^0 − 1) over dims (mu = [1, 2]) = 0.5·(1 + 4) = 2.5
    assert float(kl_prior(torch.tensor([[1.0, 2.0]]), torch.zeros(1, 2))) == pytest.approx(2.5)
    # logvar = log 2, mu = 0: 0.5·(2 − 1 − ln 2)
    lv = torch.log(torch.tensor([[2.0]]))
    assert float(kl_prior(torch.zeros(1, 1), lv)) == pytest.approx(0.5 * (1 - 0.693147), 1e-4)
    p = torch.tensor([[0.1, 0.5, 0.9, 0.7], [0.2, 0.2, 0.9, 0.9]])
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]], dtype=torch.bool)
    # video means 0.55 and 0.2 → |0.55 − 0.3| = 0.25, |0.2 − 0.3| = 0.1 → 0.175
    assert float(sparsity_loss(p, mask, 0.3)) == pytest.approx(0.175)


def test_param_groups_split_exactly():
    scorer, gan, _, _ = _setup()
    params = list(scorer.parameters()) + list(gan.parameters())
    gen, disc = param_groups(params, gan, lr=1e-4, disc_lr=1e-5)
    assert {id(q) for q in disc["params"]} == {id(q) for q in gan.discriminator.parameters()}
    assert len(gen["params"]) + len(disc["params"]) == len(params)
    assert not {id(q) for q in gen["params"]} & {id(q) for q in disc["params"]}
    assert (gen["lr"], disc["lr"]) == (1e-4, 1e-5)


def test_bad_fake_input_is_one_clear_error():
    scorer, gan, x, mask = _setup()
    with pytest.raises(ValueError, match="fake input"):
        sumgan_losses(gan, x, scorer(x), mask, fake="gaussian")
