"""CRSum (Yuan et al., IEEE Access 2019): 3D CNNs + BiLSTM + MLP on raw frames, Sobolev loss.

§III.D: two 3D CNN blocks read the video cube [B, 3, T, H, W] — CNN1 shallow (3 layers), CNN2 deep
(8 layers) — every Conv3d with kernel (3, 5, 5), stride (1, 2, 2), padding (1, 2, 2), so T is
preserved. Per step the maps are spatially average-pooled and the two are concatenated, then a
BiLSTM (256 per direction) and an MLP (one hidden layer of 256, sigmoid) give a score per step.
§III.E eq. (12): Sobolev loss (1/n)Σ(s−t)² + λ/(n−1)Σ[Δs−Δt]², λ = 1 (λ = 0 is MSE).
§IV.A: Adam lr 1e-3, β (0.9, 0.999), batch of 8 videos, 10,000 epochs, lr halved every 2,000.

Readings where the paper is silent (documented choices, all overridable):
- Channel widths are not given: CNN1 16-32-64, CNN2 16-32-64-64-128-128-256-256.
- Normalisation: a per-frame LayerNorm over (C, h, w) after each conv ("frame" norm), so steps,
  videos and padding never mix; ``norm=none`` gives the plain conv + ReLU stack.
- Padding: padded steps are zeroed before every conv (equivalent to each video's own zero
  padding), the BiLSTM runs on packed sequences, and the loss is masked: a padded batch computes
  what each video would alone.
- Long videos train on chunk-aligned windows of consecutive steps (``window_steps``; the Sobolev
  term is computed inside each window). Prediction runs the CNNs window by window, then the
  BiLSTM over the whole video's step features (``predict_context=video``) or per window.
- Variant of this project: ``trunk=r3d_18|i3d`` replaces CNN2 with a pretrained video trunk
  fine-tuned end to end (temporal strides set to 1; see ``heads/crsum_trunks.py``).
- CRSum(i, j) ablation (Table 2): ``cnn1_weights=PATH`` (i = 1: CNN1 from a pretrained CRSum
  checkpoint, e.g. trained on another dataset; the paper pretrains on UCF101) and
  ``use_cnn2=false`` (j = 0: CNN2 dropped).
- Scaled-down schedules: e.g. ``--set epochs=60 --set lr_halve_every=12`` keeps the paper's ratio.
- The paper's input (§IV.A), the ``paper`` preset (heads/presets.py): 256×256 frames
  (``frame_size=256``: the store must hold them, ``vsum extract --frames 256``), one frame in 60
  (``pick_stride=4`` on 15-frame picks) and whole videos (``window_steps=0``). Its keyframe
  evaluation: ``vsum evaluate --protocol crsum-keyframe --keyframe-stride 4``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from torch.utils.checkpoint import checkpoint

from heads.base import HeadSpec, register_head
from heads.crsum_trunks import KINETICS_MEAN, KINETICS_STD, TRUNKS

KERNEL, STRIDE, PADDING = (3, 5, 5), (1, 2, 2), (1, 2, 2)


@dataclass(frozen=True)
class CRSumConfig:
    """Paper defaults; every field is overridable with ``--set key=value``."""

    # architecture (§III.D)
    cnn1_channels: tuple[int, ...] = (16, 32, 64)  # 3 layers (widths not in the paper)
    cnn2_channels: tuple[int, ...] = (16, 32, 64, 64, 128, 128, 256, 256)  # 8 layers
    norm: str = "frame"  # frame | none
    lstm_hidden: int = 256  # per direction
    mlp_hidden: int = 256
    use_cnn2: bool = True  # CRSum(i, j): j
    cnn1_weights: str = ""  # CRSum(i, j): i = 1 with a PATH to a CRSum checkpoint / state dict
    trunk: str = "paper"  # paper | r3d_18 | i3d  (CNN2)
    trunk_weights: str = "auto"  # auto | pretrained | random | PATH (extractors' policy)
    grad_checkpoint: bool = False
    # loss (§III.E)
    sobolev_lambda: float = 1.0
    # optimisation (§IV.A)
    lr: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    batch_videos: int = 8
    epochs: int = 10000
    lr_halve_every: int = 2000  # epochs
    # data path (stores/frame_windows.py)
    frame_size: int = 0  # required stored frame size (the paper: 256); 0 = whatever is stored
    window_steps: int = 64  # kept steps per training window; 0 = whole videos
    pick_stride: int = 1  # keep every k-th pick (4 = the paper's 60 frames on 15-frame picks)
    num_workers: int = 2
    start_method: str = "forkserver"
    predict_context: str = "video"  # video | window (BiLSTM context at prediction)
    seed: int = 0  # mixed with the run's torch seed for the window shuffling


# -- blocks ---------------------------------------------------------------------------------
class FrameNorm(nn.Module):
    """LayerNorm over (C, h, w) of each frame: [B, C, T, h, w] → same; no mixing across T or B."""

    def __init__(self, c: int, eps: float = 1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(1, c, 1, 1, 1))
        self.bias = nn.Parameter(torch.zeros(1, c, 1, 1, 1))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        var, mean = torch.var_mean(x, dim=(1, 3, 4), keepdim=True, correction=0)  # [B,1,T,1,1]
        scale = torch.rsqrt(var + self.eps) * self.weight  # [B, C, T, 1, 1]: one fused pass
        return torch.addcmul(self.bias - mean * scale, x, scale)


class ConvBlock(nn.Module):
    """Zero padded steps, Conv3d (3,5,5)/(1,2,2)/(1,2,2), norm, ReLU.
    [B, C_in, T, H, W] → [B, C_out, T, ceil(H/2), ceil(W/2)]"""

    def __init__(self, c_in: int, c_out: int, norm: str):
        super().__init__()
        self.conv = nn.Conv3d(c_in, c_out, KERNEL, STRIDE, PADDING, bias=norm == "none")
        self.norm = FrameNorm(c_out) if norm == "frame" else nn.Identity()
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor, tmask: torch.Tensor | None) -> torch.Tensor:
        """tmask float [B, 1, T, 1, 1], or None when no step is padded"""
        return self.act(self.norm(self.conv(x if tmask is None else x * tmask)))


class CNN3D(nn.Module):
    """A stack of ConvBlocks, spatially pooled per step: [B, 3, T, H, W] → [B, T, C_last]."""

    def __init__(self, channels: tuple[int, ...], norm: str, grad_checkpoint: bool = False):
        super().__init__()
        ins = (3, *channels[:-1])
        self.blocks = nn.ModuleList(ConvBlock(a, b, norm) for a, b in zip(ins, channels))
        self.out_dim = channels[-1]
        self.grad_checkpoint = grad_checkpoint

    def feature_maps(self, x: torch.Tensor, tmask: torch.Tensor) -> torch.Tensor:
        """[B, 3, T, H, W] → [B, C_last, T, h, w] (T preserved)"""
        for blk in self.blocks:
            if self.grad_checkpoint and self.training:
                x = checkpoint(blk, x, tmask, use_reentrant=False)
            else:
                x = blk(x, tmask)
        return x

    def forward(self, x: torch.Tensor, tmask: torch.Tensor) -> torch.Tensor:
        return self.feature_maps(x, tmask).mean(dim=(3, 4)).transpose(1, 2)


def _normaliser(kind: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, std) [1, 3, 1, 1, 1] applied to pixels in [0, 1]."""
    if kind == "minus1_1":  # I3D: [-1, 1]
        mean, std = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)
    else:
        mean, std = KINETICS_MEAN, KINETICS_STD
    shape = (1, 3, 1, 1, 1)
    return torch.tensor(mean).view(shape), torch.tensor(std).view(shape)


