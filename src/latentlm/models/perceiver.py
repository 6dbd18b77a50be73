"""Perceiver layers of the autoencoder codecs (Cosmos' compressor and decompressor, and LDLM's after it).

A `PerceiverStack` updates a set of query vectors that attend, in every block, to themselves and to a fixed context:
`attention(q = queries, k = v = [queries ; context])` (the Perceiver resampler / Cosmos' `LatentAttention`, with
separate key/value projections for the two, and the context read at its own width). Blocks are pre-norm (RMSNorm on
queries and on context) with qk-norm, and one of two feed-forwards: Cosmos' (`blocks.py`: LayerNorm, Linear to
4x, GELU, dropout, Linear; biasless attention) or latentlm's original SwiGLU (RMSNorm first, attention biases).

Locality bias (our addition, not in Cosmos; optional): every element has a position on one axis, latent j at
``j + 0.5`` and token i at ``(i + 0.5) * N / L`` (so latent j sits in the middle of "its" L / N tokens), and each head
adds ``-slope_h * |position_query - position_key|`` to its attention logits (ALiBi), with learnable slopes that start
geometric (4, 2, 1, ... per latent spacing). Without it, learned position embeddings must discover the routing
"slot i reads latent i N / L" from scratch: at the CPU budgets of our examples the codec then stayed at unigram
accuracy for hundreds of steps. A head can unlearn the bias (slope -> 0) and read globally.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn
from transformers.modeling_layers import GradientCheckpointingLayer

from .backbone import SwiGLU


FEED_FORWARDS = ("gelu", "swiglu")


def latent_positions(num_latents: int, device=None) -> torch.Tensor:
    """Positions of N latents on the shared axis: ``j + 0.5``."""
    return torch.arange(num_latents, device=device, dtype=torch.float32) + 0.5


def token_positions(seq_len: int, max_len: int, num_latents: int, device=None) -> torch.Tensor:
    """Positions of the first ``seq_len`` of ``max_len`` tokens on the latents' axis: ``(i + 0.5) * N / L``."""
    return (torch.arange(seq_len, device=device, dtype=torch.float32) + 0.5) * (num_latents / max_len)


class GELUFeedForward(nn.Module):
    """Cosmos' feed-forward (`architecture/blocks.py`): `Linear(dropout(gelu(Linear(LayerNorm(x)))))`.

    `(..., in_size)` -> `(..., out_size)`; the norm is inside, so a block adds it to its residual stream as is.
    """

    def __init__(self, in_size: int, intermediate_size: int, out_size: int | None = None, dropout: float = 0.0):
        super().__init__()
        self.norm = nn.LayerNorm(in_size)
        self.up_proj = nn.Linear(in_size, intermediate_size)
        self.down_proj = nn.Linear(intermediate_size, out_size or in_size)
        self.dropout = nn.Dropout(dropout)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.down_proj(self.dropout(F.gelu(self.up_proj(self.norm(hidden_states)))))


