"""The SUM-GAN VAE-GAN framework (Mahasseni et al., CVPR 2017) that unsupervised CSNet trains in.

A scorer (the "selector", e.g. CSNet) gives p [B, T]. The features are weighted by the scores,
an LSTM VAE (encoder → latent e → decoder) reconstructs them, and an LSTM discriminator tells the
original features from reconstructions. SUM-GAN's losses:

    sparsity        | mean_t p_t − σ |                       (σ = summary rate, 0.3)
    reconstruction  mean_t || φ(x)_t − φ(x̂)_t ||²            (φ = discriminator LSTM outputs)
    prior           KL( q(e | p⊙x) || N(0, I) )
    GAN             log c(x) + log(1 − c(x̂)) + log(1 − c(x̂_fake))

The fake input x̂_fake is what CSNet calls "fake input with uniform distribution": uniform random
scores weight the features and go through the VAE (``fake="uniform"``); ``"prior"`` decodes
e ~ N(0, I) as in SUM-GAN; ``"none"`` drops it.

Why one optimiser is enough (the single trainer does ``loss.backward(); opt.step()``): SUM-GAN's
Algorithm 1 updates three groups with three losses,

    {selector, encoder} ← ∇(prior + reconstruction + sparsity)
    decoder             ← ∇(reconstruction + GAN)            (the generator side)
    discriminator       ← −∇ GAN                              (the discriminator side)

and each term below is built so that its gradient reaches exactly the groups Algorithm 1 gives it:
the reconstruction and generator terms see the discriminator through *detached* parameters
(``torch.func.functional_call``), the generator term decodes a *detached* latent, and the
discriminator term sees *detached* reconstructions. So one backward of the plain sum gives every
group its own Algorithm-1 gradient, and one Adam with two parameter groups (``param_groups``:
generator side / discriminator, each with its own learning rate) performs the three updates
simultaneously rather than alternately — the only departure from the paper's loop. The
generator's GAN term uses the usual non-saturating form (−log c(x̂) instead of log(1 − c(x̂))).

Shapes: x [B, T, D] features, p [B, T] scores, mask [B, T] bool (True on real steps).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

FAKE_INPUTS = ("uniform", "prior", "none")


def run_lstm(lstm: nn.LSTM, x: torch.Tensor, lengths: torch.Tensor, params: dict | None = None):
    """Run ``lstm`` (batch_first) over padded x [N, L, F] with lengths [N] (all ≥ 1).

    Returns (outputs [N, L, H·dirs] zero on padding, last hidden of the top layer [N, H·dirs]).
    ``params``: run with these tensors instead of the module's own (used to freeze it).
    """
    packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
    if params is None:
        out, (h_n, _) = lstm(packed)
    else:
        out, (h_n, _) = functional_call(lstm, params, (packed,))
    out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
    dirs = 2 if lstm.bidirectional else 1
    last = torch.cat([h_n[-dirs + i] for i in range(dirs)], dim=-1)  # top layer, all directions
    return out, last


class VAEEncoder(nn.Module):
    """eLSTM: weighted features [B, T, D] → (mu, logvar) [B, Z] of the latent e."""

    def __init__(self, feature_dim: int, hidden: int, layers: int):
        super().__init__()
        self.proj = nn.Linear(feature_dim, hidden)
        self.lstm = nn.LSTM(hidden, hidden, num_layers=layers, batch_first=True)
        self.mu = nn.Linear(hidden, hidden)
        self.logvar = nn.Linear(hidden, hidden)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor):
        _, last = run_lstm(self.lstm, self.proj(x), lengths)
        return self.mu(last), self.logvar(last)


class VAEDecoder(nn.Module):
    """dLSTM: latent e [B, Z] repeated over T steps → reconstructed features [B, T, D]."""

    def __init__(self, feature_dim: int, hidden: int, layers: int):
        super().__init__()
        self.lstm = nn.LSTM(hidden, hidden, num_layers=layers, batch_first=True)
        self.out = nn.Linear(hidden, feature_dim)

    def forward(self, z: torch.Tensor, lengths: torch.Tensor, steps: int) -> torch.Tensor:
        seq = z.unsqueeze(1).expand(-1, steps, -1).contiguous()
        out, _ = run_lstm(self.lstm, seq, lengths)
        return self.out(out)


class Discriminator(nn.Module):
    """cLSTM: features [B, T, D] → (φ [B, T, H] per-step hidden outputs, logit [B] of 'original')."""

    def __init__(self, feature_dim: int, hidden: int, layers: int):
        super().__init__()
        self.proj = nn.Linear(feature_dim, hidden)
        self.lstm = nn.LSTM(hidden, hidden, num_layers=layers, batch_first=True)
        self.cls = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor):
        phi, last = run_lstm(self.lstm, self.proj(x), lengths)
        return phi, self.cls(last).squeeze(-1)


class SumGAN(nn.Module):
    """The VAE (encoder + decoder) and the discriminator; the scorer lives outside."""

    def __init__(self, feature_dim: int, hidden: int = 256, layers: int = 2):
        super().__init__()
        self.encoder = VAEEncoder(feature_dim, hidden, layers)
        self.decoder = VAEDecoder(feature_dim, hidden, layers)
        self.discriminator = Discriminator(feature_dim, hidden, layers)

    def frozen_discriminator(self, x: torch.Tensor, lengths: torch.Tensor):
        """The discriminator with detached weights: gradients reach x, never its parameters."""
        params = {k: v.detach() for k, v in self.discriminator.named_parameters()}
        return functional_call(self.discriminator, params, (x, lengths))


def param_groups(scorer_params, gan: SumGAN, lr: float, disc_lr: float,
                 weight_decay: float = 0.0) -> list[dict]:
    """Two Adam groups: generator side (scorer + encoder + decoder) and the discriminator."""
    disc = list(gan.discriminator.parameters())
    disc_ids = {id(q) for q in disc}
    gen = [q for q in scorer_params if id(q) not in disc_ids]
    return [
        {"params": gen, "lr": lr, "weight_decay": weight_decay, "name": "generator"},
        {"params": disc, "lr": disc_lr, "weight_decay": weight_decay, "name": "discriminator"},
    ]


def _masked_step_mean(v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """v [B, T] → mean over each video's real steps, then over the batch (scalar)."""
    m = mask.to(v.dtype)
    return ((v * m).sum(1) / m.sum(1).clamp(min=1)).mean()