# -- the model ------------------------------------------------------------------------------
class CRSum(nn.Module):
    """``model(x, mask) -> p``: x uint8/float [B, T, H, W, 3] (raw pixels 0..255), mask bool
    [B, T] → p float [B, T] in (0, 1), 0 on padding."""

    def __init__(self, cfg: CRSumConfig):
        super().__init__()
        self.cfg = cfg
        self.cnn1 = CNN3D(tuple(cfg.cnn1_channels), cfg.norm, cfg.grad_checkpoint)
        self.trunk_weights = "none"
        if not cfg.use_cnn2:
            self.cnn2, norm_kind = None, "kinetics"
        elif cfg.trunk == "paper":
            self.cnn2, norm_kind = CNN3D(tuple(cfg.cnn2_channels), cfg.norm, cfg.grad_checkpoint), "kinetics"
        elif cfg.trunk in TRUNKS:
            builder, norm_kind = TRUNKS[cfg.trunk]
            self.cnn2 = builder(cfg.trunk_weights)
            self.cnn2.grad_checkpoint = cfg.grad_checkpoint
            self.trunk_weights = self.cnn2.weights
        else:
            raise ValueError(f"crsum: unknown trunk {cfg.trunk!r} (paper, {', '.join(TRUNKS)})")
        for name, kind in (("1", "kinetics"), ("2", norm_kind)):
            mean, std = _normaliser(kind)
            self.register_buffer(f"mean{name}", mean, persistent=False)
            self.register_buffer(f"std{name}", std, persistent=False)
        d = self.cnn1.out_dim + (self.cnn2.out_dim if self.cnn2 is not None else 0)
        self.lstm = nn.LSTM(d, cfg.lstm_hidden, batch_first=True, bidirectional=True)
        self.mlp = nn.Sequential(nn.Linear(2 * cfg.lstm_hidden, cfg.mlp_hidden), nn.ReLU(),
                                 nn.Linear(cfg.mlp_hidden, 1))

    def step_features(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x [B, T, H, W, 3] pixels, mask [B, T] → per-step CNN features [B, T, D1 + D2]."""
        v = x.permute(0, 4, 1, 2, 3)  # [B, 3, T, H, W]
        v = v.float().div_(255.0) if v.dtype == torch.uint8 else v / 255.0  # in [0, 1]
        # padded steps are zeroed before every conv; nothing to do when none is padded
        tmask = None if bool(mask.all()) else mask[:, None, :, None, None].to(v.dtype)
        x1 = (v - self.mean1) / self.std1
        feats = [self.cnn1(x1, tmask)]
        if self.cnn2 is not None:
            same = torch.equal(self.mean1, self.mean2) and torch.equal(self.std1, self.std2)
            x2 = x1 if same else (v - self.mean2) / self.std2
            feats.append(self.cnn2(x2, tmask))
        return torch.cat(feats, dim=-1)

    def score(self, feats: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """feats [B, T, D], mask [B, T] → p [B, T] (BiLSTM on packed sequences, MLP, sigmoid)."""
        lengths = mask.sum(1).clamp(min=1).cpu()
        packed = pack_padded_sequence(feats, lengths, batch_first=True, enforce_sorted=False)
        h, _ = pad_packed_sequence(self.lstm(packed)[0], batch_first=True,
                                   total_length=feats.shape[1])  # [B, T, 2H]
        p = torch.sigmoid(self.mlp(h).squeeze(-1))
        return torch.where(mask, p, torch.zeros_like(p))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.score(self.step_features(x, mask), mask)


# -- loss -----------------------------------------------------------------------------------
def sobolev_loss(s: torch.Tensor, t: torch.Tensor, mask: torch.Tensor, lam: float = 1.0
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Eq. (12) per sequence, averaged over the batch. s, t [B, T], mask bool [B, T].

    Returns (loss, mse, derivative term), each a scalar. Padded steps never enter (``where``,
    not multiplication, so even NaN padding is harmless); a sequence of one step has no
    derivative term."""
    zero = torch.zeros((), dtype=s.dtype, device=s.device)
    err = torch.where(mask, s - t, zero)
    n = mask.sum(1).clamp(min=1)
    mse = (err**2).sum(1) / n  # [B]
    pair = mask[:, 1:] & mask[:, :-1]  # both neighbours real
    d = torch.where(pair, err[:, 1:] - err[:, :-1], zero)  # (Δs − Δt) = Δ(s − t)
    deriv = (d**2).sum(1) / pair.sum(1).clamp(min=1)  # 1/(n−1)
    mse, deriv = mse.mean(), deriv.mean()
    return mse + lam * deriv, mse, deriv


def crsum_loss(model: CRSum, batch: dict, cfg: CRSumConfig, state: dict):
    p = model(batch["x"], batch["mask"])
    loss, mse, deriv = sobolev_loss(p, batch["gtscore"], batch["mask"], cfg.sobolev_lambda)
    return loss, {"loss": float(loss.detach()), "mse": float(mse.detach()),
                  "sobolev_deriv": float(deriv.detach())}


def make_optimizer(model: CRSum, cfg: CRSumConfig):
    """Adam (β from the paper); StepLR halving every ``lr_halve_every`` scheduler steps (epochs)."""
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=max(1, cfg.lr_halve_every), gamma=0.5)
    return opt, sched