class PerceiverAttention(nn.Module):
    """Multi-head attention of `queries` over `[queries ; context]` with qk-norm, an optional learnable locality bias
    and a key padding mask. The context keeps its own width (`context_size`, default `hidden_size`)."""

    def __init__(self, hidden_size: int, num_heads: int, eps: float, context_size: int | None = None,
                 bias: bool = True, locality_bias: bool = True):  # fmt: skip
        super().__init__()
        self.num_heads, self.head_dim = num_heads, hidden_size // num_heads
        self.q_proj = nn.Linear(hidden_size, hidden_size, bias=bias)
        self.kv_proj = nn.Linear(hidden_size, 2 * hidden_size, bias=bias)
        self.context_kv_proj = nn.Linear(context_size or hidden_size, 2 * hidden_size, bias=bias)
        self.q_norm = nn.RMSNorm(self.head_dim, eps=eps)
        self.k_norm = nn.RMSNorm(self.head_dim, eps=eps)
        self.out_proj = nn.Linear(hidden_size, hidden_size, bias=bias)
        # log of the per-head locality slopes, 4 * 2^-h at initialisation (set again in `reset_locality`).
        self.log_slopes = nn.Parameter(torch.zeros(num_heads)) if locality_bias else None
        self.reset_locality()

    @torch.no_grad()
    def reset_locality(self) -> None:
        if self.log_slopes is not None:
            heads = torch.arange(self.num_heads, dtype=torch.float32)
            self.log_slopes.copy_(math.log(4.0) - heads * math.log(2.0))

    def forward(
        self,
        queries: torch.Tensor,
        context: torch.Tensor,
        query_positions: torch.Tensor,
        context_positions: torch.Tensor,
        context_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """queries `(batch, q_len, hidden)`, context `(batch, c_len, context_size)`, positions `(q_len,)` /
        `(c_len,)` (read by the locality bias only), context_mask `(batch, c_len)` bool (True = a real key)."""
        batch, q_len, _ = queries.shape
        kv = torch.cat([self.kv_proj(queries), self.context_kv_proj(context)], dim=1)
        q = self.q_proj(queries).view(batch, q_len, self.num_heads, self.head_dim)
        k, v = kv.view(batch, kv.shape[1], 2, self.num_heads, self.head_dim).unbind(dim=2)
        q, k, v = self.q_norm(q).transpose(1, 2), self.k_norm(k).transpose(1, 2), v.transpose(1, 2)

        bias = torch.zeros(1, 1, 1, 1, dtype=q.dtype, device=q.device)
        if self.log_slopes is not None:
            key_positions = torch.cat([query_positions, context_positions])
            distance = (query_positions[:, None] - key_positions[None, :]).abs()  # (q_len, k_len)
            bias = (-self.log_slopes.exp()[:, None, None] * distance).to(q.dtype)  # (heads, q_len, k_len)
        bias = bias.expand(batch, self.num_heads, q_len, kv.shape[1])
        if context_mask is not None:
            # The queries are always real keys, so a row whose context is fully masked still attends somewhere.
            query_keys = torch.ones(batch, q_len, dtype=torch.bool, device=queries.device)
            real = torch.cat([query_keys, context_mask.bool()], dim=1)[:, None, None, :]
            bias = bias.masked_fill(~real, float("-inf"))
        elif self.log_slopes is None:
            bias = None
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        return self.out_proj(out.transpose(1, 2).reshape(batch, q_len, -1))


class PerceiverBlock(GradientCheckpointingLayer):
    def __init__(self, hidden_size: int, num_heads: int, intermediate_size: int, eps: float, dropout: float,
                 context_size: int | None = None, feed_forward: str = "swiglu", locality_bias: bool = True):  # fmt: skip
        super().__init__()
        if feed_forward not in FEED_FORWARDS:
            raise ValueError(f"`feed_forward` must be one of {FEED_FORWARDS}, got {feed_forward!r}.")
        self.dropout = dropout
        self.query_norm = nn.RMSNorm(hidden_size, eps=eps)
        self.context_norm = nn.RMSNorm(context_size or hidden_size, eps=eps)
        self.attn = PerceiverAttention(
            hidden_size, num_heads, eps, context_size, bias=feed_forward == "swiglu", locality_bias=locality_bias
        )
        if feed_forward == "swiglu":
            self.mlp_norm = nn.RMSNorm(hidden_size, eps=eps)
            self.mlp = SwiGLU(hidden_size, intermediate_size)
        else:
            self.mlp_norm = None
            self.mlp = GELUFeedForward(hidden_size, intermediate_size, dropout=dropout)

    def forward(self, queries, context, query_positions, context_positions, context_mask=None):
        attended = self.attn(
            self.query_norm(queries), self.context_norm(context), query_positions, context_positions, context_mask
        )
        queries = queries + attended
        if self.mlp_norm is None:
            return queries + self.mlp(queries)
        return queries + self.mlp(self.mlp_norm(queries), self.dropout if self.training else 0.0)


class PerceiverStack(nn.Module):
    """`num_layers` `PerceiverBlock`s over a fixed context, then (if `final_norm`) an RMSNorm of the queries.

    `feed_forward="gelu"` is Cosmos' block (LayerNorm/GELU feed-forward with `dropout`, biasless attention),
    `"swiglu"` latentlm's original one (RMSNorm/SwiGLU, attention biases); `locality_bias` adds the ALiBi-style bias.
    """

    def __init__(self, num_layers: int, hidden_size: int, num_heads: int, intermediate_size: int, eps: float,
                 dropout: float = 0.0, context_size: int | None = None, feed_forward: str = "swiglu",
                 locality_bias: bool = True, final_norm: bool = True):  # fmt: skip
        super().__init__()
        if hidden_size % num_heads:
            raise ValueError(
                f"`hidden_size` ({hidden_size}) must be divisible by `num_attention_heads` ({num_heads})."
            )
        self.blocks = nn.ModuleList(
            PerceiverBlock(
                hidden_size, num_heads, intermediate_size, eps, dropout, context_size, feed_forward, locality_bias
            )
            for _ in range(num_layers)
        )
        self.norm = nn.RMSNorm(hidden_size, eps=eps) if final_norm else None

    def forward(
        self,
        queries: torch.Tensor,
        context: torch.Tensor,
        query_positions: torch.Tensor,
        context_positions: torch.Tensor,
        context_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """queries `(batch, q_len, hidden)` attend to context `(batch, c_len, context_size)` ->
        `(batch, q_len, hidden)`; positions on the shared axis (`latent_positions`, `token_positions`)."""
        for block in self.blocks:
            queries = block(queries, context, query_positions, context_positions, context_mask)
        return queries if self.norm is None else self.norm(queries)
