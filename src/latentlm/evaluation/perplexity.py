"""Generative perplexity of sampled text under a judge causal LM (MDLM / ELF protocol).

Protocol, as in the MDLM/Duo/ELF code (``compute_generative_perplexity``), adapted to decoded strings:

1. Each sample is cut at the first end-of-sequence: at ``eos_text`` (a string, e.g. ``"[SEP]"``) if given, and at
   the first judge EOS or BOS token (a BOS inside a sample starts a new document, e.g. GPT-2's
   ``<|endoftext|>``) if the re-tokenised text contains one. The end-of-sequence itself is not scored (MDLM
   scores the first EOS token; decoded samples usually no longer contain it).
2. The text is re-tokenised with the judge's tokenizer without special tokens, and the judge's BOS token (if the
   tokenizer has one; see ``bos_token_id``) is prepended, so that every text token is predicted, the first one
   included. GPT-2 (MDLM, ELF) has no BOS here, so there the first token is only context.
3. Sequences longer than ``max_length`` tokens (BOS included) are truncated, not chunked.
4. The NLL is token-weighted over all samples: ``exp(sum of token NLLs / number of predicted tokens)``, not a
   mean of per-sample perplexities (the HF ``evaluate`` "perplexity" metric used by Cosmos/NFDM-text averages
   per-sample perplexities instead, which weighs short samples more).

Samples are batched right-padded with a real attention mask, so the value does not depend on ``batch_size`` or on
padding (up to float round-off).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ._utils import check_positive_int, check_texts, model_device


_FROM_TOKENIZER = "tokenizer"


@dataclass(frozen=True)
class PerplexityResult:
    """Outcome of :func:`generative_nll`.

    Attributes:
        perplexity: ``exp(nll_sum / num_tokens)``.
        nll_sum: summed negative log-likelihood (nats) over all predicted tokens.
        num_tokens: number of predicted (scored) tokens.
        num_samples: number of samples scored.
        num_empty: number of samples skipped because nothing was left to score (empty text, text that is empty
            once cut at the first end-of-sequence, or a single token without a BOS to predict it from).
    """

    perplexity: float
    nll_sum: float
    num_tokens: int
    num_samples: int
    num_empty: int

    @property
    def mean_nll(self) -> float:
        """Token-weighted mean NLL in nats (``log`` of the perplexity)."""
        return self.nll_sum / self.num_tokens


def resolve_bos_token_id(tokenizer, bos_token_id=_FROM_TOKENIZER) -> int | None:
    """The BOS id to prepend: ``tokenizer.bos_token_id`` by default, or the explicit ``bos_token_id`` (``None``
    means no BOS)."""
    if bos_token_id == _FROM_TOKENIZER:
        return getattr(tokenizer, "bos_token_id", None)
    if bos_token_id is not None and (isinstance(bos_token_id, bool) or not isinstance(bos_token_id, int)):
        raise ValueError(f"bos_token_id must be an int, None or 'tokenizer', got {bos_token_id!r}.")
    return bos_token_id


def cut_at_eos(text: str, eos_text: str | None) -> str:
    """``text`` up to (not including) the first ``eos_text``; unchanged if ``eos_text`` is ``None`` or absent."""
    return text if not eos_text else text.split(eos_text, 1)[0]


def encode_for_judge(
    texts: list[str],
    tokenizer,
    *,
    max_length: int | None = None,
    eos_text: str | None = None,
    bos_token_id=_FROM_TOKENIZER,
) -> list[list[int]]:
    """Re-tokenise samples for the judge: cut at the first EOS, tokenise without special tokens, prepend BOS,
    truncate to ``max_length`` tokens. Whitespace-only and empty samples give an empty list (no BOS)."""
    bos = resolve_bos_token_id(tokenizer, bos_token_id)
    stops = {getattr(tokenizer, "eos_token_id", None), getattr(tokenizer, "bos_token_id", None), bos} - {None}
    cut = [cut_at_eos(text, eos_text) for text in texts]
    keep = [i for i, text in enumerate(cut) if text.strip()]
    encoded = tokenizer([cut[i] for i in keep], add_special_tokens=False).input_ids if keep else []
    out: list[list[int]] = [[] for _ in texts]
    for i, ids in zip(keep, encoded):
        ids = list(ids)
        stop = next((t for t, token in enumerate(ids) if token in stops), None)
        if stop is not None:
            ids = ids[:stop]
        if ids and bos is not None:
            ids = [bos] + ids
        out[i] = ids[:max_length] if max_length is not None else ids
    return out


def default_max_length(model, fallback: int = 1024) -> int:
    """The judge's context size (``config.max_position_embeddings``), or ``fallback`` if it has none."""
    return int(getattr(getattr(model, "config", None), "max_position_embeddings", None) or fallback)


