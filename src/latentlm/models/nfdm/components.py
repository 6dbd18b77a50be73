"""The parts NFDM adds to the shared backbone: the forward-process network F_phi, the learned volatility g(t) and
the learned importance sampler of training times."""

import math
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from diffusers.models.embeddings import TimestepEmbedding
from torch import nn

from ..backbone import RotaryEmbedding, SelfAttention, SwiGLU


def sinusoidal_features(scalar: torch.Tensor, dim: int = 256, max_period: float = 10000.0) -> torch.Tensor:
    """`(batch,)` -> `(batch, dim)` ``[cos(scalar * f_i), sin(scalar * f_i)]`` with geometric frequencies from 1 to
    ``1 / max_period``, computed in the input's dtype (diffusers' `Timesteps` rounds to float32, which a float64
    finite-difference check of the time derivative would see)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=scalar.device, dtype=scalar.dtype) / half)
    angles = scalar[:, None] * freqs[None]
    return torch.cat([angles.cos(), angles.sin()], dim=-1)


class AdaLNBlock(nn.Module):
    """Pre-norm transformer block whose norms are modulated by the time embedding (AdaLN-Zero, as DiT): each branch
    is ``h + gate * branch(norm(h) * (1 + scale) + shift)``, with ``shift, scale, gate`` a zero-initialised linear map
    of the time embedding, so the block starts as the identity. Attention and MLP are the backbone's."""

    def __init__(self, config: SimpleNamespace):
        super().__init__()
        hidden = config.hidden_size
        self.attn_norm = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        self.attn = SelfAttention(config)
        self.mlp_norm = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        self.mlp = SwiGLU(hidden, config.intermediate_size)
        self.modulation = nn.Linear(hidden, 6 * hidden)

    def forward(self, hidden, time_emb, rotary, attention_mask):
        shift1, scale1, gate1, shift2, scale2, gate2 = self.modulation(F.silu(time_emb))[:, None].chunk(6, dim=-1)
        attn_in = self.attn_norm(hidden) * (1 + scale1) + shift1
        hidden = hidden + gate1 * self.attn(attn_in, rotary, attention_mask, 0.0)
        mlp_in = self.mlp_norm(hidden) * (1 + scale2) + shift2
        return hidden + gate2 * self.mlp(mlp_in, 0.0)


class NFDMForwardProcess(nn.Module):
    """``F_phi``: a small time-conditioned transformer over the clean embeddings, giving per token and dimension the
    two fields of the Gaussian forward process, ``mean_bar(x, t)`` and ``log_std_bar(x, t)`` (see
    `LearnedGaussianSDEScheduler` for how they enter the mean and std).

    The time is embedded as ``forward_time_scale * t`` (1000 t as the official code). The output map is
    zero-initialised, so an untrained network gives the fixed process. With ``forward_log_std_bound = B``,
    ``log_std_bar`` is squashed to ``B tanh(raw / B)`` (not in the official code; see `NFDMConfig`).

    Attention runs through `scaled_dot_product_attention`; the fused CPU / flash kernels have no forward-mode
    derivative, so callers taking the time derivative with `torch.func.jvp` select the math kernel (see
    `NFDMForDiffusion.forward_fields`).
    """

    def __init__(self, config):
        super().__init__()
        hidden, latent_dim = config.forward_hidden_size, config.latent_dim
        sizes = SimpleNamespace(
            hidden_size=hidden,
            num_attention_heads=config.forward_num_heads,
            intermediate_size=config.forward_intermediate_size,
            rms_norm_eps=config.rms_norm_eps,
        )
        self.time_scale = config.forward_time_scale
        self.log_std_bound = config.forward_log_std_bound
        self.input_proj = nn.Linear(latent_dim, hidden)
        self.time_embedding = TimestepEmbedding(256, hidden)
        self.rotary = RotaryEmbedding(
            hidden // config.forward_num_heads, config.max_position_embeddings, config.rope_theta
        )
        self.blocks = nn.ModuleList(AdaLNBlock(sizes) for _ in range(config.forward_num_layers))
        self.norm_out = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        self.modulation_out = nn.Linear(hidden, 2 * hidden)
        self.proj_out = nn.Linear(hidden, 2 * latent_dim)

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor, attention_mask: torch.Tensor | None = None):
        """
        Args:
            sample: `(batch, seq_len, latent_dim)` clean embeddings ``x`` (or a prediction ``x_hat``).
            timestep: `(batch,)` t in [0, 1].
            attention_mask: `(batch, seq_len)`, 0 on padding keys.

        Returns:
            ``(mean_bar, log_std_bar)``, each `(batch, seq_len, latent_dim)`.
        """
        batch, seq_len, _ = sample.shape
        time_emb = self.time_embedding(sinusoidal_features(self.time_scale * timestep.to(sample.dtype)))
        hidden = self.input_proj(sample)
        rotary = self.rotary(0, seq_len, hidden.dtype)
        key_mask = None if attention_mask is None else attention_mask.bool()
        for block in self.blocks:
            hidden = block(hidden, time_emb, rotary, key_mask)
        shift, scale = self.modulation_out(F.silu(time_emb))[:, None].chunk(2, dim=-1)
        mean_bar, log_std_bar = self.proj_out(self.norm_out(hidden) * (1 + scale) + shift).chunk(2, dim=-1)
        if self.log_std_bound is not None:
            log_std_bar = self.log_std_bound * torch.tanh(log_std_bar / self.log_std_bound)
        return mean_bar, log_std_bar