def sparsity_loss(p: torch.Tensor, mask: torch.Tensor, rate: float) -> torch.Tensor:
    """SUM-GAN's L_sparsity: | mean_t p_t − σ |, averaged over videos. p, mask [B, T]."""
    m = mask.to(p.dtype)
    mean = (p * m).sum(1) / m.sum(1).clamp(min=1)
    return (mean - rate).abs().mean()


def kl_prior(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) summed over latent dims, mean over the batch. [B, Z]."""
    return (0.5 * (logvar.exp() + mu.pow(2) - 1.0 - logvar).sum(-1)).mean()


def sumgan_losses(gan: SumGAN, x: torch.Tensor, p: torch.Tensor, mask: torch.Tensor, *,
                  summary_rate: float = 0.3, fake: str = "uniform") -> dict[str, torch.Tensor]:
    """SUM-GAN's terms for one batch; their plain sum is the objective (see module docstring).

    x [B, T, D] features (treated as data: no gradient needed), p [B, T] scores from the scorer,
    mask [B, T]. Returns scalars: sparsity, reconstruction, prior, gan_generator, discriminator.
    """
    if fake not in FAKE_INPUTS:
        raise ValueError(f"fake input must be one of {FAKE_INPUTS}, got {fake!r}")
    B, T, _ = x.shape
    lengths = mask.sum(1).clamp(min=1)
    x = x.detach()
    weighted = x * p.unsqueeze(-1)  # the scores select frames by weighting their features

    mu, logvar = gan.encoder(weighted, lengths)
    z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
    latents = [z, z.detach()]  # z: reconstruction path; detached z: generator's GAN path
    if fake != "none":
        with torch.no_grad():  # Algorithm 1: the fake's GAN term trains only the decoder
            if fake == "uniform":
                mu_f, logvar_f = gan.encoder(x * torch.rand_like(p).unsqueeze(-1), lengths)
                latents.append(mu_f + torch.randn_like(mu_f) * (0.5 * logvar_f).exp())
            else:
                latents.append(torch.randn_like(mu))
    k = len(latents)
    decoded = gan.decoder(torch.cat(latents), lengths.repeat(k), T)  # [k·B, T, D]
    x_hat, x_gen = decoded[:B], decoded[B:2 * B]
    x_fake = decoded[2 * B:]

    # Live discriminator on detached inputs: original → 1, reconstruction and fake → 0.
    live_in = torch.cat([x, x_hat.detach(), x_fake.detach()])
    phi_live, live_logit = gan.discriminator(live_in, lengths.repeat(live_in.shape[0] // B))
    target = torch.zeros_like(live_logit)
    target[:B] = 1.0
    discriminator = F.binary_cross_entropy_with_logits(live_logit, target)

    # Frozen discriminator on x̂ (reconstruction) and on x̂, fake (generator's GAN term).
    frozen_in = torch.cat([x_hat, x_gen, x_fake])
    phi, logit = gan.frozen_discriminator(frozen_in, lengths.repeat(frozen_in.shape[0] // B))
    phi_x = phi_live[:B].detach()  # the target φ(x): data through the discriminator
    reconstruction = _masked_step_mean((phi[:B] - phi_x).pow(2).mean(-1), mask)
    gen_logits = logit[B:]
    gan_generator = F.binary_cross_entropy_with_logits(gen_logits, torch.ones_like(gen_logits))

    return {
        "sparsity": sparsity_loss(p, mask, summary_rate),
        "reconstruction": reconstruction,
        "prior": kl_prior(mu, logvar),
        "gan_generator": gan_generator,
        "discriminator": discriminator,
    }
