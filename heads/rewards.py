"""Rewards and penalties shared by the RL heads (DR-DSN, 3DST-UNet-RL). Pure torch functions.

Shapes: ``x`` is [T, D] (any trailing shape, e.g. [T, C, h, w], is flattened to [T, D]);
``actions`` is 0/1 (bool, int or float) [T] for one episode, or [E, T] for E episodes at once,
which gives [E] rewards instead of a scalar. Rewards are computed without gradient w.r.t. the
actions (REINFORCE treats them as constants) but they are plain differentiable maths in ``x``.

Edge cases (defined here, not left to NaN):
    diversity:           0 or 1 selected steps -> 0 (no pair to be diverse)
    representativeness:  0 selected steps      -> 0 (nothing represents the video)
"""
from __future__ import annotations

import torch

__all__ = ["diversity_reward", "length_penalty", "representativeness_reward"]


def _flat(x: torch.Tensor) -> torch.Tensor:
    """[T, *] -> float [T, D]"""
    return x.reshape(x.shape[0], -1).float()


def _episodes(actions: torch.Tensor, t: int) -> tuple[torch.Tensor, bool]:
    """-> (float [E, T], whether the input was a single episode [T])."""
    a = actions.detach().float()
    single = a.dim() == 1
    a = a.unsqueeze(0) if single else a
    if a.shape[-1] != t:
        raise ValueError(f"actions have {a.shape[-1]} steps, features have {t}")
    return a, single


def diversity_reward(x: torch.Tensor, actions: torch.Tensor,
                     temporal_distance: int | None = None) -> torch.Tensor:
    """Mean pairwise cosine dissimilarity ``1 - cos(x_t, x_s)`` over ordered pairs t != s of
    selected steps (DR-DSN's R_div).

    temporal_distance: DR-DSN's λ (20 in the paper): pairs further apart than λ steps count as
    fully dissimilar (d = 1), so two similar shots far apart are not penalised. None = plain mean.
    x [T, D], actions [T] -> scalar; actions [E, T] -> [E].
    """
    f = _flat(x)
    t = f.shape[0]
    a, single = _episodes(actions, t)
    fn = f / f.norm(dim=1, keepdim=True).clamp_min(1e-12)
    dissim = 1.0 - fn @ fn.t()  # [T, T]
    if temporal_distance is not None:
        idx = torch.arange(t, device=f.device)
        far = (idx[:, None] - idx[None, :]).abs() > temporal_distance
        dissim = torch.where(far, torch.ones_like(dissim), dissim)
    dissim = dissim * (1.0 - torch.eye(t, device=f.device))  # t == s never counts
    n = a.sum(dim=1)  # [E]
    total = torch.einsum("et,ts,es->e", a, dissim, a)  # sum over selected ordered pairs
    pairs = n * (n - 1)
    r = torch.where(pairs > 0, total / pairs.clamp_min(1.0), torch.zeros_like(total))
    return r[0] if single else r


def representativeness_reward(x: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """``exp(-mean_t min_{s in S} ||x_t - x_s||^2)`` (DR-DSN's R_rep, with squared Euclidean
    distance as in the authors' code): how well the selected set S covers every step, k-medoids
    style. x [T, D], actions [T] -> scalar; actions [E, T] -> [E]. 0 selected -> 0.
    """
    f = _flat(x)
    t = f.shape[0]
    a, single = _episodes(actions, t)
    sq = (f * f).sum(dim=1)
    dist = (sq[:, None] + sq[None, :] - 2.0 * f @ f.t()).clamp_min(0.0)  # [T, T] squared
    inf = torch.tensor(float("inf"), device=f.device, dtype=dist.dtype)
    masked = torch.where(a[:, None, :] > 0, dist.unsqueeze(0), inf)  # [E, T(t), T(s)]
    nearest = masked.min(dim=2).values  # [E, T]
    any_sel = a.sum(dim=1) > 0
    safe = torch.where(any_sel[:, None], nearest, torch.zeros_like(nearest))
    r = torch.where(any_sel, torch.exp(-safe.mean(dim=1)), torch.zeros_like(any_sel, dtype=dist.dtype))
    return r[0] if single else r


def length_penalty(p: torch.Tensor, eps: float = 0.5, mask: torch.Tensor | None = None) -> torch.Tensor:
    """``(mean(p) - eps)^2``: keeps the selection probabilities from all going to 1 (or 0).

    p [T] or [B, T] (mean over every real step); mask bool, same shape, marks real steps.
    """
    if mask is not None:
        m = mask.to(p.dtype)
        mean = (p * m).sum() / m.sum().clamp_min(1.0)
    else:
        mean = p.mean()
    return (mean - eps) ** 2