# -- builder and data hooks -----------------------------------------------------------------
def load_cnn1(model: CRSum, path: str) -> None:
    """CRSum(1, j): CNN1 from a checkpoint ({"state_dict": …} or a bare state dict), keys
    ``cnn1.*`` or unprefixed."""
    import pickle

    try:  # tensors and plain containers only: a pickle that would run code is refused
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as e:
        raise ValueError(f"{path}: not a safe CNN1 checkpoint ({str(e).splitlines()[0][:160]})") from None
    sd = sd.get("state_dict", sd) if isinstance(sd, dict) else sd
    sub = {k[len("cnn1."):]: v for k, v in sd.items() if k.startswith("cnn1.")} or sd
    try:
        model.cnn1.load_state_dict(sub)
    except RuntimeError as e:
        raise ValueError(f"{path}: not a CNN1 state for cnn1_channels="
                         f"{tuple(model.cfg.cnn1_channels)} ({str(e).splitlines()[0]})") from None


def build_crsum(cfg: CRSumConfig, feature_shape: tuple[int, ...] = (112, 112, 3)) -> CRSum:
    """feature_shape: the stored frames' per-step shape (H, W, 3)."""
    if len(feature_shape) != 3 or feature_shape[-1] != 3:
        raise ValueError(f"crsum reads frames [T, H, W, 3]; got per-step shape {feature_shape}")
    if cfg.norm not in ("frame", "none"):
        raise ValueError(f"crsum: norm must be frame|none, got {cfg.norm!r}")
    if cfg.frame_size and tuple(feature_shape[:2]) != (cfg.frame_size, cfg.frame_size):
        raise ValueError(f"crsum: frame_size={cfg.frame_size} asks for {cfg.frame_size}x"
                         f"{cfg.frame_size} frames but the store holds {feature_shape[0]}x"
                         f"{feature_shape[1]} (extract with --frames {cfg.frame_size}, or "
                         "--set frame_size=0)")
    model = CRSum(cfg)  # initialised from the caller's seed (the trainer seeds each run)
    if cfg.cnn1_weights:
        load_cnn1(model, cfg.cnn1_weights)
    return model


