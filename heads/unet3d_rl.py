"""3DST-UNet-RL (Liu et al., TIP 2022): a 3-D spatio-temporal U-Net over clip features
[T, C, h, w], trained with REINFORCE on representativeness/diversity rewards (§III.C–E).

Reading of the paper where it is loose (Fig. 3 is not in the text):
- Squeeze: 1×1×1 conv C → C′ (=32), linear as in Eq. (1) (the "excitation" half of an SE block
  is not described in the paper, so there is none).
- Encoder level i (i = 0..levels−1): ``convs_per_level`` × (3×3×3 conv + ReLU), the first conv
  doubling channels from level 1 on, then max-pool kernel/stride (2, 1, 1): time only, so the
  spatial map is never reduced and 1×1 maps (pooled 2-D features) work. Bottleneck: the same
  convs once more, doubling again.
- Decoder level: the "upsampling followed by a 2×2×2 deconvolution halving the channels" is ONE
  ConvTranspose3d(kernel (2, 2, 2), stride (2, 1, 1)) – as in the original U-Net, whose
  "up-convolution" is a stride-2 transposed conv. Time doubles exactly; space grows h → h+1 and
  we crop back to h (equivalent to a one-sided "same" padding), so skips match spatially.
  Concatenate the skip of the same temporal resolution, then two 3×3×3 conv + ReLU.
- Any T: zero-pad time to a multiple of 2**levels, crop back after the decoder.
- Output: spatial global average pool → [B, C′, T], 1-D transposed conv (kernel = stride = n) →
  n latent scores per step, sigmoid. ``forward`` returns the per-step score [B, T] (the mean
  of the n sub-scores; n = 1 by default, as every store here is step-level).
  ``output="frame"`` (the paper's L = T × n scores, one per frame with n = 15 on 15-frame
  picks): predictions carry the n sub-scores of every step, the evaluation scores them frame by
  frame (``pipeline.summary.upsample_subscores``), and the supervised target is frame-level too.
  REINFORCE and the two regularisers act on the step means: the features, hence the rewards,
  exist per step only.
- ``sequence_model="bilstm"``: Table III's Bi-LSTM row with everything else of this head (loss,
  rewards, SGD) unchanged: a BiLSTM (256 per direction) on the spatially pooled features
  replaces the U-Net. (The ``dsn`` head is DR-DSN as a whole: another loss and optimiser.)

Loss (§III.D–E), per video of the batch, on spatially pooled features x̄ [T, C]:
    L = L_preg + λ·L_breg − (1/k)·Σ_episodes (R − c)·Σ_t log π(a_t)   [+ MSE(p, target)]
The supervised target is ``sup_target``: "gtscore" (the default here) or the paper's "oracle"
summary that maximally agrees with the annotators (§IV.B; stores/targets.py).
with a_t ~ Bernoulli(p_t), R = R_rep + R_div (each switchable), c the per-video moving average of
past episode rewards (kept in the trainer's ``state``), L_preg = (mean p − ε)²,
L_breg = (mean |p − 0.5|)⁻¹.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from heads.base import HeadSpec, register_head
from heads.rewards import diversity_reward, length_penalty, representativeness_reward


@dataclass(frozen=True)
class UNet3DRLConfig:
    """Paper defaults (§IV.B); every field is overridable with ``--set key=value``."""

    # architecture
    squeeze_channels: int = 32  # C′ (paper: 2048 → 32)
    levels: int = 3  # temporal poolings; total temporal stride 2**levels
    convs_per_level: int = 2  # 3×3×3 conv + ReLU per encoder level
    scores_per_step: int = 1  # n latent scores per feature step (1-D deconv kernel = stride)
    # RL
    episodes: int = 5  # k
    baseline_momentum: float = 0.9  # c ← m·c + (1 − m)·mean episode reward (DR-DSN)
    use_rep: bool = True  # R_rep switch (Table IV ablation)
    use_div: bool = True  # R_div switch
    div_temporal_distance: int | None = None  # None: the paper's plain mean; 20: DR-DSN's trick
    logprob_reduce: str = "sum"  # Eq. (11) sums log π over t; "mean" is DR-DSN's code
    epsilon: float = 0.5  # ε of L_preg
    lambda_breg: float = 0.01  # λ of L_breg
    supervised: bool = False  # add L_pred = MSE(p, target) (3DST-UNet_sup)
    sup_target: str = "gtscore"  # gtscore | oracle (the paper, §IV.B) | gtsummary
    output: str = "step"  # step | frame (the paper's L = T × n scores; set scores_per_step=15)
    sequence_model: str = "unet"  # unet | bilstm (Table III's Bi-LSTM row, same loss and SGD)
    lstm_hidden: int = 256  # bilstm only: units per direction (DR-DSN's)
    # optimiser: SGD, lr 1e-5 (SumMe); use lr=1e-6 for TVSum, as the paper does
    lr: float = 1e-5
    momentum: float = 0.9
    weight_decay: float = 1e-6
    lr_step_epochs: int = 30  # halve every 30 epochs
    lr_gamma: float = 0.5
    epochs: int = 60  # not stated in the paper; DR-DSN's (its code base) 60
    clip_grad: float | None = None  # not in the paper (DR-DSN's code clips at 5)
    batch_videos: int = 1
    l2_normalize: bool = False  # read-time L2 normalisation of the features (trainer option)


# -- blocks ---------------------------------------------------------------------------------
def _conv_relu(c_in: int, c_out: int, n: int) -> nn.Sequential:
    """n × (3×3×3 conv, padding 1 + ReLU): keeps [T, h, w] (so 1×1 maps work)."""
    layers: list[nn.Module] = []
    for i in range(n):
        layers += [nn.Conv3d(c_in if i == 0 else c_out, c_out, 3, padding=1), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


class _Up(nn.Module):
    """Decoder step: 2×2×2 transposed conv, stride (2, 1, 1), halving channels; crop the spatial
    +1 back; concat the skip; two 3×3×3 conv + ReLU.  [B, C, t, h, w] → [B, C/2, 2t, h, w]."""

    def __init__(self, c_in: int):
        super().__init__()
        self.up = nn.ConvTranspose3d(c_in, c_in // 2, kernel_size=2, stride=(2, 1, 1))
        self.conv = _conv_relu(c_in, c_in // 2, 2)  # c_in = (c_in/2 from up) + (c_in/2 skip)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        h, w = skip.shape[-2:]
        x = self.up(x)[..., : skip.shape[2], :h, :w]
        return self.conv(torch.cat([skip, x], dim=1))


class _Scorer(nn.Module):
    """What the sequence models share: ``frame_logits`` [B, T, n] → ``forward`` p [B, T] (mean
    of the n sigmoid sub-scores) and ``predict_scores``, what the trainer writes: [B, T], or the
    sub-scores [B, T, n] when ``output == "frame"``."""

    output = "step"

    def frame_logits(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """x [B, T, *feat], mask [B, T] (unused: conv borders see zero padding) → p [B, T]."""
        return torch.sigmoid(self.frame_logits(x)).mean(dim=-1)

    def predict_scores(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        sub = torch.sigmoid(self.frame_logits(x))
        return sub if self.output == "frame" else sub.mean(dim=-1)


class UNet3D(_Scorer):
    """[B, T, C, h, w] (or [B, T, D] → a 1×1 map) → p [B, T] in (0, 1)."""

    def __init__(self, in_channels: int, cfg: UNet3DRLConfig):
        super().__init__()
        self.output = cfg.output
        c0, self.levels, self.n = cfg.squeeze_channels, cfg.levels, cfg.scores_per_step
        self.squeeze = nn.Conv3d(in_channels, c0, 1)  # Eq. (1): linear channel compression
        chans = [c0 * 2**i for i in range(cfg.levels + 1)]  # 32, 64, 128, 256
        self.down = nn.ModuleList(
            _conv_relu(chans[max(i - 1, 0)], chans[i], cfg.convs_per_level)
            for i in range(cfg.levels)
        )
        self.bottom = _conv_relu(chans[-2], chans[-1], cfg.convs_per_level)
        self.up = nn.ModuleList(_Up(chans[i + 1]) for i in reversed(range(cfg.levels)))
        self.head = nn.ConvTranspose1d(c0, 1, kernel_size=self.n, stride=self.n)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """He-normal init, std √(2/fan_in), zero bias (the U-Net paper's choice for ReLU nets):
        PyTorch's default init shrinks the signal through ~15 plain conv layers, so the output
        starts constant and SGD barely moves it."""
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.ConvTranspose3d):  # weight [C_in, C_out, k…]: torch calls
                # C_in·k³ "fan_out"; it is what each output sums over (up to the stride)
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def frame_logits(self, x: torch.Tensor) -> torch.Tensor:
        """[B, T, C, h, w] → logits [B, T, n]."""
        if x.dim() == 3:  # 2-D features [B, T, D]: a 1×1 spatial map
            x = x[..., None, None]
        b, t = x.shape[:2]
        v = x.permute(0, 2, 1, 3, 4)  # [B, C, T, h, w]: time is the depth axis
        stride = 2**self.levels
        v = F.pad(v, (0, 0, 0, 0, 0, (-t) % stride))  # pad time to a multiple of the stride
        v = self.squeeze(v)
        skips = []
        for block in self.down:
            v = block(v)
            skips.append(v)
            v = F.max_pool3d(v, kernel_size=(2, 1, 1))
        v = self.bottom(v)
        for block, skip in zip(self.up, reversed(skips)):
            v = block(v, skip)
        z = self.head(v.mean(dim=(3, 4)))  # spatial GAP [B, C′, T′] → [B, 1, T′·n]
        return z.view(b, -1, self.n)[:, :t]


class BiLSTMScorer(_Scorer):
    """Table III's Bi-LSTM: spatially pooled features [B, T, C] → BiLSTM → Linear(2H, n) →
    logits [B, T, n]; the same interface as ``UNet3D``."""

    def __init__(self, in_channels: int, cfg: UNet3DRLConfig):
        super().__init__()
        self.output, self.n = cfg.output, cfg.scores_per_step
        self.rnn = nn.LSTM(in_channels, cfg.lstm_hidden, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(2 * cfg.lstm_hidden, self.n)

    def frame_logits(self, x: torch.Tensor) -> torch.Tensor:
        h = x.flatten(3).mean(-1) if x.dim() == 5 else x  # [B, T, C]
        out, _ = self.rnn(h)
        return self.fc(out)


# -- rewards and regularisers (pure functions on one video) -------------------------------------
def spatial_pool(x: torch.Tensor) -> torch.Tensor:
    """[T, C, h, w] → [T, C] (spatial mean); [T, D] unchanged. Rewards use these vectors."""
    return x.flatten(2).mean(-1) if x.dim() > 2 else x


def binary_reg(p: torch.Tensor, tiny: float = 1e-6) -> torch.Tensor:
    """L_breg = (mean_t |p_t − 0.5|)⁻¹, p [T] (tiny keeps an all-0.5 start finite)."""
    return 1.0 / ((p - 0.5).abs().mean() + tiny)


def episode_rewards(xbar: torch.Tensor, actions: torch.Tensor, cfg: UNet3DRLConfig) -> dict:
    """xbar [T, C] pooled features, actions [E, T] 0/1 → {"rep": [E], "div": [E], "total": [E]}.

    Switched-off terms are 0. The paper's R_div is the plain mean over selected pairs; set
    ``div_temporal_distance=20`` for DR-DSN's "far pairs count as dissimilar" variant."""
    zero = torch.zeros(actions.shape[0], device=xbar.device)
    rep = representativeness_reward(xbar, actions) if cfg.use_rep else zero
    div = diversity_reward(xbar, actions, cfg.div_temporal_distance) if cfg.use_div else zero
    return {"rep": rep, "div": div, "total": rep + div}


def video_loss(p: torch.Tensor, x: torch.Tensor, cfg: UNet3DRLConfig, baseline: float,
               gtscore: torch.Tensor | None = None,
               actions: torch.Tensor | None = None,
               sub: torch.Tensor | None = None) -> tuple[torch.Tensor, dict]:
    """One video. p [T] scores, x [T, *feat] its features, baseline c (a float) →
    (loss, metrics). ``gtscore``: the supervised target, [T], or [T, n] for the sub-scores
    ``sub`` [T, n] of a frame-level head. ``actions`` [E, T] replaces the Bernoulli sampling
    (tests hand-check it). metrics["mean_reward"] is what the caller folds into the
    moving-average baseline."""
    xbar = spatial_pool(x.detach().float())  # rewards on spatially pooled vectors [T, C]
    if actions is None:
        actions = torch.bernoulli(p.detach().expand(cfg.episodes, -1))  # [E, T]
    r = episode_rewards(xbar, actions, cfg)
    eps = 1e-8  # log π(a_t) = a log p + (1 − a) log(1 − p)
    logp = actions * torch.log(p + eps) + (1 - actions) * torch.log(1 - p + eps)  # [E, T]
    logp = logp.sum(1) if cfg.logprob_reduce == "sum" else logp.mean(1)
    rl = -((r["total"] - baseline) * logp).mean()  # REINFORCE, mean over the k episodes
    l_preg = length_penalty(p, cfg.epsilon)
    l_breg = binary_reg(p)
    loss = l_preg + cfg.lambda_breg * l_breg + rl
    metrics = {"reward": r["total"].mean().item(), "r_rep": r["rep"].mean().item(),
               "r_div": r["div"].mean().item(), "l_preg": l_preg.item(), "l_breg": l_breg.item(),
               "selected": actions.mean().item(), "mean_reward": r["total"].mean().item()}
    if cfg.supervised:
        if gtscore is None:
            raise ValueError(f"unet3d_rl: supervised=True needs the {cfg.sup_target} target "
                             "(labels) in the store")
        pred = sub if sub is not None and gtscore.dim() == 2 else p
        mse = F.mse_loss(pred, gtscore.float())
        loss = loss + mse
        metrics["mse"] = mse.item()
    return loss, metrics


# -- the HeadSpec hooks -----------------------------------------------------------------------
def unet3d_loss(model: nn.Module, batch: dict, cfg: UNet3DRLConfig, state: dict):
    """batch: x [B, T, *feat], mask [B, T], gtscore [B, T] (optional), video_id [B]
    → (mean loss over the batch's videos, mean metrics). Updates state["baselines"]."""
    x, mask = batch["x"], batch["mask"]
    sub = torch.sigmoid(model.frame_logits(x))  # [B, T, n]
    p = sub.mean(dim=-1)  # [B, T]: what forward returns
    baselines = state.setdefault("baselines", {})
    key, has_key = ("target", "has_target") if "target" in batch else ("gtscore", "has_gtscore")
    gts, has = batch.get(key), batch.get(has_key)
    if cfg.supervised and has is not None and not bool(has.all()):
        missing = [v for v, h in zip(batch["video_id"], has.tolist()) if not h]
        raise ValueError(f"unet3d_rl supervised: no {cfg.sup_target} target (labels) for "
                         f"{', '.join(missing)}")
    losses, rows = [], []
    for i, vid in enumerate(batch["video_id"]):
        t = int(mask[i].sum())
        gt = gts[i, :t] if gts is not None else None
        c = baselines.get(vid, 0.0)
        loss, m = video_loss(p[i, :t], x[i, :t], cfg, c, gt, sub=sub[i, :t])
        baselines[vid] = cfg.baseline_momentum * c + (1 - cfg.baseline_momentum) * m["mean_reward"]
        losses.append(loss)
        rows.append(m)
    metrics = {k: sum(r[k] for r in rows) / len(rows) for k in rows[0] if k != "mean_reward"}
    return torch.stack(losses).mean(), metrics


def make_optimizer(model: nn.Module, cfg: UNet3DRLConfig):
    """SGD(momentum 0.9, wd 1e-6), lr halved every ``lr_step_epochs`` (stepped once per epoch)."""
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                          weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=cfg.lr_step_epochs, gamma=cfg.lr_gamma)
    return opt, sched


