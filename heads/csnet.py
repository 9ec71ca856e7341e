"""CSNet: Chunk and Stride Network with difference attention and variance loss.

Jung et al., "Discriminative Feature Learning for Unsupervised Video Summarization", AAAI 2019.

    x [B, T, D] ──FC D→256──► h ──┬─ chunk:  M contiguous parts ─┐ shared BiLSTM(256) → FC → c′
                                  └─ stride: every M-th step    ─┘ (reassembled in time order) → s′
    d_t = FC(|x_{t+1}−x_t|) + FC(|x_{t+2}−x_t|) + FC(|x_{t+4}−x_t|)     (eqs. 8–11, on raw x)
    p¹ = σ(c′ + d),  p² = σ(s′ + d),  p = w₁p¹ + w₂p²,  (w₁, w₂) = softmax(learnable)  (eqs. 5–7)

Choices where the paper is silent (all documented here, not hidden):
- T not divisible by M: chunks are ``array_split`` parts (sizes differ by ≤ 1); stride m takes
  steps m, m+M, … < T. Parts are packed, so no padding enters a BiLSTM; with T < M the empty
  parts are skipped.
- End of sequence for the difference attention: x_{t+k} is clamped to the video's last real step
  (so d^k at the last step is |x_T − x_T| = 0 before its FC).
- The BiLSTM is shared by both streams (paper: "the weight is shared with each chunk and stride
  input"); each stream has its own output FC. The fusion W is a softmax over two learnable
  logits (initialised equal) so that p stays in (0, 1).
- Padded steps score 0.

Losses (pure functions below): the variance loss 1 / (V̂_median(p) + eps) (eqs. 1–2) with the
statistical median (mean of the two middle values for even T; ``torch.median`` would take the
lower one); unsupervised mode trains inside SUM-GAN (``heads/sumgan.py``); ``supervised=True``
adds BCE to the ground-truth scores. The paper gives no weights; we weight every term 1 except the
variance loss in supervised mode, whose weight ``variance_weight_sup`` defaults to 0 (the term is
still reported as a metric). Measured: its gradient, −2w(p_t − med)/(T·(V̂+eps)²), dwarfs the
BCE's while the scores' spread is small, and since 1/V̂ keeps falling as V̂ grows it pushes the
spread past the labels' own. On the synthetic store (9 train / 3 test videos, 6 epochs, lr 1e-3)
test Kendall τ vs gtscore was 0.06 at w = 0.01, 0.27 at 1e-3, 0.61 at 1e-4 and 0.63 at 0; on the
test's small labelled set w = 1 turned Spearman ρ negative (−0.25). The paper's own CSNet_sup trails its
unsupervised CSNet (Table 4), consistent with this interference.

Table 2's ablation: ``chunk_stride``, ``diff_attention``, ``variance_loss`` switch the three
contributions (off = a single BiLSTM / no d / no L_V); e.g. ``vsum train csnet --set
chunk_stride=false --set variance_loss=false``. ``csnet_sup`` = ``csnet`` with supervised=True.
"""
from __future__ import annotations

from dataclasses import dataclass
from math import prod

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from heads.base import HeadSpec, register_head
from heads.sumgan import FAKE_INPUTS, SumGAN, param_groups, run_lstm, sumgan_losses


@dataclass(frozen=True)
class CSNetConfig:
    """Paper defaults (AAAI 2019 implementation details); every switch is a CLI override."""

    hidden: int = 256  # FC D→256 and BiLSTM hidden size per direction
    m: int = 4  # M: number of chunks = stride interval
    chunk_stride: bool = True  # Table 2 "CSNet": off = one BiLSTM over the whole sequence
    diff_attention: bool = True  # Table 2 "Difference"
    diff_steps: tuple[int, ...] = (1, 2, 4)
    variance_loss: bool = True  # Table 2 "Variance Loss"
    variance_eps: float = 1e-4
    variance_weight: float = 1.0  # unsupervised mode (paper)
    variance_weight_sup: float = 0.0  # supervised mode: ours (measured), see the docstring
    supervised: bool = False  # CSNet_sup: add BCE(p, gtscore) to the unsupervised losses
    bce_weight: float = 1.0
    gan: bool = True  # the SUM-GAN VAE-GAN losses (the paper's unsupervised framework)
    gan_hidden: int = 256
    gan_layers: int = 2
    summary_rate: float = 0.3  # σ of SUM-GAN's sparsity loss
    fake_input: str = "uniform"  # uniform | prior | none  (CSNet: "fake input ... uniform")
    lr: float = 1e-4
    disc_lr: float = 1e-4
    lr_decay_epochs: int = 10  # ×lr_decay after this many epochs (scheduler stepped per epoch)
    lr_decay: float = 0.1
    weight_decay: float = 0.0
    epochs: int = 20
    batch_videos: int = 1

    def __post_init__(self):
        if self.m < 1 or self.hidden < 1:
            raise ValueError(f"csnet: m and hidden must be ≥ 1 (m={self.m}, hidden={self.hidden})")
        if self.fake_input not in FAKE_INPUTS:
            raise ValueError(f"csnet: fake_input must be one of {FAKE_INPUTS}")
        if not (self.variance_loss or self.supervised or self.gan):
            raise ValueError("csnet: no loss left (variance_loss, supervised and gan all off)")
        if self.diff_attention and not self.diff_steps:
            raise ValueError("csnet: diff_attention needs at least one diff step")


