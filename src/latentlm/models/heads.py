"""Output heads shared by the methods."""

import torch
import torch.nn.functional as F
from torch import nn


class FactoredLMHead(nn.Module):
    """Factored unembedding `logits = W_u gelu(W_p h + b_p) + b_u` (ELF's decoder head).

    With a 30k vocabulary the unembedding is the costliest matmul of a small model; the `head_dim` bottleneck
    (128 in our tiny configs) keeps it cheap.
    """

    def __init__(self, hidden_size: int, head_dim: int, vocab_size: int):
        super().__init__()
        self.dense = nn.Linear(hidden_size, head_dim)
        self.unembed = nn.Linear(head_dim, vocab_size)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """`(..., hidden_size)` -> logits `(..., vocab_size)`."""
        return self.unembed(F.gelu(self.dense(hidden_states), approximate="tanh"))
