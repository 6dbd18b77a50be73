"""How the time and the self-conditioning estimate enter `DenoiserTransformer`, and how it merges skips and answers.

Two forms of each choice, read from the method's config by `DenoiserOptions.from_config`:

| option (config field) | latentlm's first form (the default of every config without the field) | Cosmos as published (`score_estimator.py`) |
|---|---|---|
| `time_injection` | ``"tokens"``: in-context time tokens (ELF) | ``"per_layer"``: a time embedding added to the residual stream before every block |
| `time_embedding_max_period` | 10000 (diffusers' sinusoid) | 10 |
| `self_conditioning_injection` | ``"input"``: ``concat([z, x0_hat])`` projected at the input (ELF) | ``"per_layer"``: its own ``Linear`` per block, added to the stream |
| `long_skip_merge` | ``"concat_linear"``: ``Linear(concat([h, skip]))`` | ``"add"``: ``h + skip`` |
| `output_head` | ``"norm_linear"``: RMSNorm, then a zero-initialised ``Linear`` to the latent width | ``"norm"``: the prediction is an RMSNorm output |

Cosmos' per-layer path (``t`` in [0, 1], ``H`` = hidden size, ``D`` = latent width, ``i`` = block index)::

    e = MLP(sinusoid(t, H, max_period))                       # Linear(H, 2H) - SiLU - Linear(2H, H)
    h = h + Linear_i(SiLU(e))[:, None] + Linear_i'(x0_hat)    # before block i, on every block
    h = block_i(h)

Cosmos' denoiser works at the latent width (``H = D = 768``), so its stream *is* the latent: its self-conditioning
layers map ``D -> D`` and its output is ``RMSNorm(h)`` with no projection. latentlm's stream may be narrower than the
latents (``H < D`` at CPU sizes), so the per-layer self-conditioning maps ``D -> H``, and the ``"norm"`` output maps
``H -> D`` with a plain ``Linear`` *before* an RMSNorm of width ``D``, so that the prediction stays, as in Cosmos, an
RMSNorm output (no projection when ``H == D``, exactly Cosmos' head).

Long skips join the first half of the blocks to the second half, mirrored (``L`` blocks, the middle one unpaired when
``L`` is odd). The two merges also pair different states, each as its source does: ``"concat_linear"`` saves the
*output* of block ``i`` and merges it before block ``L - i`` (latentlm's first form), ``"add"`` saves the *input* of
block ``i`` and adds it before block ``L - 1 - i`` (Cosmos' U-Net, where the last block sees the first block's input).
"""

import dataclasses
import math

import torch
import torch.nn.functional as F
from diffusers.models.embeddings import TimestepEmbedding, Timesteps, get_timestep_embedding
from torch import nn


TIME_INJECTIONS = ("tokens", "per_layer")
SELF_CONDITIONING_INJECTIONS = ("input", "per_layer")
LONG_SKIP_MERGES = ("concat_linear", "add")
OUTPUT_HEADS = ("norm_linear", "norm")


@dataclasses.dataclass(frozen=True)
class DenoiserOptions:
    """The backbone's conditioning, skip and output choices; each default is latentlm's first form."""

    time_injection: str = "tokens"
    time_embedding_max_period: float = 10000.0
    self_conditioning_injection: str = "input"
    long_skip_merge: str = "concat_linear"
    output_head: str = "norm_linear"

    @classmethod
    def from_config(cls, config) -> "DenoiserOptions":
        """The options of ``config``; a field the config lacks keeps latentlm's first form. Checked by name."""
        defaults = cls()
        options = cls(**{f.name: getattr(config, f.name, getattr(defaults, f.name)) for f in dataclasses.fields(cls)})
        check_denoiser_options(options, num_time_tokens=getattr(config, "num_time_tokens", 0))
        return options

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def check_denoiser_options(config, num_time_tokens: int | None = None) -> None:
    """Raises `ValueError` naming the first option of ``config`` (a method config or `DenoiserOptions`) that is
    wrong. ``num_time_tokens`` defaults to ``config.num_time_tokens``."""
    for name, choices in (
        ("time_injection", TIME_INJECTIONS),
        ("self_conditioning_injection", SELF_CONDITIONING_INJECTIONS),
        ("long_skip_merge", LONG_SKIP_MERGES),
        ("output_head", OUTPUT_HEADS),
    ):
        value = getattr(config, name)
        if value not in choices:
            raise ValueError(f"`{name}` must be one of {choices}, got {value!r}.")
    period = config.time_embedding_max_period
    if isinstance(period, bool) or not isinstance(period, (int, float)) or not math.isfinite(period) or period <= 0:
        raise ValueError(f"`time_embedding_max_period` must be a positive number, got {period!r}.")
    if num_time_tokens is None:
        num_time_tokens = config.num_time_tokens
    if config.time_injection == "tokens" and not num_time_tokens:
        raise ValueError("`time_injection='tokens'` needs `num_time_tokens` > 0 (the in-context time tokens).")
    if config.time_injection == "per_layer" and num_time_tokens:
        raise ValueError(
            f"`time_injection='per_layer'` adds the time to every block instead of time tokens: set "
            f"`num_time_tokens` to 0 (got {num_time_tokens})."
        )


