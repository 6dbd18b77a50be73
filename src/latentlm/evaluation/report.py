"""One call that computes the unconditional-generation quality report for a set of samples."""

from __future__ import annotations

import os

from ._utils import check_texts
from .features import FEATURE_KINDS, mauve_score
from .metrics import memorisation, repetition_rates, unigram_entropy
from .perplexity import cut_at_eos, generative_nll


def _resolve_judge(judge):
    """``None``: the default judge; a path: :func:`load_judge` of it; ``(model, tokenizer)``: as is; ``False``: no
    judge."""
    if judge is False:
        return None
    if judge is None or isinstance(judge, (str, os.PathLike)):
        from .judge import load_judge

        return load_judge(judge)
    if isinstance(judge, (tuple, list)) and len(judge) == 2:
        return tuple(judge)
    raise ValueError("judge must be None (default judge), a path, a (model, tokenizer) pair or False (no judge).")


def _judge_name(model) -> str:
    return str(getattr(getattr(model, "config", None), "_name_or_path", "") or type(model).__name__)


def evaluate_texts(
    texts,
    *,
    reference_texts=None,
    train_texts=None,
    judge=None,
    eos_text: str | None = None,
    batch_size: int = 16,
    max_length: int | None = None,
    mauve_features: str = "judge",
    encoder=None,
    diversity_per_sample: bool = False,
    mauve_seed: int = 25,
    mauve_num_buckets: int | str = "auto",
) -> dict:
    """Quality report for generated ``texts``: judge perplexity, entropy, diversity, and optionally MAUVE and
    memorisation.

    Args:
        texts: generated samples (decoded strings). Each is cut at the first ``eos_text`` for every metric.
        reference_texts: human texts for MAUVE (pass them through :func:`normalize_reference_texts` first, with
            the generator's tokenizer and the samples' length). ``None``: no MAUVE.
        train_texts: training texts (or an :class:`NgramIndex` of 4-grams) for memorisation. ``None``: skipped.
        judge: ``None`` loads the default judge (:func:`load_judge`); a path loads that judge; a
            ``(model, tokenizer)`` pair is used as is; ``False`` skips perplexity (entropy then uses whitespace
            words and MAUVE needs ``mauve_features="encoder"``).
        eos_text: end-of-sequence string of the generator (e.g. ``"[SEP]"``), if its decoded output keeps it.
        batch_size, max_length: judge batching and truncation (see :func:`generative_perplexity`).
        mauve_features: ``"judge"`` or ``"encoder"`` (see :func:`mauve_score`).
        encoder: ``(model, tokenizer)`` for encoder features; default all-MiniLM-L6-v2.
        diversity_per_sample: see :func:`repetition_rates` (default: pooled over the corpus, as the TEncDM / Cosmos-line code).
        mauve_seed, mauve_num_buckets: see :func:`mauve_from_features`.

    Returns:
        A flat dict: ``num_samples``, ``num_empty`` (samples empty after the EOS cut), ``judge``, ``gen_ppl``,
        ``gen_ppl_tokens`` (tokens scored), ``entropy`` (mean unigram entropy in nats over judge-tokenizer ids, or
        whitespace words without a judge), ``rep_2``, ``rep_3``, ``rep_4``, ``diversity``, and if requested
        ``memorisation``, ``mauve``, ``mauve_features``, ``num_references``.
    """
    texts = check_texts(texts, "texts")
    if mauve_features not in FEATURE_KINDS:
        raise ValueError(f"mauve_features must be one of {FEATURE_KINDS}, got {mauve_features!r}.")
    if reference_texts is not None:
        reference_texts = check_texts(reference_texts, "reference_texts")
    if judge is False and reference_texts is not None and mauve_features == "judge":
        raise ValueError("judge=False leaves no judge for mauve_features='judge'; use mauve_features='encoder'.")
    cut = [cut_at_eos(text, eos_text) for text in texts]
    kept = [text for text in cut if text.strip()]
    if not kept:
        raise ValueError(f"texts: all {len(texts)} samples are empty.")
    report: dict = {"num_samples": len(texts), "num_empty": len(texts) - len(kept)}
    judge = _resolve_judge(judge)
    report.update(_judge_metrics(kept, judge, batch_size=batch_size, max_length=max_length))
    rates = repetition_rates(kept, (2, 3, 4), per_sample=diversity_per_sample)
    report.update({f"rep_{n}": rate for n, rate in rates.items()})
    report["diversity"] = (1 - rates[2]) * (1 - rates[3]) * (1 - rates[4])
    if train_texts is not None:
        report["memorisation"] = memorisation(kept, train_texts)
    if reference_texts is not None:
        model, tokenizer = judge if mauve_features == "judge" else (encoder or (None, None))
        report["mauve"] = mauve_score(
            kept, reference_texts, features=mauve_features, model=model, tokenizer=tokenizer, batch_size=batch_size,
            num_buckets=mauve_num_buckets, seed=mauve_seed,
        )  # fmt: skip
        report["mauve_features"] = mauve_features
        report["num_references"] = len(reference_texts)
    return report


def _judge_metrics(texts: list[str], judge, *, batch_size: int, max_length: int | None) -> dict:
    """Perplexity and entropy under the judge (entropy on whitespace words when there is no judge)."""
    if judge is None:
        return {"judge": None, "gen_ppl": None, "gen_ppl_tokens": 0, "entropy": unigram_entropy(texts)}
    model, tokenizer = judge
    result = generative_nll(texts, model, tokenizer, batch_size=batch_size, max_length=max_length)
    return {
        "judge": _judge_name(model),
        "gen_ppl": result.perplexity,
        "gen_ppl_tokens": result.num_tokens,
        "entropy": unigram_entropy(texts, tokenizer),
    }