def build_unet3d(cfg: UNet3DRLConfig, feature_shape: tuple[int, ...]) -> nn.Module:
    """feature_shape (C, h, w) for st3d/i3d, or (D,) for 2-D features (a 1×1 map)."""
    if len(feature_shape) not in (1, 3):
        raise ValueError(f"unet3d_rl needs features [T, C, h, w] or [T, D], got [T, {feature_shape}]")
    if cfg.logprob_reduce not in ("sum", "mean"):
        raise ValueError(f"unet3d_rl: logprob_reduce must be 'sum' or 'mean', not {cfg.logprob_reduce!r}")
    if cfg.levels < 1 or cfg.scores_per_step < 1 or cfg.squeeze_channels < 1:
        raise ValueError("unet3d_rl: levels, scores_per_step and squeeze_channels must be >= 1")
    if cfg.output not in ("step", "frame") or cfg.sequence_model not in ("unet", "bilstm"):
        raise ValueError(f"unet3d_rl: output must be step|frame and sequence_model unet|bilstm "
                         f"(got {cfg.output!r}, {cfg.sequence_model!r})")
    scorer = UNet3D if cfg.sequence_model == "unet" else BiLSTMScorer
    return scorer(int(feature_shape[0]), cfg)


register_head(HeadSpec(name="unet3d_rl", config_cls=UNet3DRLConfig, build=build_unet3d,
                       loss=unet3d_loss, make_optimizer=make_optimizer,
                       default_features="st3d", batch_videos=1))
