"""The one bidirectional denoiser transformer that every latentlm method configures.

Layout of the sequence the blocks see (ELF's in-context conditioning, paper §3.4):

    [ time tokens | guidance tokens | mode tokens | condition tokens | latent tokens ]
      `-------------- control prefix -----------'  `-- RoPE -P..-1 --' `-- 0..L-1 --'

  (with ``condition_position_offset = M`` the condition's real tokens sit at ``-M .. -M + P - 1`` instead, see
  `RotaryEmbedding`)

* control tokens are learned vectors plus an MLP embedding of a scalar (the timestep, the guidance scale) or a 0/1
  gate (the mode: 0 = denoise, 1 = decode); they carry no rotary position;
* condition tokens are clean latents of a prompt or source (optional, ELF), never noised, projected exactly like the
  latents: with self-conditioning their input is ``concat([x_c, x_c])`` (the condition is its own clean estimate), as
  in ELF's code; left-padded, so the last condition token sits next to the first latent token;
* latent tokens are the noisy latents, optionally concatenated with a self-conditioning estimate.

With ``cross_attention_dim`` set, every block also cross-attends to ``encoder_hidden_states`` (Cosmos' condition
encoder); a learned null token is always among the keys, so an empty or dropped condition is the unconditional branch.

Blocks are pre-norm: RMSNorm, multi-head self-attention with qk-norm and RoPE through
`torch.nn.functional.scaled_dot_product_attention` with a real key padding mask, RMSNorm, SwiGLU. Optional long
skips join the first half of the blocks to the second as in a U-Net (Cosmos). The output head is RMSNorm plus a
zero-initialised linear map back to the latent width, so an untrained denoiser predicts zeros.

Cosmos' published denoiser differs in five options (time and self-conditioning added to the stream before every block,
the time sinusoid's max period, additive skips, a plain RMSNorm output); `models/denoiser_conditioning.py` holds them
and `DenoiserOptions` their defaults, which keep the forms above for every config without the fields.

The backbone reads its sizes from the method's config (see `DenoiserConfigMixin` for the field names); method files
configure it and never copy it.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from diffusers.models.embeddings import TimestepEmbedding
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.models.llama.modeling_llama import apply_rotary_pos_emb
from transformers.utils import ModelOutput

from .denoiser_conditioning import DenoiserOptions, LayerwiseConditioning, SinusoidalTimesteps
from .pretrained_mixin import LatentLMModelMixin
from .warm_start import AbsolutePositions, BertStyleBlock, skip_warm_start, warm_start_denoisers


@dataclass
class DenoiserOutput(ModelOutput):
    """Output of `DenoiserTransformer`.

    Args:
        sample (`torch.FloatTensor` of shape `(batch, seq_len, latent_dim)`):
            The prediction in latent space (x0 for every method so far).
        last_hidden_state (`torch.FloatTensor` of shape `(batch, seq_len, hidden_size)`):
            The latent tokens' hidden states after the last block, before the output norm (ELF's decode head reads
            them).
        hidden_states (`tuple(torch.FloatTensor)`, *optional*, with `output_hidden_states=True`):
            The whole sequence (control prefix included) after the input projection and after each block, each
            `(batch, num_control + cond_len + seq_len, hidden_size)`.
    """

    sample: torch.FloatTensor | None = None
    last_hidden_state: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None


class DenoiserConfigMixin:
    """Documents the config fields the backbone reads. Method configs define them as dataclass fields.

    latent_dim: width of the latents going in and out.
    hidden_size, num_hidden_layers, num_attention_heads, intermediate_size: transformer sizes.
    bottleneck_dim: if set, latents enter through ``latent_dim -> bottleneck_dim -> hidden_size`` (ELF: 128).
    max_position_embeddings: longest condition + latent sequence.
    condition_position_offset: ``None`` (condition tokens right before the latents) or M (the condition's first real
        token at position -M, see `RotaryEmbedding`). Optional: configs without the field have ``None``.
    rope_theta, rms_norm_eps, attention_dropout, hidden_dropout: as usual. Dropout acts only in the middle half of
        the blocks, as in ELF.
    num_time_tokens, num_guidance_tokens, num_mode_tokens: control prefix lengths (0 disables guidance / mode).
    self_conditioning: the model reads a previous x0 estimate; by default its input is ``concat([latents,
        self_condition])`` projected back to ``latent_dim``.
    use_long_skips: U-Net style skips between the first and second half of the blocks.
    time_injection, time_embedding_max_period, self_conditioning_injection, long_skip_merge, output_head: optional
        (see `DenoiserOptions`); a config without them gets the forms described in the module docstring.
    cross_attention_dim: width of `encoder_hidden_states` read by cross-attention in every block (`None`: no
        cross-attention). Optional: configs without the field have none.
    block_type: ``"default"`` (the blocks above) or ``"bert"`` (post-norm BERT layers with absolute positions, reading
        ``hidden_act`` and ``layer_norm_eps``; see `latentlm.models.warm_start`). Optional: configs without it are
        ``"default"``.
    init_denoiser_from: an `AutoModel` encoder whose layers are copied into the ``"bert"`` blocks when the model is
        built (not when it is loaded). Optional.
    """


class RotaryEmbedding(nn.Module):
    """Rotary position embedding for positions ``0..max_position_embeddings-1`` (rotate-half convention)."""

    def __init__(self, head_dim: int, max_position_embeddings: int, theta: float):
        super().__init__()
        self.head_dim, self.max_position_embeddings, self.theta = head_dim, max_position_embeddings, theta
        cos, sin = self.compute_cos_sin()
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)

    def compute_cos_sin(self) -> tuple[torch.Tensor, torch.Tensor]:
        """`(max_position_embeddings, head_dim)` tables; recomputed after loading (they are not saved)."""
        inv_freq = 1.0 / (self.theta ** (torch.arange(0, self.head_dim, 2, dtype=torch.float32) / self.head_dim))
        angles = torch.outer(torch.arange(self.max_position_embeddings, dtype=torch.float32), inv_freq)
        angles = torch.cat([angles, angles], dim=-1)
        return angles.cos(), angles.sin()

    def forward(
        self,
        num_condition: int,
        seq_len: int,
        dtype: torch.dtype,
        condition_mask: torch.Tensor | None = None,
        condition_offset: int | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Tables for the condition and latent tokens; the latents start at position 0 whatever the condition's
        length (the control prefix is not rotated, so absolute positions matter between it and the latents).

        By default the condition tokens sit at negative positions right before the latents (`-num_condition..-1`;
        one `(num_condition + seq_len, head_dim)` table for the batch). With `condition_offset` M, the j-th real
        token of each row's condition (`condition_mask`, `(batch, num_condition)`) sits at `j - M`: source token j
        and target token j are then M positions apart whatever the source's length, so a copy is a lookup at one
        fixed distance; the tables are per row, `(batch, num_condition + seq_len, head_dim)`.
        """
        if condition_offset is not None and num_condition:
            return self._offset_condition_tables(condition_mask, condition_offset, seq_len, dtype)
        if num_condition + seq_len > self.cos.shape[0]:
            raise ValueError(
                f"The sequence has {num_condition + seq_len} positions but the model supports at most "
                f"{self.cos.shape[0]} (`max_position_embeddings`)."
            )
        # cos(-a) = cos(a), sin(-a) = -sin(a): negative positions come from the table, mirrored.
        cos = torch.cat([self.cos[1 : num_condition + 1].flip(0), self.cos[:seq_len]])
        sin = torch.cat([-self.sin[1 : num_condition + 1].flip(0), self.sin[:seq_len]])
        return cos.to(dtype), sin.to(dtype)

    def _offset_condition_tables(self, condition_mask, offset: int, seq_len: int, dtype) -> tuple:
        lengths = condition_mask.sum(dim=-1)
        if int(lengths.max()) > offset:
            raise ValueError(
                f"A condition has {int(lengths.max())} tokens but `condition_position_offset` is {offset}: the "
                f"condition would overlap the latents' positions; cut the condition or raise the offset."
            )
        if seq_len > self.cos.shape[0]:  # the config keeps the offset itself below `max_position_embeddings`
            raise ValueError(
                f"The latents have {seq_len} positions but the model supports at most {self.cos.shape[0]} "
                f"(`max_position_embeddings`)."
            )
        # Padding (left of the real tokens) gets the first real token's position; it is never attended to.
        rank = (condition_mask.long().cumsum(dim=-1) - 1).clamp(min=0)
        latents = torch.arange(seq_len, device=rank.device).expand(rank.shape[0], seq_len)
        positions = torch.cat([rank - offset, latents], dim=1)
        table = positions.abs()
        cos, sin = self.cos[table], self.sin[table] * positions.sign()[..., None]
        return cos.to(dtype), sin.to(dtype)