def pad_batch(batch: list[list[int]], pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad token lists into ``(input_ids, attention_mask)`` tensors of shape ``(B, max_len)``."""
    width = max(len(ids) for ids in batch)
    input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, ids in enumerate(batch):
        input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        attention_mask[row, : len(ids)] = 1
    return input_ids.to(device), attention_mask.to(device)


def pad_token_id(tokenizer) -> int:
    """An id to pad with (masked out, so any valid id works): pad, else EOS, else 0."""
    for name in ("pad_token_id", "eos_token_id"):
        value = getattr(tokenizer, name, None)
        if value is not None:
            return int(value)
    return 0


@torch.no_grad()
def _batch_nll(
    model, input_ids: torch.Tensor, attention_mask: torch.Tensor, chunk: int = 4096, scored_mask=None
) -> tuple[float, int]:
    """Summed next-token NLL (float64) and number of predicted tokens for one right-padded batch.

    Position ``t`` predicts token ``t + 1``; the last position and padding predict nothing, nor does any token
    outside ``scored_mask`` (``(B, T)``, default ``attention_mask``: a prompt is context, not scored). The
    log-softmax runs over ``chunk`` positions at a time, so its memory stays small next to the logits themselves.
    """
    logits = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits
    targets = torch.roll(input_ids, -1, dims=1)
    scored_mask = attention_mask if scored_mask is None else scored_mask
    target_mask = torch.roll(scored_mask, -1, dims=1).bool()
    target_mask[:, -1] = False
    logits, targets, target_mask = logits.flatten(0, 1), targets.flatten(), target_mask.flatten()
    nll_sum = 0.0
    for i in range(0, targets.numel(), chunk):
        mask = target_mask[i : i + chunk]
        if mask.any():
            nll = F.cross_entropy(logits[i : i + chunk][mask].float(), targets[i : i + chunk][mask], reduction="sum")
            nll_sum += float(nll.double())
    return nll_sum, int(target_mask.sum())


def generative_nll(
    texts,
    model,
    tokenizer,
    *,
    batch_size: int = 16,
    max_length: int | None = None,
    eos_text: str | None = None,
    bos_token_id=_FROM_TOKENIZER,
) -> PerplexityResult:
    """Token-weighted NLL of ``texts`` under the judge; see the module docstring for the protocol.

    Args:
        texts: generated samples (decoded strings).
        model: judge causal LM (e.g. from :func:`latentlm.evaluation.load_judge`); used as is (device, dtype).
        tokenizer: the judge's tokenizer.
        batch_size: samples per forward pass. Memory is about ``batch_size * length * vocab * 4`` bytes of logits.
        max_length: truncate each re-tokenised sample (BOS included) to this many tokens; default: the judge's
            ``max_position_embeddings``.
        eos_text: cut each sample at the first occurrence of this string (e.g. ``"[SEP]"``, ``"<|endoftext|>"``).
        bos_token_id: ``"tokenizer"`` (default) prepends ``tokenizer.bos_token_id`` if it is not ``None``; an int
            prepends that id; ``None`` prepends nothing (the first token is then not scored).

    Raises:
        ValueError: if ``texts`` is not a non-empty list of strings, if every sample is empty, or if ``batch_size``
            / ``max_length`` are not positive integers.
    """
    texts = check_texts(texts, "texts")
    check_positive_int(batch_size, "batch_size")
    max_length = default_max_length(model) if max_length is None else check_positive_int(max_length, "max_length")
    encoded = encode_for_judge(texts, tokenizer, max_length=max_length, eos_text=eos_text, bos_token_id=bos_token_id)
    scored = sorted((ids for ids in encoded if len(ids) >= 2), key=len, reverse=True)
    num_empty = len(texts) - len(scored)
    if not scored:
        raise ValueError(f"texts: all {len(texts)} samples are empty (nothing to score after cutting at EOS).")
    nll_sum, num_tokens = 0.0, 0
    pad_id, device = pad_token_id(tokenizer), model_device(model)
    for start in range(0, len(scored), batch_size):
        batch_nll, batch_tokens = _batch_nll(model, *pad_batch(scored[start : start + batch_size], pad_id, device))
        nll_sum += batch_nll
        num_tokens += batch_tokens
    return PerplexityResult(math.exp(nll_sum / num_tokens), nll_sum, num_tokens, len(scored), num_empty)


def encode_continuations(
    prompts: list[str], texts: list[str], tokenizer, *, max_length: int | None = None, bos_token_id=_FROM_TOKENIZER
) -> list[tuple[list[int], int]]:
    """Re-tokenise prompt continuations for the judge: ``(ids, first)`` per text, ``ids[first:]`` being the
    continuation's tokens.

    Each text begins with its prompt (verbatim: the round-tripped prompt the generator was given). The whole text is
    tokenised at once without special tokens (so the continuation's first token is the one the judge would write
    after the prompt, a leading space included), the BOS is prepended (see :func:`encode_for_judge`), and the
    continuation starts at the first token that ends after the prompt's last character. The continuation is cut at
    the first judge EOS or BOS token, the whole row at ``max_length`` tokens. A row with nothing to score has
    ``first == len(ids)``.

    Raises:
        ValueError: if a text does not begin with its prompt, or the tokenizer gives no offsets (not a fast one).
    """
    texts, prompts = check_texts(texts, "texts"), check_texts(prompts, "prompts")
    if len(prompts) != len(texts):
        raise ValueError(f"prompts has {len(prompts)} entries but texts has {len(texts)}; give one prompt per text.")
    for i, (prompt, text) in enumerate(zip(prompts, texts)):
        if not text.startswith(prompt):
            raise ValueError(f"texts[{i}] does not begin with prompts[{i}] ({prompt!r}): {text[:80]!r}.")
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError(f"tokenizer must be a fast tokenizer (offsets), got {type(tokenizer).__name__}.")
    bos = resolve_bos_token_id(tokenizer, bos_token_id)
    stops = {getattr(tokenizer, "eos_token_id", None), getattr(tokenizer, "bos_token_id", None), bos} - {None}
    encoded = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True)
    out = []
    for prompt, ids, offsets in zip(prompts, encoded["input_ids"], encoded["offset_mapping"]):
        first = next((t for t, (_, end) in enumerate(offsets) if end > len(prompt)), len(ids))
        stop = next((t for t in range(first, len(ids)) if ids[t] in stops), len(ids))
        ids = ([bos] if bos is not None else []) + list(ids[:stop])
        first += bos is not None
        ids = ids[:max_length] if max_length is not None else ids
        out.append((ids, max(1, min(first, len(ids)))))
    return out


def continuation_nll(
    prompts,
    texts,
    model,
    tokenizer,
    *,
    batch_size: int = 16,
    max_length: int | None = None,
    bos_token_id=_FROM_TOKENIZER,
) -> PerplexityResult:
    """Token-weighted NLL of the continuations of ``prompts`` under the judge: each text (prompt + continuation) is
    scored whole, but only the continuation's tokens count (:func:`encode_continuations`); the rest of the protocol
    is :func:`generative_nll`'s. ``num_empty`` counts texts with no continuation token to score.

    Raises:
        ValueError: as :func:`encode_continuations`, or if no text has a continuation to score.
    """
    check_positive_int(batch_size, "batch_size")
    max_length = default_max_length(model) if max_length is None else check_positive_int(max_length, "max_length")
    encoded = encode_continuations(prompts, texts, tokenizer, max_length=max_length, bos_token_id=bos_token_id)
    scored = sorted((row for row in encoded if row[1] < len(row[0])), key=lambda row: len(row[0]), reverse=True)
    if not scored:
        raise ValueError(f"texts: none of the {len(encoded)} texts has a continuation to score.")
    nll_sum, num_tokens = 0.0, 0
    pad_id, device = pad_token_id(tokenizer), model_device(model)
    for start in range(0, len(scored), batch_size):
        batch = scored[start : start + batch_size]
        input_ids, attention_mask = pad_batch([ids for ids, _ in batch], pad_id, device)
        scored_mask = attention_mask.clone()
        for row, (_, first) in enumerate(batch):
            scored_mask[row, :first] = 0
        batch_nll, batch_tokens = _batch_nll(model, input_ids, attention_mask, scored_mask=scored_mask)
        nll_sum += batch_nll
        num_tokens += batch_tokens
    return PerplexityResult(
        math.exp(nll_sum / num_tokens), nll_sum, num_tokens, len(scored), len(encoded) - len(scored)
    )


def generative_perplexity(
    texts,
    model,
    tokenizer,
    *,
    batch_size: int = 16,
    max_length: int | None = None,
    eos_text: str | None = None,
    bos_token_id=_FROM_TOKENIZER,
) -> float:
    """Generative perplexity of ``texts`` under a judge LM (MDLM/ELF protocol, token-weighted).

    Same arguments as :func:`generative_nll`, which also returns the token and empty-sample counts. Empty samples
    are skipped with a warning that gives their number.
    """
    result = generative_nll(
        texts, model, tokenizer, batch_size=batch_size, max_length=max_length, eos_text=eos_text,
        bos_token_id=bos_token_id,
    )  # fmt: skip
    if result.num_empty:
        total = result.num_samples + result.num_empty
        warnings.warn(f"generative_perplexity: skipped {result.num_empty} empty sample(s) of {total}.", stacklevel=2)
    return result.perplexity
