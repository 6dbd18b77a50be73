"""The benchmark: quality frontiers and speed of diffusion pipelines against an autoregressive baseline, in one run.

``latentlm bench`` (or :func:`run_benchmark`) writes, to ``out_dir`` (default ``benchmarks/``):

* ``RESULTS.md``: the tables, the machine, the date, the exact command, sample counts, seeds and sampling settings;
* ``results.json``: every raw number (timings of each repeat included);
* ``frontier.png`` (judge perplexity vs entropy), ``quality_vs_steps.png`` (judge perplexity and MAUVE vs steps)
  and, with conditional rows, ``cfg_curve.png`` (task score or continuation perplexity vs the input-CFG scale).

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

* **Conditional generation** (``tasks``, ``continuation``): paired tasks scored by BLEU / ROUGE against an AR peer
  over steps and an input-CFG sweep, and prompt continuation judged by the perplexity of the continuation given the
  prompt; see :mod:`.bench_conditional`.

The pieces: :mod:`.bench_settings` (settings and protocol), :mod:`.bench_sampling` (loading and sampling the
models), :mod:`.bench_quality`, :mod:`.bench_speed` and :mod:`.bench_conditional` (the three parts),
:mod:`.bench_report` (``results.json``, ``RESULTS.md``, plots); ``latentlm evaluate`` is in
:mod:`.evaluate_command`. This module runs them in order and holds ``latentlm bench``'s command line (its arguments:
:mod:`.bench_args`).
"""

from __future__ import annotations

import argparse
import os
import shlex
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path

import torch

from .bench_args import BENCH_OVERRIDES, add_bench_arguments, add_conditional_arguments, positive_int
from .bench_conditional import default_cfg_scale, resolve_task_models, run_continuation, run_tasks
from .bench_quality import (
    QualityEvaluator,
    _run_quality_section,
    diffusion_settings,
    held_out_references,
    resolve_corpus,
    run_quality,
    split_texts,
    token_chunks,
)
from .bench_report import QUALITY_HEADER, _now, command_line, machine_info, render_markdown, write_results
from .bench_sampling import (
    batch_sizes,
    bos_token_id_for,
    check_gen_length,
    check_same_tokenizer,
    check_sweeps,
    decode_rows,
    default_guidance_scale,
    learns_guidance,
    load_autoregressive,
    load_diffusion_pipeline,
    module_components,
    sample_autoregressive,
    sample_diffusion,
    sampler_defaults,
    sampler_label,
    scheduler_override,
)
from .bench_settings import AR_SAMPLING, MAUVE_SEED, SAMPLER_KNOBS, BenchmarkSettings, protocol_text, resolve_settings
from .bench_speed import add_reference_ratios, run_speed
from .evaluate_command import (
    add_evaluate_arguments,
    default_tokenizer,
    evaluate_path,
    read_texts,
    run_evaluate_from_args,
)
from .report import _resolve_judge


