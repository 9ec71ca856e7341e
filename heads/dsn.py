"""DR-DSN (Zhou, Qiao & Xiang, AAAI 2018): a BiLSTM scores every step, trained with REINFORCE on
diversity + representativeness rewards; DR-DSN_sup adds a supervised term.

Model: x [B, T, D] -> BiLSTM (256 per direction) -> Linear(512, 1) -> sigmoid -> p [B, T].
4-D features [B, T, C, h, w] are averaged over space first (``spatial="mean"``) or flattened.

Loss for one video (the authors' code, ``main.py``), with E episodes a^e ~ Bernoulli(p):
    L = β·(mean p − ε)² − Σ_e mean_t log π(a^e_t) · (R(a^e) − b_v)   [+ w·L_sup]
R = reward_scale·(R_div + R_rep) (heads/rewards.py; each switchable), b_v the per-video moving
average of past episode rewards (b_v ← 0.9·b_v + 0.1·mean_e R, starting at 0), kept in the
trainer's ``state``.

Two places where the paper and the authors' code (which produced the published numbers) differ,
each a field (``heads/presets.py`` names the combinations):
- ``reward_scale``: the paper's eq. (6) is R = R_div + R_rep (1.0, the default); the authors'
  ``rewards.py`` returns 0.5·(R_div + R_rep): ``reward_scale=0.5`` reproduces the code.
- DR-DSN_sup: the paper adds a maximum-likelihood term on the ground-truth keyframes Y,
  L_sup = −mean_{t∈Y} log p_t (``sup_loss="mle"``, Y = {t : target_t ≥ 0.5}); this project's
  earlier variant regresses the target with MSE (``sup_loss="mse"``, the default). The target is
  ``sup_target`` (stores/targets.py: gtscore, the oracle summary, or gtsummary keyframes).

Defaults from the paper (§4.1): Adam lr 1e-5, weight decay 1e-5, 60 epochs, 5 episodes,
ε = 0.5, β = 0.01, λ = 20 for the diversity's temporal distance. The authors' code also clips the
gradient norm at 5 (``clip_grad``). It builds a StepLR(30, ×0.1) but never calls its ``step()``,
so its learning rate stays 1e-5 for all 60 epochs: ``lr_step=0`` (the default) is what the code
does; ``lr_step=30`` gives the decay the code seems to intend.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from heads.base import HeadSpec, register_head
from heads.rewards import diversity_reward, length_penalty, representativeness_reward


@dataclass(frozen=True)
class DSNConfig:
    hidden: int = 256  # LSTM units per direction
    num_layers: int = 1
    spatial: str = "mean"  # 4-D features: "mean" over h, w or "flatten" to C*h*w
    # REINFORCE
    episodes: int = 5
    baseline_decay: float = 0.9  # b <- decay*b + (1-decay)*mean reward
    use_diversity: bool = True
    use_representativeness: bool = True
    div_temporal_distance: int | None = 20  # λ; None: plain mean over all pairs
    eps: float = 0.5  # length penalty target ε
    beta: float = 0.01  # length penalty weight β
    reward_scale: float = 1.0  # 1: the paper's R_div + R_rep; 0.5: the authors' code
    # supervised variant (DR-DSN_sup)
    supervised: bool = False
    sup_loss: str = "mse"  # mse: MSE(p, target) | mle: the paper's −mean_{t∈Y} log p_t
    sup_target: str = "gtscore"  # gtscore | oracle | gtsummary (stores/targets.py)
    sup_weight: float = 1.0
    rl_weight: float = 1.0  # 0 with supervised=True gives a purely supervised BiLSTM
    # optimisation
    lr: float = 1e-5
    weight_decay: float = 1e-5
    epochs: int = 60
    lr_step: int = 0  # >0: StepLR every lr_step epochs (authors' code: 30)
    lr_gamma: float = 0.1
    clip_grad: float | None = 5.0
    batch_videos: int = 1
    l2_normalize: bool = False  # read-time L2 normalisation of the features


@dataclass(frozen=True)
class DSNSupConfig(DSNConfig):
    supervised: bool = True


class DSN(nn.Module):
    """x [B, T, *feature_shape], mask bool [B, T] -> p [B, T] in (0, 1)."""

    def __init__(self, in_dim: int, cfg: DSNConfig):
        super().__init__()
        self.spatial = cfg.spatial
        self.rnn = nn.LSTM(in_dim, cfg.hidden, num_layers=cfg.num_layers, batch_first=True,
                           bidirectional=True)
        self.fc = nn.Linear(2 * cfg.hidden, 1)

    def flat(self, x: torch.Tensor) -> torch.Tensor:
        """[B, T, *shape] -> [B, T, D]"""
        if x.dim() == 5 and self.spatial == "mean":
            return x.mean(dim=(3, 4))
        return x.reshape(x.shape[0], x.shape[1], -1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        h = self.flat(x)
        b, t = h.shape[:2]
        if mask is not None and not bool(mask.all()):
            lengths = mask.sum(dim=1).cpu()
            packed = nn.utils.rnn.pack_padded_sequence(h, lengths, batch_first=True,
                                                       enforce_sorted=False)
            out, _ = self.rnn(packed)
            out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=t)
        else:
            out, _ = self.rnn(h)
        return torch.sigmoid(self.fc(out)).squeeze(-1)


def episode_rewards(x: torch.Tensor, actions: torch.Tensor, cfg: DSNConfig) -> torch.Tensor:
    """x [T, D], actions [E, T] -> R [E] = reward_scale·(R_div + R_rep) (each switched by cfg)."""
    r = torch.zeros(actions.shape[0], device=x.device)
    if cfg.use_diversity:
        r = r + diversity_reward(x, actions, cfg.div_temporal_distance)
    if cfg.use_representativeness:
        r = r + representativeness_reward(x, actions)
    return cfg.reward_scale * r


def reinforce_loss(p: torch.Tensor, x: torch.Tensor, baseline: float, cfg: DSNConfig):
    """One video: p [T], x [T, D] -> (−Σ_e mean_t log π(a^e) (R^e − b), mean episode reward)."""
    dist = torch.distributions.Bernoulli(probs=p.clamp(1e-6, 1 - 1e-6))
    actions = dist.sample((cfg.episodes,))  # [E, T]
    logp = dist.log_prob(actions).mean(dim=1)  # [E]
    with torch.no_grad():
        rewards = episode_rewards(x.detach(), actions, cfg)
    return -(logp * (rewards - baseline)).sum(), float(rewards.mean())


def dsn_loss(model: DSN, batch: dict, cfg: DSNConfig, state: dict):
    """batch (heads/base.py) -> (loss, metrics). Updates state["baselines"][video_id]."""
    x, mask = batch["x"], batch["mask"]
    p = model(x, mask)  # [B, T]
    feats = model.flat(x)  # rewards on the same vectors the LSTM sees
    baselines = state.setdefault("baselines", {})
    total = cfg.beta * length_penalty(p, cfg.eps, mask)
    metrics = {"length_penalty": 0.0, "reward": 0.0}
    metrics["length_penalty"] = float(length_penalty(p.detach(), cfg.eps, mask))
    if cfg.rl_weight > 0:
        rl = 0.0
        for i, vid in enumerate(batch["video_id"]):
            t = int(mask[i].sum())
            b = baselines.get(vid, 0.0)
            loss_i, mean_r = reinforce_loss(p[i, :t], feats[i, :t], b, cfg)
            baselines[vid] = cfg.baseline_decay * b + (1 - cfg.baseline_decay) * mean_r
            rl = rl + loss_i
            metrics["reward"] += mean_r / len(batch["video_id"])
        total = total + cfg.rl_weight * rl / len(batch["video_id"])
    if cfg.supervised:
        target = supervised_target(batch, cfg.sup_target)
        m = mask.float()
        if cfg.sup_loss == "mle":
            keys = (target >= 0.5).float() * m  # Y: the keyframes
            nll = -(torch.log(p.clamp_min(1e-6)) * keys).sum(1) / keys.sum(1).clamp_min(1.0)
            sup = nll.mean()
        else:
            sup = (F.mse_loss(p, target, reduction="none") * m).sum() / m.sum()
        total = total + cfg.sup_weight * sup
        metrics[cfg.sup_loss] = float(sup.detach())
    return total, metrics


def supervised_target(batch: dict, kind: str) -> torch.Tensor:
    """The batch's supervised target [B, T] (``target`` when the trainer loaded one, else
    ``gtscore``); a video without it is named in the error."""
    key, has_key = ("target", "has_target") if "target" in batch else ("gtscore", "has_gtscore")
    has = batch.get(has_key)
    if has is not None and not bool(has.all()):
        missing = [v for v, h in zip(batch["video_id"], has.tolist()) if not h]
        raise ValueError(f"supervised head: no {kind} target (labels) for {', '.join(missing)}")
    return batch[key]


def make_optimizer(model: nn.Module, cfg: DSNConfig):
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = (torch.optim.lr_scheduler.StepLR(opt, step_size=cfg.lr_step, gamma=cfg.lr_gamma)
             if cfg.lr_step > 0 else None)
    return opt, sched


def build_dsn(cfg: DSNConfig, feature_shape: tuple[int, ...]) -> DSN:
    """feature_shape (D,) or (C, h, w)."""
    if cfg.spatial not in ("mean", "flatten"):
        raise ValueError(f"dsn: spatial must be 'mean' or 'flatten', not {cfg.spatial!r}")
    if cfg.sup_loss not in ("mse", "mle"):
        raise ValueError(f"dsn: sup_loss must be 'mse' or 'mle', not {cfg.sup_loss!r}")
    if len(feature_shape) == 3 and cfg.spatial == "mean":
        in_dim = int(feature_shape[0])
    else:
        in_dim = int(math.prod(feature_shape))
    return DSN(in_dim, cfg)


register_head(HeadSpec(name="dsn", config_cls=DSNConfig, build=build_dsn, loss=dsn_loss,
                       make_optimizer=make_optimizer, default_features="googlenet"))
register_head(HeadSpec(name="dsn_sup", config_cls=DSNSupConfig, build=build_dsn, loss=dsn_loss,
                       make_optimizer=make_optimizer, default_features="googlenet"))
