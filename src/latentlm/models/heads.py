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


# Unit roundoff of bfloat16 (8 significant bits). A bfloat16 logit differs from the exact dot product x . w by at most
# (3u + u^2) sum_i |x_i w_i| from rounding x, w and the result, plus the float32 accumulation's n * 2^-24 share; we
# bound sum_i |x_i w_i| <= |x| |w| (Cauchy-Schwarz) and add a margin for the float32 rescoring.
_BF16_UNIT_ROUNDOFF = 2.0**-8
# Rows per bfloat16 pass: 512 x 30k x 2 bytes = 31 MB of logits, under glibc's 32 MB mmap threshold, so the block is
# reused from one chunk to the next instead of being mapped (and page-faulted) anew.
_ROWS_PER_CHUNK = 512


def greedy_token_ids(features: torch.Tensor, head: nn.Module, shortlist: int = 8) -> torch.LongTensor:
    """`head(features).argmax(-1)`, the greedy tokens of an output head, without materialising float32 logits.

    The unembedding matmul (a 30k vocabulary) dominates decoding, and on hardware with native bfloat16 matmuls
    (CPUs with AVX512-BF16 or AMX, CUDA GPUs) it runs ~2.5x faster in bfloat16. So a bfloat16 matmul shortlists
    `shortlist` tokens per row and float32 rescoring picks among them. The answer stays float32's: a row keeps its
    shortlist winner only when a rounding bound proves that no token off the shortlist can reach it; the other rows
    (low-confidence ones: random weights, near-ties) are rescored over the whole vocabulary in float32. Results equal
    `head(features).argmax(-1)` up to ties within float32 rounding.

    Args:
        features: `(..., hidden_size)` input of `head`.
        head: an `nn.Linear` or a `FactoredLMHead` (its `unembed` gets the shortlist; the projection runs as is).
            Anything else (e.g. a PEFT-wrapped layer) takes the plain path.
        shortlist: candidates per row kept from the bfloat16 pass.

    Returns:
        `(...)` token ids.
    """
    if isinstance(head, FactoredLMHead):
        features, head = F.gelu(head.dense(features), approximate="tanh"), head.unembed
    if type(head) is not nn.Linear or not _shortlist_pays_off(features, head, shortlist):
        return head(features).argmax(dim=-1)
    flat = features.reshape(-1, features.shape[-1])
    weight_bf16, max_weight_norm = _bfloat16_copy(head), head.weight.norm(dim=-1).max()
    ids = [_shortlist_argmax(rows, head, weight_bf16, max_weight_norm, shortlist) for rows in flat.split(_ROWS_PER_CHUNK)]
    return torch.cat(ids).view(features.shape[:-1])


def _shortlist_argmax(rows, head: nn.Linear, weight_bf16, max_weight_norm, shortlist: int) -> torch.LongTensor:
    """`greedy_token_ids` of `(n, hidden_size)` float32 rows; `weight_bf16` is the head's weight in bfloat16,
    `max_weight_norm` the largest norm of its rows."""
    weight, bias = head.weight, head.bias
    approx = F.linear(rows.to(torch.bfloat16), weight_bf16, None if bias is None else bias.to(torch.bfloat16))
    approx_top = approx.topk(shortlist, dim=-1)
    del approx
    candidates = approx_top.indices.sort(dim=-1).values  # in id order: ties go to the lowest id, as in argmax
    exact = torch.einsum("nd,nkd->nk", rows, weight[candidates])
    if bias is not None:
        exact = exact + bias[candidates]
    best_exact, best_slot = exact.max(dim=-1)
    ids = candidates.gather(1, best_slot[:, None]).squeeze(1)
    # A token off the shortlist has a bfloat16 logit <= the shortlist's lowest, and an exact one at most `bound` above.
    rel = 3 * _BF16_UNIT_ROUNDOFF + _BF16_UNIT_ROUNDOFF**2 + rows.shape[-1] * 2.0**-23
    bound = rel * rows.norm(dim=-1) * max_weight_norm
    if bias is not None:
        bound = bound + 3 * _BF16_UNIT_ROUNDOFF * bias.abs().max()
    proven = best_exact > approx_top.values[:, -1].float() + 1.01 * bound  # False for NaN: those rows go the long way
    if not proven.all():
        ids[~proven] = head(rows[~proven]).argmax(dim=-1)
    return ids


def _shortlist_pays_off(features: torch.Tensor, head: nn.Linear, shortlist: int) -> bool:
    """float32 inference on a device with native bfloat16 matmuls, and a vocabulary much wider than the shortlist."""
    if features.dtype != torch.float32 or head.weight.dtype != torch.float32 or torch.is_grad_enabled():
        return False
    if features.numel() == 0:
        return False
    if head.out_features < 64 * shortlist:
        return False
    if features.device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    if features.device.type == "cpu":
        return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    return False


def _bfloat16_copy(head: nn.Linear) -> torch.Tensor:
    """The head's weight in bfloat16, cached on the module until the weight changes (in place or replaced)."""
    weight = head.weight
    if weight.is_inference():  # made under `torch.inference_mode`: no version counter to tell an in-place change
        return weight.to(torch.bfloat16)
    key = (weight.data_ptr(), weight.device, weight._version)
    cached = getattr(head, "_greedy_bfloat16_weight", None)
    if cached is None or cached[0] != key:
        cached = (key, weight.detach().to(torch.bfloat16))
        head._greedy_bfloat16_weight = cached  # a plain attribute: not a parameter, not in the state dict
    return cached[1]