class SelfAttention(nn.Module):
    """Bidirectional multi-head attention with qk-norm; RoPE on the last ``rotary_len`` positions only."""

    def __init__(self, config):
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.qkv = nn.Linear(config.hidden_size, 3 * config.hidden_size, bias=True)
        self.q_norm = nn.RMSNorm(self.head_dim, eps=config.rms_norm_eps)
        self.k_norm = nn.RMSNorm(self.head_dim, eps=config.rms_norm_eps)
        self.out_proj = nn.Linear(config.hidden_size, config.hidden_size, bias=True)

    def forward(
        self,
        hidden_states: torch.Tensor,
        rotary: tuple[torch.Tensor, torch.Tensor],
        attention_mask: torch.Tensor | None,
        dropout: float,
    ) -> torch.Tensor:
        batch, seq_len, _ = hidden_states.shape
        q, k, v = self.qkv(hidden_states).view(batch, seq_len, 3, self.num_heads, self.head_dim).unbind(dim=2)
        q, k, v = self.q_norm(q).transpose(1, 2), self.k_norm(k).transpose(1, 2), v.transpose(1, 2)

        # The control prefix carries no position: rotate only the condition + latent tokens. Tables are shared by
        # the batch `(positions, head_dim)` or per row `(batch, positions, head_dim)`.
        cos, sin = rotary
        num_prefix = seq_len - cos.shape[-2]
        if cos.dim() == 2:
            cos, sin = cos[None], sin[None]
        q_rot, k_rot = apply_rotary_pos_emb(q[:, :, num_prefix:], k[:, :, num_prefix:], cos, sin)
        q = torch.cat([q[:, :, :num_prefix], q_rot], dim=2)
        k = torch.cat([k[:, :, :num_prefix], k_rot], dim=2)

        # attention_mask: (batch, seq_len) bool, True = a real key. Padding keys are never attended to.
        mask = None if attention_mask is None else attention_mask[:, None, None, :]
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout)
        return self.out_proj(out.transpose(1, 2).reshape(batch, seq_len, -1))