@dataclass(frozen=True)
class CSNetSupConfig(CSNetConfig):
    """CSNet_sup (the paper's Table 4): the same losses plus BCE to gtscore."""

    supervised: bool = True


def stream_index(lengths: list[int], steps: int, m: int) -> tuple[list, list]:
    """Chunk and stride parts of every video, as flat indices into [B·steps].

    Returns (chunk_parts, stride_parts): lists of int64 arrays, each one part in time order.
    """
    chunks, strides = [], []
    for b, n in enumerate(lengths):
        base = b * steps
        steps_b = np.arange(n, dtype=np.int64) + base
        chunks += [part for part in np.array_split(steps_b, m) if len(part)]
        strides += [steps_b[j::m] for j in range(min(m, n))]
    return chunks, strides


def _pad_parts(parts: list[np.ndarray], device) -> tuple[torch.Tensor, torch.Tensor]:
    """Parts → (index [N, L] padded with 0, lengths [N])."""
    lens = [len(q) for q in parts]
    index = np.zeros((len(parts), max(lens)), dtype=np.int64)
    for i, q in enumerate(parts):
        index[i, : len(q)] = q
    return torch.from_numpy(index).to(device), torch.tensor(lens)


class CSNet(nn.Module):
    """model(x [B, T, *feature_shape], mask [B, T] bool) → p [B, T] in (0, 1), 0 on padding."""

    def __init__(self, cfg: CSNetConfig, feature_dim: int):
        super().__init__()
        self.cfg = cfg
        self.compress = nn.Linear(feature_dim, cfg.hidden)
        self.lstm = nn.LSTM(cfg.hidden, cfg.hidden, batch_first=True, bidirectional=True)
        self.chunk_fc = nn.Linear(2 * cfg.hidden, 1)  # the only stream when chunk_stride is off
        if cfg.chunk_stride:
            self.stride_fc = nn.Linear(2 * cfg.hidden, 1)
            self.fusion = nn.Parameter(torch.zeros(2))  # softmax → (w₁, w₂) = (½, ½) at init
        if cfg.diff_attention:
            self.diff_fc = nn.ModuleList(nn.Linear(feature_dim, 1) for _ in cfg.diff_steps)
        self.gan = SumGAN(feature_dim, cfg.gan_hidden, cfg.gan_layers) if cfg.gan else None

    def difference_attention(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """d [B, T] = Σ_k FC_k(|x_{min(t+k, last)} − x_t|) for k in diff_steps. x [B, T, D]."""
        B, T, D = x.shape
        t = torch.arange(T, device=x.device)
        last = (lengths.to(x.device) - 1).clamp(min=0).unsqueeze(1)  # [B, 1]
        d = x.new_zeros(B, T)
        for k, fc in zip(self.cfg.diff_steps, self.diff_fc):
            ahead = torch.minimum(t + k, last)  # [B, T]
            x_k = x.gather(1, ahead.unsqueeze(-1).expand(-1, -1, D))
            d = d + fc((x_k - x).abs()).squeeze(-1)
        return d

    def stream_logits(self, h: torch.Tensor, lengths: torch.Tensor) -> list[torch.Tensor]:
        """h [B, T, H] → [c′] or [c′, s′], each [B, T] logits in time order (0 on padding)."""
        B, T, H = h.shape
        if not self.cfg.chunk_stride:
            out, _ = run_lstm(self.lstm, h, lengths.clamp(min=1))
            return [self.chunk_fc(out).squeeze(-1)]
        chunks, strides = stream_index(lengths.tolist(), T, self.cfg.m)
        index, lens = _pad_parts(chunks + strides, h.device)
        flat = h.reshape(B * T, H)
        out, _ = run_lstm(self.lstm, flat[index], lens)  # one packed pass for both streams
        valid = torch.arange(index.shape[1]).unsqueeze(0) < lens.unsqueeze(1)  # [N, L]
        valid = valid.to(h.device)
        logits = []
        for sl, fc in ((slice(0, len(chunks)), self.chunk_fc),
                       (slice(len(chunks), None), self.stride_fc)):
            part = fc(out[sl]).squeeze(-1)  # [n_parts, L]
            back = h.new_zeros(B * T).index_put((index[sl][valid[sl]],), part[valid[sl]])
            logits.append(back.view(B, T))
        return logits

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = x.flatten(2).float()
        lengths = mask.sum(1).cpu()
        logits = self.stream_logits(self.compress(x), lengths)
        d = self.difference_attention(x, lengths) if self.cfg.diff_attention else 0.0
        probs = [torch.sigmoid(c + d) for c in logits]  # p¹ (chunk), p² (stride)
        if self.cfg.chunk_stride:
            w = torch.softmax(self.fusion, 0)
            p = w[0] * probs[0] + w[1] * probs[1]
        else:
            p = probs[0]
        return p * mask.to(p.dtype)


# ---- losses (pure functions) -------------------------------------------------------------


def median_variance(p: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """V̂_median [B] = mean_t |p_t − med(p)|² over each video's real steps (eq. 2)."""
    m = mask.to(p.dtype)
    med = p.masked_fill(~mask, float("nan")).nanquantile(0.5, dim=1)  # mid of the middle two
    sq = (p - med.unsqueeze(1)).pow(2) * m
    return sq.sum(1) / m.sum(1).clamp(min=1)


def variance_loss(p: torch.Tensor, mask: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    """L_V = 1 / (V̂_median(p) + eps), averaged over the batch (eqs. 1–2). p, mask [B, T]."""
    return (1.0 / (median_variance(p, mask) + eps)).mean()


def masked_bce(p: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """BCE(p, target) over real steps only. All [B, T]; target in [0, 1]."""
    return F.binary_cross_entropy(p[mask], target[mask].to(p.dtype).clamp(0.0, 1.0))


def csnet_loss(model: CSNet, batch: dict, cfg: CSNetConfig, state: dict):
    """One training step's objective: (loss scalar, metrics dict of floats)."""
    x, mask = batch["x"], batch["mask"]
    p = model(x, mask)
    terms: dict[str, torch.Tensor] = {}
    metrics: dict[str, float] = {}
    if cfg.variance_loss:
        weight = cfg.variance_weight_sup if cfg.supervised else cfg.variance_weight
        l_var = variance_loss(p, mask, cfg.variance_eps)
        if weight > 0:
            terms["variance"] = weight * l_var
        else:
            metrics["variance"] = float(l_var.detach())  # reported, not trained on
    if cfg.supervised:
        if batch.get("gtscore") is None:
            raise ValueError(f"csnet: supervised=True needs labels/gtscore ({batch['video_id']})")
        terms["bce"] = cfg.bce_weight * masked_bce(p, batch["gtscore"], mask)
    if cfg.gan:
        terms.update(sumgan_losses(model.gan, x.flatten(2).float(), p, mask,
                                   summary_rate=cfg.summary_rate, fake=cfg.fake_input))
    loss = sum(terms.values())
    metrics.update({k: float(v.detach()) for k, v in terms.items()})
    metrics["score_var_median"] = float(median_variance(p.detach(), mask).mean())
    metrics["score_mean"] = float(p.detach()[mask].mean())
    return loss, metrics


def make_optimizer(model: CSNet, cfg: CSNetConfig):
    """Adam (lr 1e-4) over the generator side and the discriminator (its own lr); StepLR ×0.1
    after ``lr_decay_epochs`` epochs — the trainer steps the scheduler once per epoch."""
    if model.gan is not None:
        groups = param_groups(model.parameters(), model.gan, cfg.lr, cfg.disc_lr, cfg.weight_decay)
    else:
        groups = [{"params": list(model.parameters()), "lr": cfg.lr,
                   "weight_decay": cfg.weight_decay}]
    opt = torch.optim.Adam(groups)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=cfg.lr_decay_epochs, gamma=cfg.lr_decay)
    return opt, sched


def build_csnet(cfg: CSNetConfig, feature_shape: tuple[int, ...]) -> CSNet:
    """(cfg, per-step feature shape) → CSNet; multi-dim features are flattened per step."""
    return CSNet(cfg, int(prod(feature_shape)))


for _name, _cfg in (("csnet", CSNetConfig), ("csnet_sup", CSNetSupConfig)):
    register_head(HeadSpec(name=_name, config_cls=_cfg, build=build_csnet, loss=csnet_loss,
                           make_optimizer=make_optimizer, inputs="features",
                           default_features="googlenet", batch_videos=_cfg.batch_videos))