def _loader_options(cfg: CRSumConfig, train: bool):
    from stores.frame_windows import LoaderOptions

    return LoaderOptions(window_steps=cfg.window_steps or None, pick_stride=cfg.pick_stride,
                         batch_videos=cfg.batch_videos, num_workers=cfg.num_workers,
                         start_method=cfg.start_method, shuffle=train,
                         seed=(cfg.seed * 1_000_003 + torch.initial_seed()) % 2**32,
                         pin_memory=torch.cuda.is_available())


def make_loader(store, video_ids: list[str], cfg: CRSumConfig, train: bool):
    """Batches of chunk-aligned frame windows (see ``stores/frame_windows.py``)."""
    from stores.frame_windows import make_frame_loader

    return make_frame_loader(store, video_ids, _loader_options(cfg, train))


@torch.no_grad()
def predict(model: CRSum, store, video_id: str, cfg: CRSumConfig) -> np.ndarray:
    """Scores [T] at every pick of the video; holds one window of frames at a time. With
    ``pick_stride`` k each kept step's score is held over its k picks (zero-order hold)."""
    from stores.frame_windows import iter_video_windows, n_picks

    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    feats, scores = [], []
    for _, frames in iter_video_windows(store, video_id, cfg.window_steps or None, cfg.pick_stride):
        x = torch.from_numpy(frames).to(device)[None]  # [1, t, H, W, 3]
        mask = torch.ones(x.shape[:2], dtype=torch.bool, device=device)
        f = model.step_features(x, mask)  # [1, t, D]
        if cfg.predict_context == "window":
            scores.append(model.score(f, mask)[0].cpu())
        else:
            feats.append(f)
    if feats:
        f = torch.cat(feats, dim=1)  # [1, T_kept, D]: small, the frames are gone
        scores = [model.score(f, torch.ones(f.shape[:2], dtype=torch.bool, device=device))[0].cpu()]
    model.train(was_training)
    kept = torch.cat(scores).numpy().astype(np.float32)
    return np.repeat(kept, cfg.pick_stride)[: n_picks(store, video_id)]


register_head(HeadSpec(
    name="crsum",
    config_cls=CRSumConfig,
    build=build_crsum,
    loss=crsum_loss,
    make_optimizer=make_optimizer,
    inputs="frames",
    default_features="frames",
    batch_videos=8,
    make_loader=make_loader,
    predict=predict,
))