class SinusoidalTimesteps(Timesteps):
    """diffusers' `Timesteps` (``[cos, sin]``, no frequency shift) with a configurable ``max_period``: the lowest
    frequency is ``1 / max_period``. For t in [0, 1], Cosmos' 10 spreads the frequencies over the range t covers;
    diffusers' 10000 was made for integer timesteps up to 1000."""

    def __init__(self, num_channels: int, max_period: float = 10000.0):
        super().__init__(num_channels, flip_sin_to_cos=True, downscale_freq_shift=0)
        self.max_period = max_period

    def forward(self, timesteps: torch.Tensor) -> torch.Tensor:
        return get_timestep_embedding(
            timesteps, self.num_channels, flip_sin_to_cos=True, downscale_freq_shift=0, max_period=self.max_period
        )


class LayerwiseConditioning(nn.Module):
    """Cosmos' per-block conditioning: the time embedding and/or the self-conditioning estimate, each through its own
    projection per block, added to the residual stream before the block (see the module docstring).

    Args:
        config: the method config (`hidden_size`, `latent_dim`, `num_hidden_layers`).
        options: which signals enter per block (``time_injection``, ``self_conditioning_injection``).
        self_conditioning: whether the model has a self-conditioning input at all.
    """

    def __init__(self, config, options: DenoiserOptions, self_conditioning: bool):
        super().__init__()
        hidden, depth = config.hidden_size, config.num_hidden_layers
        self.time_embedding = self.time_layers = self.self_cond_layers = None
        if options.time_injection == "per_layer":
            self.time_features = SinusoidalTimesteps(hidden, options.time_embedding_max_period)
            self.time_embedding = TimestepEmbedding(hidden, 2 * hidden, out_dim=hidden)
            self.time_layers = nn.ModuleList(nn.Sequential(nn.SiLU(), nn.Linear(hidden, hidden)) for _ in range(depth))
        if self_conditioning and options.self_conditioning_injection == "per_layer":
            self.self_cond_layers = nn.ModuleList(nn.Linear(config.latent_dim, hidden) for _ in range(depth))

    @staticmethod
    def needed(options: DenoiserOptions, self_conditioning: bool) -> bool:
        return options.time_injection == "per_layer" or (
            self_conditioning and options.self_conditioning_injection == "per_layer"
        )

    def embed_time(self, timestep: torch.Tensor, dtype: torch.dtype) -> torch.Tensor | None:
        """`(batch,)` float32 times -> `(batch, hidden_size)` embedding (`None` without per-layer time)."""
        if self.time_embedding is None:
            return None
        return self.time_embedding(self.time_features(timestep).to(dtype))

    def forward(
        self,
        index: int,
        hidden_states: torch.Tensor,
        time_embedding: torch.Tensor | None,
        self_condition: torch.Tensor | None,
    ) -> torch.Tensor:
        """Adds block ``index``'s conditioning to ``hidden_states`` `(batch, prefix + seq_len, hidden_size)`.

        ``time_embedding`` `(batch, hidden_size)` reaches every position; ``self_condition``
        `(batch, seq_len, latent_dim)` (condition + latent tokens) reaches the last ``seq_len`` positions, never the
        control prefix.
        """
        if self.time_layers is not None:
            hidden_states = hidden_states + self.time_layers[index](time_embedding)[:, None]
        if self.self_cond_layers is not None:
            added = self.self_cond_layers[index](self_condition)
            hidden_states = hidden_states + F.pad(added, (0, 0, hidden_states.shape[1] - added.shape[1], 0))
        return hidden_states


__all__ = [
    "LONG_SKIP_MERGES",
    "OUTPUT_HEADS",
    "SELF_CONDITIONING_INJECTIONS",
    "TIME_INJECTIONS",
    "DenoiserOptions",
    "LayerwiseConditioning",
    "SinusoidalTimesteps",
    "check_denoiser_options",
]
