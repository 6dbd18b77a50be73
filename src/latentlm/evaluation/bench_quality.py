"""The quality half of the benchmark: held-out reference text, the scorer (judge metrics and MAUVE against fixed
references) and every quality row (reference, AR baseline, each diffusion model's steps and sampler sweeps)."""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Mapping, Sequence

from .bench_report import _fmt, _row_label
from .bench_sampling import (
    default_guidance_scale,
    learns_guidance,
    sample_autoregressive,
    sample_diffusion,
    sampler_defaults,
    sampler_label,
    scheduler_override,
)
from .bench_settings import AR_SAMPLING, MAUVE_SEED, SAMPLER_KNOBS, BenchmarkSettings
from .features import judge_features, mauve_from_features
from .metrics import NgramIndex, normalize_reference_texts
from .report import _judge_name, _resolve_judge, evaluate_texts


logger = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------------- corpus text


def resolve_corpus(corpus):
    """A corpus name or local folder (:func:`load_text_dataset`, splits as stored), or a mapping of split -> texts
    (or ``Dataset`` with a ``text`` column), returned as a mapping of splits."""
    if isinstance(corpus, (str, os.PathLike)):
        from ..data import load_text_dataset

        return load_text_dataset(corpus, validation_split=None)
    if not isinstance(corpus, Mapping):
        raise ValueError(f"corpus must be a name, a path or a mapping of splits, got {type(corpus).__name__}.")
    return corpus


def split_texts(corpus, split: str) -> list[str]:
    """The texts of one split of a resolved corpus (see :func:`resolve_corpus`)."""
    if split not in corpus:
        raise ValueError(f"The corpus has no {split!r} split.")
    data = corpus[split]
    return list(data["text"]) if hasattr(data, "column_names") else list(data)


def token_chunks(texts: Sequence[str], tokenizer, chunk_tokens: int) -> list[str]:
    """Consecutive ``chunk_tokens``-token spans of each text (the remainder of each text is dropped), as slices of the
    original text found through the fast tokenizer's offsets; normalise them afterwards."""
    encoded = tokenizer(
        list(texts), add_special_tokens=False, return_offsets_mapping=True, return_attention_mask=False, verbose=False
    )
    chunks = []
    for text, offsets in zip(texts, encoded["offset_mapping"]):
        for start in range(0, len(offsets) - chunk_tokens + 1, chunk_tokens):
            chunks.append(text[offsets[start][0] : offsets[start + chunk_tokens - 1][1]])
    return chunks


def held_out_references(corpus, tokenizer, gen_length: int, counts: Sequence[int], seed: int) -> list[list[str]]:
    """Disjoint sets of held-out ``gen_length``-token chunks of a resolved ``corpus``, one per entry of ``counts``.

    Test-split documents are cut into chunks (:func:`token_chunks`), round-tripped through ``tokenizer``
    (:func:`normalize_reference_texts`) and shuffled with ``random.Random(seed)``; the validation split is added only
    if the test split is too small.
    """
    needed, chunks = sum(counts), []
    for split in ("test", "validation"):
        chunks += token_chunks(split_texts(corpus, split), tokenizer, gen_length)
        if len(chunks) >= needed:
            break
    if len(chunks) < needed:
        raise ValueError(f"The held-out splits give {len(chunks)} chunks of {gen_length} tokens; {needed} needed.")
    random.Random(seed).shuffle(chunks)
    chunks = normalize_reference_texts(chunks[:needed], tokenizer, max_tokens=gen_length)
    bounds = [sum(counts[:i]) for i in range(len(counts) + 1)]
    return [chunks[start:end] for start, end in zip(bounds, bounds[1:])]


# --------------------------------------------------------------------------------------------------- quality rows


class QualityEvaluator:
    """Scores one set of samples: :func:`evaluate_texts` (judge perplexity, entropy, diversity, memorisation) plus
    MAUVE on judge features against fixed references, whose features are computed once."""

    def __init__(self, judge, *, train_texts=None, mauve_references=None, batch_size: int = 16):
        self.judge = judge
        self.batch_size = batch_size
        self.train_index = NgramIndex(train_texts) if train_texts is not None else None
        self.num_references = len(mauve_references) if mauve_references else 0
        self.reference_features = None
        if mauve_references:
            model, tokenizer = judge
            self.reference_features = judge_features(mauve_references, model, tokenizer, batch_size=batch_size)

    def __call__(self, texts: list[str]) -> dict:
        if not any(text.strip() for text in texts):
            logger.warning("all %d samples are empty (end-of-sequence first): no metrics for this row", len(texts))
            empty = dict.fromkeys(("judge", "gen_ppl", "entropy", "diversity", "memorisation", "mauve"))
            return {**empty, "num_samples": len(texts), "num_empty": len(texts)}
        report = evaluate_texts(texts, train_texts=self.train_index, judge=self.judge, batch_size=self.batch_size)
        if self.reference_features is not None:
            report.update(self.mauve(texts))
        return report

    def mauve(self, texts: list[str]) -> dict:
        """MAUVE of the non-empty ``texts`` against the references (``None`` with fewer than two samples)."""
        kept = [text for text in texts if text.strip()]
        buckets = max(2, round(min(len(kept), self.num_references) / 10))
        out = {"mauve": None, "mauve_features": "judge", "mauve_num_buckets": buckets,
               "num_references": self.num_references}  # fmt: skip
        if len(kept) >= 2:
            model, tokenizer = self.judge
            features = judge_features(kept, model, tokenizer, batch_size=self.batch_size)
            out["mauve"] = mauve_from_features(features, self.reference_features, num_buckets=buckets, seed=MAUVE_SEED)
        return out