class CrossAttention(nn.Module):
    """Multi-head attention from the sequence to a condition's states, with qk-norm and no positions.

    A learned null key/value pair is always attendable: rows whose condition is empty or dropped attend to it alone.
    """

    def __init__(self, config):
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.q_proj = nn.Linear(config.hidden_size, config.hidden_size, bias=True)
        self.kv_proj = nn.Linear(config.cross_attention_dim, 2 * config.hidden_size, bias=True)
        self.null_kv = nn.Parameter(torch.zeros(1, 1, 2 * config.hidden_size))
        self.q_norm = nn.RMSNorm(self.head_dim, eps=config.rms_norm_eps)
        self.k_norm = nn.RMSNorm(self.head_dim, eps=config.rms_norm_eps)
        self.out_proj = nn.Linear(config.hidden_size, config.hidden_size, bias=True)

    def forward(self, hidden_states, encoder_hidden_states, encoder_attention_mask) -> torch.Tensor:
        batch, seq_len, _ = hidden_states.shape
        kv = torch.cat([self.null_kv.expand(batch, -1, -1), self.kv_proj(encoder_hidden_states)], dim=1)
        mask = F.pad(encoder_attention_mask, (1, 0), value=True)[:, None, None, :]
        k, v = kv.view(batch, kv.shape[1], 2, self.num_heads, self.head_dim).unbind(dim=2)
        q = self.q_proj(hidden_states).view(batch, seq_len, self.num_heads, self.head_dim)
        q, k, v = self.q_norm(q).transpose(1, 2), self.k_norm(k).transpose(1, 2), v.transpose(1, 2)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.out_proj(out.transpose(1, 2).reshape(batch, seq_len, -1))


class SwiGLU(nn.Module):
    def __init__(self, hidden_size: int, intermediate_size: int):
        super().__init__()
        self.gate_up_proj = nn.Linear(hidden_size, 2 * intermediate_size, bias=True)
        self.down_proj = nn.Linear(intermediate_size, hidden_size, bias=True)

    def forward(self, hidden_states: torch.Tensor, dropout: float) -> torch.Tensor:
        gate, up = self.gate_up_proj(hidden_states).chunk(2, dim=-1)
        return self.down_proj(F.dropout(F.silu(gate) * up, p=dropout, training=dropout > 0))