# -------------------------------------------------------------------------------------------------- the whole run


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
    tasks=None,
    task_models: Mapping[str, Mapping[str, object]] | None = None,
    task_ar: Mapping[str, object] | None = None,
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
        tasks: paired tasks to score (issue 8): names for :func:`latentlm.data.load_paired_task`
            (``bbc-headlines``, ``kjv-web``, ``wordnet-gloss``), or a mapping of name -> ``DatasetDict`` (``id``,
            ``source``, ``target``; its ``test`` split is evaluated). See :mod:`.bench_conditional`.
        task_models: task -> {name: pipeline folder or pipeline} trained on that task; a task not listed is run
            with ``models``.
        task_ar: task -> the AR peer trained on that task's ``source [SEP] target`` (folder or ``(model,
            tokenizer)``); a task not listed uses ``ar_baseline``.
        overrides: any other :class:`BenchmarkSettings` field (``sweep_steps``, ``batch_size``, ``batch_slice``
            (diffusion pipelines run their model on at most that many sequences at a time), ``speed_lengths``,
            ``speed_batch_size``, ``latency_repeats``, ``throughput_repeats``, ``judge_batch_size``, ``mauve``, and
            for the conditional rows ``task_samples``, ``task_steps``, ``cfg_scales`` (input CFG sweep),
            ``task_gen_length``, ``task_source_tokens``, ``continuation`` (prompt continuation rows on ``corpus``
            with ``models`` and ``ar_baseline``), ``prompt_tokens``, ``continuation_tokens``).

    Returns:
        The content of ``results.json``, plus ``paths`` (the files written).
    """
    given = dict(num_samples=num_samples, gen_length=gen_length, steps=steps, guidance_scales=guidance_scales,
                 gammas=gammas, solvers=solvers, speed_reference=speed_reference, **overrides)  # fmt: skip
    corpus_name = str(corpus) if isinstance(corpus, (str, os.PathLike)) else "<in-memory corpus>"
    task_names = tuple(tasks or ())
    settings = resolve_settings(quick, seed=seed, device=str(device or "cpu"), corpus=corpus_name,
                                tasks=task_names or None, **given)  # fmt: skip
    flags = {
        **given,
        "speed": speed,
        "quality": quality,
        "judge": judge if isinstance(judge, (str, os.PathLike)) else None,
        "corpus": corpus if isinstance(corpus, (str, os.PathLike)) and corpus != "english-prose" else None,
    }
    conditional = {"tasks": task_names, "task_models": task_models, "task_ar": task_ar}
    command = command or bench_command(models, ar_baseline, out_dir=out_dir, settings=settings, given=flags,
                                       **conditional)  # fmt: skip
    started = time.perf_counter()
    pipes = {name: load_diffusion_pipeline(path, settings.device, settings.batch_slice) for name, path in models.items()}
    ar = None
    if ar_baseline is not None:
        ar = (_ar_name(ar_baseline), load_autoregressive(ar_baseline, settings.device))
    tokenizers = {name: pipe.tokenizer for name, pipe in pipes.items()} | ({ar[0]: ar[1][1]} if ar else {})
    if tokenizers:
        check_same_tokenizer(tokenizers)
    check_sweeps(pipes, settings)
    if quality:
        check_gen_length(pipes, settings.gen_length)
    task_pipes, task_peers = {}, {}
    if task_names:
        task_pipes, task_peers = resolve_task_models(tasks, pipes, ar, task_models, task_ar, _loader(settings))
        for task in task_names:
            peer = task_peers[task]
            check_same_tokenizer({n: p.tokenizer for n, p in task_pipes[task].items()} | ({peer[0]: peer[1][1]}
                                                                                          if peer else {}))  # fmt: skip
    if settings.continuation and not pipes and ar is None:
        raise ValueError("continuation rows need --model or --ar-baseline models to continue the prompts.")
    results = {"command": command, "date": _now(), "machine": machine_info(settings.device),
               "settings": _settings_record(settings, pipes, ar, task_pipes, task_peers), "quality": None,
               "speed": None, "tasks": None, "continuation": None}  # fmt: skip
    if quality or settings.continuation:
        judge = _resolve_judge(judge)
        judge[0].to(settings.device)
    if quality and (pipes or ar):
        tokenizer = next(iter(tokenizers.values()))
        results["quality"] = _run_quality_section(pipes, ar, tokenizer, judge, resolve_corpus(corpus), settings)
    if speed and (pipes or ar):
        results["speed"] = run_speed(pipes, ar, settings)
    if task_names:
        results["tasks"] = run_tasks(tasks, task_pipes, task_peers, settings, speed=speed)
    if settings.continuation:
        results["continuation"] = run_continuation(resolve_corpus(corpus), pipes, ar, judge, settings)
    results["elapsed_seconds"] = time.perf_counter() - started
    results["paths"] = write_results(results, out_dir)
    return results


def _loader(settings: BenchmarkSettings):
    """``load(kind, value, name)`` for :func:`resolve_task_models`: a diffusion pipeline or a named AR peer."""

    def load(kind, value, name):
        if kind == "pipe":
            return load_diffusion_pipeline(value, settings.device, settings.batch_slice)
        return _ar_name(value), load_autoregressive(value, settings.device)

    return load


def _settings_record(settings: BenchmarkSettings, pipes, ar, task_pipes=None, task_peers=None) -> dict:
    """The settings plus the models' defaults and the sampling protocol in words."""
    record = asdict(settings)
    record["models"] = {name: model_record(pipe, settings.gen_length) for name, pipe in pipes.items()}
    if task_pipes:
        record["task_models"] = {
            task: {
                "diffusion": {name: task_model_record(pipe) for name, pipe in task_pipes[task].items()},
                "ar_peer": None if task_peers[task] is None else _ar_record(task_peers[task]),
            }
            for task in task_pipes
        }
    if ar is not None:
        record["ar_baseline"] = _ar_record(ar)
    record["protocol"] = protocol_text(settings)
    if settings.quick:
        record["notes"] = [
            *settings.notes,
            "quick run: few samples; MAUVE uses 2 k-means buckets, read it as a smoke test",
        ]
    return record


def _ar_record(ar) -> dict:
    name, (model, tokenizer) = ar
    return {"name": name, "class": type(model).__name__, "parameters": sum(p.numel() for p in model.parameters()),
            "bos_token": tokenizer.convert_ids_to_tokens(bos_token_id_for(model, tokenizer))}  # fmt: skip


def task_model_record(pipe) -> dict:
    """A task model's classes, default guidance (learned and input CFG) and parameter count."""
    components = module_components(pipe)
    return {
        "class": type(pipe).__name__,
        "model_class": type(pipe.model).__name__,
        "learns_guidance": learns_guidance(pipe),
        "default_guidance_scale": default_guidance_scale(pipe) if learns_guidance(pipe) else None,
        "default_cfg_scale": default_cfg_scale(pipe),
        "parameters": sum(p.numel() for p in pipe.model.parameters()),
        "parameters_total": sum(p.numel() for module in components.values() for p in module.parameters()),
    }


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


