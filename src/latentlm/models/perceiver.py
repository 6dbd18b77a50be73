"""Perceiver layers of the autoencoder codecs (Cosmos' compressor and decompressor, and LDLM's after it).

A `PerceiverStack` updates a set of query vectors that attend, in every block, to themselves and to a fixed context:
`attention(q = queries, k = v = [queries ; context])` (the Perceiver resampler / Cosmos' `LatentAttention`). The
compressor runs it with N learned latent queries over the L token activations; the decompressor with L token slots
over the N latents. Blocks are pre-norm (RMSNorm on queries and on context), qk-norm, SwiGLU, as in the backbone.
"""

import torch
import torch.nn.functional as F
from torch import nn
from transformers.modeling_layers import GradientCheckpointingLayer

from .backbone import SwiGLU


class PerceiverAttention(nn.Module):
    """Multi-head attention of `queries` over `[queries ; context]` with qk-norm and a key padding mask."""

    def __init__(self, hidden_size: int, num_heads: int, eps: float):
        super().__init__()
        self.num_heads, self.head_dim = num_heads, hidden_size // num_heads
        self.q_proj = nn.Linear(hidden_size, hidden_size)
        self.kv_proj = nn.Linear(hidden_size, 2 * hidden_size)
        self.q_norm = nn.RMSNorm(self.head_dim, eps=eps)
        self.k_norm = nn.RMSNorm(self.head_dim, eps=eps)
        self.out_proj = nn.Linear(hidden_size, hidden_size)

    def forward(self, queries: torch.Tensor, context: torch.Tensor, context_mask: torch.Tensor | None) -> torch.Tensor:
        """queries `(batch, q_len, hidden)`, context `(batch, c_len, hidden)`, context_mask `(batch, c_len)` bool."""
        batch, q_len, _ = queries.shape
        keys_in = torch.cat([queries, context], dim=1)
        q = self.q_proj(queries).view(batch, q_len, self.num_heads, self.head_dim)
        k, v = self.kv_proj(keys_in).view(batch, keys_in.shape[1], 2, self.num_heads, self.head_dim).unbind(dim=2)
        q, k, v = self.q_norm(q).transpose(1, 2), self.k_norm(k).transpose(1, 2), v.transpose(1, 2)
        mask = None
        if context_mask is not None:
            # The queries are always real keys, so a row whose context is fully masked still attends somewhere.
            query_keys = torch.ones(batch, q_len, dtype=torch.bool, device=queries.device)
            mask = torch.cat([query_keys, context_mask.bool()], dim=1)[:, None, None, :]
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.out_proj(out.transpose(1, 2).reshape(batch, q_len, -1))


class PerceiverBlock(GradientCheckpointingLayer):
    def __init__(self, hidden_size: int, num_heads: int, intermediate_size: int, eps: float, dropout: float):
        super().__init__()
        self.dropout = dropout
        self.query_norm = nn.RMSNorm(hidden_size, eps=eps)
        self.context_norm = nn.RMSNorm(hidden_size, eps=eps)
        self.attn = PerceiverAttention(hidden_size, num_heads, eps)
        self.mlp_norm = nn.RMSNorm(hidden_size, eps=eps)
        self.mlp = SwiGLU(hidden_size, intermediate_size)

    def forward(self, queries: torch.Tensor, context: torch.Tensor, context_mask: torch.Tensor | None = None):
        queries = queries + self.attn(self.query_norm(queries), self.context_norm(context), context_mask)
        return queries + self.mlp(self.mlp_norm(queries), self.dropout if self.training else 0.0)


class PerceiverStack(nn.Module):
    """`num_layers` `PerceiverBlock`s over a fixed context, then an RMSNorm of the queries."""

    def __init__(self, num_layers: int, hidden_size: int, num_heads: int, intermediate_size: int, eps: float,
                 dropout: float = 0.0):  # fmt: skip
        super().__init__()
        if hidden_size % num_heads:
            raise ValueError(
                f"`hidden_size` ({hidden_size}) must be divisible by `num_attention_heads` ({num_heads})."
            )
        self.blocks = nn.ModuleList(
            PerceiverBlock(hidden_size, num_heads, intermediate_size, eps, dropout) for _ in range(num_layers)
        )
        self.norm = nn.RMSNorm(hidden_size, eps=eps)

    def forward(self, queries: torch.Tensor, context: torch.Tensor, context_mask: torch.Tensor | None = None):
        """queries `(batch, q_len, hidden)` attend to context `(batch, c_len, hidden)` -> `(batch, q_len, hidden)`."""
        for block in self.blocks:
            queries = block(queries, context, context_mask)
        return self.norm(queries)