class LearnedVolatility(nn.Module):
    """``g(t) = softplus(MLP(t)) + floor``: a 1 -> h -> h -> h -> 1 MLP (SiLU) as the official ``LearnedVolatility``;
    the floor (1e-4) keeps ``1 / g^2`` in the bound finite."""

    def __init__(self, hidden_size: int, floor: float = 1e-4):
        super().__init__()
        self.floor = floor
        self.net = nn.Sequential(
            nn.Linear(1, hidden_size), nn.SiLU(),
            nn.Linear(hidden_size, hidden_size), nn.SiLU(),
            nn.Linear(hidden_size, hidden_size), nn.SiLU(),
            nn.Linear(hidden_size, 1),
        )  # fmt: skip

    def forward(self, timestep: torch.Tensor) -> torch.Tensor:
        """`(batch,)` t -> `(batch,)` g(t)."""
        return F.softplus(self.net(timestep[:, None].to(self.net[0].weight.dtype))).squeeze(-1) + self.floor


class ImportanceTimeSampler(nn.Module):
    """A learned piecewise-constant proposal over training times: ``num_buckets`` equal buckets of [0, 1] with
    learnable logits, density ``p(t) = num_buckets * softmax(logits)[bucket(t)]``.

    Use (see `NFDMForDiffusion.forward`): draw ``t_i ~ p``, estimate the time integral of the bound by
    ``mean_i L(t_i) / p(t_i)`` (each sample divided by its *own* density: unbiased for ``int_0^1 L dt``), and train
    the logits to minimise the estimator's second moment ``E_p[(L / p)^2]`` (its variance up to a constant), whose
    gradient ``mean_i d/dlogits (L_i / p_i)^2`` with ``L`` held fixed is twice the exact one.

    The official code (``language_diff_module.py``) divides a `(B,)` loss by a `(B, 1, 1)` density, which
    broadcasts to `(B, 1, B)`: its mean is ``mean(L) * mean(1 / p)``, no per-sample reweighting, a biased estimate
    whenever ``p`` is not uniform. We do the per-sample division.
    """

    def __init__(self, num_buckets: int):
        super().__init__()
        self.num_buckets = num_buckets
        self.logits = nn.Parameter(torch.zeros(num_buckets))

    def density(self, timestep: torch.Tensor) -> torch.Tensor:
        """``p(t)`` `(batch,)` for times `(batch,)` in [0, 1] (differentiable in the logits)."""
        bucket = (timestep * self.num_buckets).long().clamp(0, self.num_buckets - 1)
        return self._bucket_density(bucket)

    def _bucket_density(self, bucket: torch.Tensor) -> torch.Tensor:
        return self.num_buckets * torch.softmax(self.logits.float(), dim=0)[bucket]

    def sample(self, batch_size: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """``(t, p(t))``, each `(batch_size,)`: a bucket from the proposal, then a uniform time inside it."""
        probs = torch.softmax(self.logits.detach().float(), dim=0)
        bucket = torch.multinomial(probs, batch_size, replacement=True).to(device)
        t = (bucket + torch.rand(batch_size, device=device)) / self.num_buckets
        return t, self._bucket_density(bucket)