class DenoiserBlock(GradientCheckpointingLayer):
    def __init__(self, config, dropout: float):
        super().__init__()
        self.dropout = dropout
        self.attn_norm = nn.RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.attn = SelfAttention(config)
        if getattr(config, "cross_attention_dim", None):
            self.cross_attn_norm = nn.RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
            self.cross_attn = CrossAttention(config)
        else:
            self.cross_attn = None
        self.mlp_norm = nn.RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.mlp = SwiGLU(config.hidden_size, config.intermediate_size)

    def forward(
        self,
        hidden_states: torch.Tensor,
        rotary: tuple[torch.Tensor, torch.Tensor],
        attention_mask: torch.Tensor | None = None,
        encoder_hidden_states: torch.Tensor | None = None,
        encoder_attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        dropout = self.dropout if self.training else 0.0
        hidden_states = hidden_states + self.attn(self.attn_norm(hidden_states), rotary, attention_mask, dropout)
        if self.cross_attn is not None:
            hidden_states = hidden_states + self.cross_attn(
                self.cross_attn_norm(hidden_states), encoder_hidden_states, encoder_attention_mask
            )
        return hidden_states + self.mlp(self.mlp_norm(hidden_states), dropout)


class ScalarTokens(nn.Module):
    """``num_tokens`` learned control tokens shifted by an MLP embedding of one scalar per example."""

    def __init__(self, num_tokens: int, hidden_size: int, frequency_dim: int = 256, max_period: float = 10000.0):
        super().__init__()
        self.tokens = nn.Parameter(torch.zeros(1, num_tokens, hidden_size))
        # Sinusoidal features of the raw scalar (t in [0, 1], a guidance scale in [0.5, 5]) then a 2-layer MLP.
        self.features = SinusoidalTimesteps(frequency_dim, max_period)
        self.embedding = TimestepEmbedding(frequency_dim, hidden_size)

    def forward(self, scalar: torch.Tensor) -> torch.Tensor:
        """scalar: (batch,) -> (batch, num_tokens, hidden_size)."""
        emb = self.embedding(self.features(scalar).to(self.tokens.dtype))
        return self.tokens + emb[:, None, :]


class DenoiserTransformer(nn.Module):
    """The shared denoiser. See the module docstring for the sequence layout and `DenoiserConfigMixin` for config."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        hidden, latent_dim = config.hidden_size, config.latent_dim
        if config.hidden_size % config.num_attention_heads:
            raise ValueError(
                f"`hidden_size` ({hidden}) must be divisible by `num_attention_heads` ({config.num_attention_heads})."
            )

        self.options = options = DenoiserOptions.from_config(config)
        concat_self_condition = config.self_conditioning and options.self_conditioning_injection == "input"
        self.self_cond_proj = nn.Linear(2 * latent_dim, latent_dim) if concat_self_condition else None
        if config.bottleneck_dim:
            self.input_proj = nn.Sequential(
                nn.Linear(latent_dim, config.bottleneck_dim, bias=False), nn.Linear(config.bottleneck_dim, hidden)
            )
        else:
            self.input_proj = nn.Linear(latent_dim, hidden)

        self.time_tokens = (
            ScalarTokens(config.num_time_tokens, hidden, max_period=options.time_embedding_max_period)
            if config.num_time_tokens
            else None
        )
        self.guidance_tokens = ScalarTokens(config.num_guidance_tokens, hidden) if config.num_guidance_tokens else None
        self.mode_tokens = (
            nn.Parameter(torch.zeros(1, config.num_mode_tokens, hidden)) if config.num_mode_tokens else None
        )

        depth = config.num_hidden_layers
        bert = getattr(config, "block_type", "default") == "bert"
        # BERT blocks take absolute positions once, before the first block (`latentlm.models.warm_start`).
        self.positions = AbsolutePositions(config) if bert else None
        self.rotary = (
            None
            if bert
            else RotaryEmbedding(
                hidden // config.num_attention_heads, config.max_position_embeddings, config.rope_theta
            )
        )
        block_class = BertStyleBlock if bert else DenoiserBlock
        self.blocks = nn.ModuleList(
            block_class(config, config.hidden_dropout if depth // 4 <= i < 3 * depth // 4 else 0.0)
            for i in range(depth)
        )
        self.layer_conditioning = (
            LayerwiseConditioning(config, options, config.self_conditioning)
            if LayerwiseConditioning.needed(options, config.self_conditioning)
            else None
        )
        concat_skips = config.use_long_skips and options.long_skip_merge == "concat_linear"
        self.skip_projs = (
            nn.ModuleList(nn.Linear(2 * hidden, hidden) for _ in range(depth // 2)) if concat_skips else None
        )
        if options.output_head == "norm_linear":
            self.norm_out = nn.RMSNorm(hidden, eps=config.rms_norm_eps)
            self.proj_out = nn.Linear(hidden, latent_dim)
            self.proj_out._zero_init = True  # read by `DenoiserPreTrainedModel._init_weights`
        else:  # the prediction is an RMSNorm output of width latent_dim (a plain Linear first only if widths differ)
            self.proj_out = nn.Linear(hidden, latent_dim) if hidden != latent_dim else None
            self.norm_out = nn.RMSNorm(latent_dim, eps=config.rms_norm_eps)

    def forward(
        self,
        hidden_states: torch.Tensor,
        timestep: torch.Tensor | float,
        attention_mask: torch.Tensor | None = None,
        condition_hidden_states: torch.Tensor | None = None,
        condition_attention_mask: torch.Tensor | None = None,
        encoder_hidden_states: torch.Tensor | None = None,
        encoder_attention_mask: torch.Tensor | None = None,
        self_condition: torch.Tensor | None = None,
        guidance_scale: torch.Tensor | float | None = None,
        mode: torch.Tensor | float | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> DenoiserOutput | tuple:
        """Predicts clean latents.

        Args:
            hidden_states: `(batch, seq_len, latent_dim)` noisy latents.
            timestep: `(batch,)` or a float; t in [0, 1] with t = 1 pure noise.
            attention_mask: `(batch, seq_len)`, 1 for real tokens, 0 for padding (never attended to).
            condition_hidden_states: `(batch, cond_len, latent_dim)` clean condition latents placed before the
                latents, never noised (ELF), left-padded.
            condition_attention_mask: `(batch, cond_len)` mask of the condition (False on padding).
            encoder_hidden_states: `(batch, context_len, cross_attention_dim)` states read by cross-attention
                (Cosmos' condition encoder). Only with `config.cross_attention_dim`; `None` = no condition.
            encoder_attention_mask: `(batch, context_len)` mask of `encoder_hidden_states`.
            self_condition: `(batch, seq_len, latent_dim)` previous x0 estimate; zeros when `None`. Only with
                `config.self_conditioning`.
            guidance_scale: `(batch,)` or a float; the scale the model is conditioned on (ELF's SC-CFG omega).
                Required when the config has guidance tokens.
            mode: `(batch,)` 0/1 or a float; gates the mode tokens (1 = decode). `None` means 0.
            output_hidden_states: also return every block's hidden states (default: `config.output_hidden_states`).
            return_dict: return a `DenoiserOutput` rather than a tuple (default: `config.return_dict`).

        Returns:
            `DenoiserOutput` with `sample` `(batch, seq_len, latent_dim)` and `last_hidden_state`
            `(batch, seq_len, hidden_size)` (and `hidden_states`), or the tuple of its non-`None` fields.
        """
        if output_hidden_states is None:
            output_hidden_states = getattr(self.config, "output_hidden_states", False)
        if return_dict is None:
            return_dict = getattr(self.config, "return_dict", True)
        batch, seq_len, _ = hidden_states.shape
        # Latents and noise are often float32 while the weights are float16 / bfloat16 (a model loaded or cast with
        # `dtype=`): compute in the weights' dtype, answer in the input's.
        out_dtype, device = hidden_states.dtype, hidden_states.device
        dtype = self.norm_out.weight.dtype
        hidden_states = hidden_states.to(dtype)

        # 1. Condition and latent tokens, projected alike (a clean condition is its own self-conditioning estimate).
        if not self.config.self_conditioning and self_condition is not None:
            raise ValueError("`self_condition` was given but the model was built with `self_conditioning=False`.")
        if self.config.self_conditioning and self_condition is None:
            self_condition = torch.zeros_like(hidden_states)
        mask = _ones_if_none(attention_mask, batch, seq_len, device)
        cond_len, condition_mask = 0, None
        if condition_hidden_states is not None:
            condition_hidden_states = condition_hidden_states.to(dtype)
            cond_len = condition_hidden_states.shape[1]
            hidden_states = torch.cat([condition_hidden_states, hidden_states], dim=1)
            if self_condition is not None:
                self_condition = torch.cat([condition_hidden_states, self_condition.to(dtype)], dim=1)
            condition_mask = _ones_if_none(condition_attention_mask, batch, cond_len, device)
            mask = torch.cat([condition_mask, mask], dim=1)
        if self.self_cond_proj is not None:
            hidden_states = self.self_cond_proj(torch.cat([hidden_states, self_condition.to(dtype)], dim=-1))
        tokens = self.input_proj(hidden_states)
        cross_attention = self._cross_attention_inputs(encoder_hidden_states, encoder_attention_mask, batch, device)

        # 2. Control prefix: time, guidance scale, mode (possibly empty: Cosmos' time enters every block instead).
        timestep = _per_example(timestep, batch, device)
        control = [] if self.time_tokens is None else [self.time_tokens(timestep)]
        if self.guidance_tokens is not None:
            if guidance_scale is None:
                raise ValueError("`guidance_scale` is required: this model is conditioned on its guidance scale.")
            control.append(self.guidance_tokens(_per_example(guidance_scale, batch, device)))
        if self.mode_tokens is not None:
            gate = _per_example(0.0 if mode is None else mode, batch, device).to(self.mode_tokens.dtype)
            control.append(self.mode_tokens * gate[:, None, None])
        num_control = sum(part.shape[1] for part in control)
        hidden = torch.cat([*(part.to(tokens.dtype) for part in control), tokens], dim=1)
        key_mask = torch.cat([torch.ones(batch, num_control, dtype=torch.bool, device=device), mask], dim=1)
        if self.positions is not None:
            hidden, rotary = self.positions(hidden, num_control), None
        else:
            offset = getattr(self.config, "condition_position_offset", None)
            rotary = self.rotary(cond_len, seq_len, hidden.dtype, condition_mask, offset)
        if self.layer_conditioning is not None:
            sc_states = None if self_condition is None else self_condition.to(dtype)
            per_layer = (self.layer_conditioning.embed_time(timestep, dtype), sc_states)

        # 3. Blocks, with optional U-Net long skips and per-block conditioning (see `denoiser_conditioning`).
        skips = []
        all_hidden = [hidden] if output_hidden_states else None
        depth, half = len(self.blocks), len(self.blocks) // 2
        long_skips, additive = self.config.use_long_skips, self.options.long_skip_merge == "add"
        for i, block in enumerate(self.blocks):
            if long_skips and i >= depth - half:
                hidden = self._merge_skip(hidden, skips.pop(), i - (depth - half))
            if long_skips and additive and i < half:
                skips.append(hidden)  # Cosmos saves block inputs
            if self.layer_conditioning is not None:
                hidden = self.layer_conditioning(i, hidden, *per_layer)
            hidden = block(hidden, rotary, key_mask, *cross_attention)
            if long_skips and not additive and i < half:
                skips.append(hidden)
            if output_hidden_states:
                all_hidden.append(hidden)

        last_hidden = hidden[:, -seq_len:]
        sample = self._output_head(last_hidden).to(out_dtype)
        output = DenoiserOutput(
            sample=sample, last_hidden_state=last_hidden, hidden_states=tuple(all_hidden) if all_hidden else None
        )
        return output if return_dict else output.to_tuple()

    def _merge_skip(self, hidden: torch.Tensor, skip: torch.Tensor, index: int) -> torch.Tensor:
        if self.skip_projs is None:
            return hidden + skip
        return self.skip_projs[index](torch.cat([hidden, skip], dim=-1))

    def _output_head(self, last_hidden: torch.Tensor) -> torch.Tensor:
        """`(batch, seq_len, hidden_size)` -> the prediction `(batch, seq_len, latent_dim)`."""
        if self.options.output_head == "norm_linear":
            return self.proj_out(self.norm_out(last_hidden))
        return self.norm_out(last_hidden if self.proj_out is None else self.proj_out(last_hidden))

    def _cross_attention_inputs(self, encoder_hidden_states, encoder_attention_mask, batch, device) -> tuple:
        """`(states, mask)` for the blocks' cross-attention: an empty condition when none is given."""
        width = getattr(self.config, "cross_attention_dim", None)
        if not width:
            if encoder_hidden_states is not None:
                raise ValueError(
                    "`encoder_hidden_states` was given but the model has no cross-attention (`cross_attention_dim`)."
                )
            return (None, None)
        if encoder_hidden_states is None:
            dtype = self.norm_out.weight.dtype
            return (
                torch.zeros(batch, 0, width, device=device, dtype=dtype),
                torch.zeros(batch, 0, dtype=torch.bool, device=device),
            )
        mask = _ones_if_none(encoder_attention_mask, batch, encoder_hidden_states.shape[1], device)
        return (encoder_hidden_states.to(self.norm_out.weight.dtype), mask)


def _ones_if_none(mask: torch.Tensor | None, batch: int, length: int, device: torch.device) -> torch.Tensor:
    if mask is None:
        return torch.ones(batch, length, dtype=torch.bool, device=device)
    return mask.to(device=device, dtype=torch.bool)


def _per_example(value: torch.Tensor | float, batch: int, device: torch.device) -> torch.Tensor:
    """A float or a `(batch,)` / `()` tensor -> float32 `(batch,)`."""
    value = torch.as_tensor(value, dtype=torch.float32, device=device)
    return value.expand(batch) if value.ndim == 0 else value.float()


class DenoiserPreTrainedModel(LatentLMModelMixin, PreTrainedModel):
    """Shared weight init for models built on `DenoiserTransformer`; method classes subclass it with their config."""

    base_model_prefix = "model"
    supports_gradient_checkpointing = True
    _no_split_modules = ["DenoiserBlock", "BertStyleBlock"]
    _supports_sdpa = True

    def post_init(self):
        """Initialises the weights, then copies ``config.init_denoiser_from`` into the denoiser when it is set (a
        model being built for training; `from_pretrained` skips the copy, the checkpoint holds every weight)."""
        super().post_init()
        # FSDP's wrap unit: the block classes this model is built of (Accelerate refuses a listed class it cannot find).
        present = {type(module).__name__ for module in self.modules()}
        self._no_split_modules = {name for name in self._no_split_modules if name in present}
        warm_start_denoisers(self)

    @classmethod
    def from_pretrained(cls, *args, **kwargs):
        with skip_warm_start():
            return super().from_pretrained(*args, **kwargs)

    @torch.no_grad()
    def _init_weights(self, module):
        super()._init_weights(module)
        std = self.config.initializer_range
        # Handled on the Linear itself: transformers skips modules without direct parameters (the transformer
        # when it has no mode tokens), so a zeroing done from the parent would not always run.
        if isinstance(module, nn.Linear) and getattr(module, "_zero_init", False):
            init.zeros_(module.weight)
            init.zeros_(module.bias)
        elif isinstance(module, RotaryEmbedding):
            cos, sin = module.compute_cos_sin()
            init.copy_(module.cos, cos)
            init.copy_(module.sin, sin)
        elif isinstance(module, ScalarTokens):
            init.normal_(module.tokens, mean=0.0, std=std)
        elif isinstance(module, CrossAttention):
            init.normal_(module.null_kv, mean=0.0, std=std)
        elif isinstance(module, DenoiserTransformer) and module.mode_tokens is not None:
            init.normal_(module.mode_tokens, mean=0.0, std=std)


def compile_denoiser(model: nn.Module, **compile_kwargs) -> nn.Module:
    """Compiles every `DenoiserTransformer` inside ``model`` in place (`nn.Module.compile`, so parameter names and
    saving are unchanged) and returns ``model``.

    The sampling loop calls the model's ``denoise`` / ``decode_latents``, never its ``forward``, so compiling the
    top-level model would not touch sampling; the denoiser network is where the loop spends its time.
    """
    found = [module for module in model.modules() if isinstance(module, DenoiserTransformer)]
    if not found:
        raise ValueError(f"`model` ({type(model).__name__}) holds no DenoiserTransformer to compile.")
    for module in found:
        module.compile(**compile_kwargs)
    return model