def diffusion_settings(pipe, settings: BenchmarkSettings) -> list[dict]:
    """The sampler settings to evaluate for one pipeline, each once, tagged with the sweeps it belongs to.

    Each setting has ``steps``, ``guidance_scale`` (``None`` for models that learned no guidance: the guidance sweep
    is left out for them), the scheduler's sampler knobs (``gamma`` and / or ``solver``, see :func:`sampler_defaults`)
    and ``sweeps``. The gamma sweep runs for schedulers with a ``gamma``, the solver sweep for those with a ``solver``.
    """
    guidance = default_guidance_scale(pipe) if learns_guidance(pipe) else None
    defaults = sampler_defaults(pipe)
    found: dict[tuple, dict] = {}

    def add(sweep, steps, guidance_scale, **sampler):
        sampler = {**defaults, **sampler}
        key = (steps, guidance_scale, *sorted(sampler.items()))
        entry = {"steps": steps, "guidance_scale": guidance_scale, **sampler, "sweeps": []}
        found.setdefault(key, entry)["sweeps"].append(sweep)

    for steps in settings.steps:
        add("steps", steps, guidance)
    if learns_guidance(pipe):
        for scale in settings.guidance_scales:
            add("guidance", settings.sweep_steps, float(scale))
    if "gamma" in defaults:
        for value in settings.gammas:
            add("gamma", settings.sweep_steps, guidance, gamma=float(value))
    if "solver" in defaults:
        for solver in settings.solvers:
            add("solver", settings.sweep_steps, guidance, solver=solver)
    return list(found.values())


def _quality_row(evaluator, texts, seconds, **row) -> dict:
    """One table row: the descriptive fields, the metrics, generation time and two example samples."""
    start = time.perf_counter()
    metrics = evaluator(texts)
    row.update(metrics=metrics, generation_seconds=seconds, scoring_seconds=time.perf_counter() - start,
               examples=texts[:2])  # fmt: skip
    logger.info(
        "quality %-36s ppl %8s  entropy %5s  mauve %5s  (gen %.1f s)", _row_label(row),
        _fmt(metrics["gen_ppl"], ".2f"), _fmt(metrics["entropy"], ".3f"), _fmt(metrics.get("mauve"), ".3f"), seconds,
    )  # fmt: skip
    return row


def run_quality(pipes, ar, references, evaluator, settings: BenchmarkSettings) -> list[dict]:
    """All quality rows: the reference, the AR baseline's two samplers, then every diffusion model's settings."""
    rows = [_quality_row(evaluator, references, 0.0, model="reference", kind="reference", sweeps=["baseline"])]
    common = dict(num_samples=settings.num_samples, gen_length=settings.gen_length, seed=settings.seed,
                  batch_size=settings.batch_size)  # fmt: skip
    if ar is not None:
        name, (model, tokenizer) = ar
        for sampling, top_p in AR_SAMPLING.items():
            start = time.perf_counter()
            texts = sample_autoregressive(model, tokenizer, top_p=top_p, **common)
            rows.append(_quality_row(evaluator, texts, time.perf_counter() - start, model=name,
                                     kind="autoregressive", sampling=sampling, top_p=top_p, sweeps=["baseline"]))  # fmt: skip
    for name, pipe in pipes.items():
        for setting in diffusion_settings(pipe, settings):
            sampler = {key: setting[key] for key in SAMPLER_KNOBS if key in setting}
            with scheduler_override(pipe, **sampler):
                start = time.perf_counter()
                texts = sample_diffusion(pipe, num_inference_steps=setting["steps"],
                                         guidance_scale=setting["guidance_scale"], **common)  # fmt: skip
            rows.append(_quality_row(evaluator, texts, time.perf_counter() - start, model=name, kind="diffusion",
                                     sampler=sampler_label(setting), **setting))  # fmt: skip
    return rows


def _run_quality_section(pipes, ar, tokenizer, judge, corpus, settings: BenchmarkSettings) -> dict:
    """References, judge and train index, then every quality row."""
    n = settings.num_samples
    counts = [n, n] if settings.mauve else [n]
    references = held_out_references(corpus, tokenizer, settings.gen_length, counts, settings.seed)
    model, judge_tokenizer = _resolve_judge(judge)
    model.to(settings.device)
    evaluator = QualityEvaluator(
        (model, judge_tokenizer), train_texts=split_texts(corpus, "train"),
        mauve_references=references[1] if settings.mauve else None, batch_size=settings.judge_batch_size,
    )  # fmt: skip
    rows = run_quality(pipes, ar, references[0], evaluator, settings)
    return {"judge": _judge_name(model), "rows": rows}