POSITIVE_FLAGS = ("continuation",)  # boolean settings whose flag turns them on (the others: --no-...)


def _shown(value, what: str = "<in-memory>") -> str:
    return str(value) if isinstance(value, (str, os.PathLike)) else what


def bench_command(
    models, ar_baseline, *, out_dir, settings: BenchmarkSettings, given: dict, tasks=(), task_models=None, task_ar=None
) -> str:
    """The ``latentlm bench`` command equivalent to a Python call (recorded when no command line is given)."""
    words = ["latentlm", "bench"]
    for name, path in models.items():
        words += ["--model", f"{name}={_shown(path, '<in-memory pipeline>')}"]
    if ar_baseline is not None:
        words += ["--ar-baseline", _shown(ar_baseline)]
    for task in tasks:
        words += ["--task", task]
        words += [
            w
            for n, p in (task_models or {}).get(task, {}).items()
            for w in ("--task-model", f"{task}:{n}={_shown(p)}")
        ]
        if (task_ar or {}).get(task) is not None:
            words += ["--task-ar", f"{task}={_shown(task_ar[task])}"]
    words += ["--out-dir", str(out_dir), "--seed", str(settings.seed), "--device", settings.device]
    if settings.quick:
        words.append("--quick")
    for key, value in given.items():
        if value is None:
            continue
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool) and key in POSITIVE_FLAGS:
            words += [flag] if value else []
        elif isinstance(value, bool):
            words += [] if value else [f"--no-{key.replace('_', '-')}"]
        else:
            words += [flag, *map(str, value)] if isinstance(value, (list, tuple)) else [flag, str(value)]
    return shlex.join(words)


def _ar_name(ar_baseline) -> str:
    if isinstance(ar_baseline, (str, os.PathLike)):
        return f"AR ({Path(ar_baseline).name})"
    return "AR"


# ------------------------------------------------------------------------------------------------------------ CLI


def run_bench_from_args(args: argparse.Namespace) -> dict:
    """Run ``latentlm bench`` from parsed arguments; prints where the results went and the tables."""
    if not args.models and not args.ar_baseline and not args.task_models and not args.task_ar:
        raise SystemExit("latentlm bench: error: give at least one --model NAME=PATH or --ar-baseline PATH.")
    overrides = {key: getattr(args, key) for key in BENCH_OVERRIDES}
    task_models: dict[str, dict[str, str]] = {}
    for task, name, path in args.task_models:
        task_models.setdefault(task, {})[name] = path
    results = run_benchmark(
        dict(args.models), args.ar_baseline, out_dir=args.out_dir, quick=args.quick, num_samples=args.num_samples,
        gen_length=args.gen_length, steps=args.steps, guidance_scales=args.guidance_scales, gammas=args.gammas,
        solvers=args.solvers, speed_reference=args.speed_reference, seed=args.seed, judge=args.judge, device=args.device, speed=args.speed, quality=args.quality,
        command=getattr(args, "command_line", None) or command_line(), corpus=args.corpus, tasks=args.tasks,
        task_models=task_models, task_ar=dict(args.task_ar), **overrides,
    )  # fmt: skip
    print(Path(results["paths"]["markdown"]).read_text())
    print(f"Wrote {', '.join(results['paths'].values())} in {results['elapsed_seconds']:.0f} s.")
    return results


__all__ = [
    "positive_int",
    "AR_SAMPLING",
    "BENCH_OVERRIDES",
    "BenchmarkSettings",
    "MAUVE_SEED",
    "QUALITY_HEADER",
    "QualityEvaluator",
    "SAMPLER_KNOBS",
    "add_bench_arguments",
    "add_conditional_arguments",
    "add_evaluate_arguments",
    "add_reference_ratios",
    "batch_sizes",
    "bench_command",
    "bos_token_id_for",
    "check_gen_length",
    "check_same_tokenizer",
    "check_sweeps",
    "command_line",
    "decode_rows",
    "default_guidance_scale",
    "default_tokenizer",
    "diffusion_settings",
    "evaluate_path",
    "held_out_references",
    "learns_guidance",
    "load_autoregressive",
    "load_diffusion_pipeline",
    "machine_info",
    "model_record",
    "module_components",
    "protocol_text",
    "read_texts",
    "render_markdown",
    "resolve_corpus",
    "resolve_settings",
    "run_bench_from_args",
    "run_benchmark",
    "run_evaluate_from_args",
    "run_quality",
    "run_speed",
    "sample_autoregressive",
    "sample_diffusion",
    "sampler_defaults",
    "sampler_label",
    "scheduler_override",
    "split_texts",
    "token_chunks",
    "write_results",
]
