"""The conditional half of the benchmark (issue 8): paired sequence-to-sequence tasks scored by BLEU and ROUGE against
an autoregressive peer, with the input classifier-free guidance sweep (the CFG U-curve) and speed ratios; and prompt
continuation, judged by the perplexity of the continuation given the prompt and by its entropy.

Conventions: a diffusion pipeline is called with ``source=`` (the texts are the generated targets) or ``prompt=``
(each text begins with its prompt, verbatim); ``guidance_scale`` is the input CFG (1 = off), the learned guidance
(``sc_guidance_scale``) and the sampler stay at their defaults. The AR peer of a task is a causal LM trained on
``source [SEP] target [SEP]`` (``latentlm train`` with paired data; ``[SEP]`` is the end-of-document id) and writes
the target after ``source [SEP]``; for continuation, the AR baseline writes after ``[BOS] prompt``, as it samples
unconditionally from ``[BOS]``.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Mapping, Sequence

from .bench_quality import held_out_references
from .bench_report import _fmt, conditional_row_label
from .bench_sampling import (
    bos_token_id_for,
    default_guidance_scale,
    generate_after,
    learns_guidance,
    sample_conditioned,
)
from .bench_settings import AR_SAMPLING, TASK_METRIC, BenchmarkSettings, task_lengths
from .bench_speed import _measure
from .metrics import normalize_reference_texts, score_ratios, task_scores, unigram_entropy
from .perplexity import continuation_nll


logger = logging.getLogger(__name__)

AR_TASK_DECODING = {"greedy": None, "nucleus": 0.9}  # row name -> top_p (None: greedy)
SCORE_KEYS = ("bleu", "rouge1", "rouge2", "rougeL")


# ------------------------------------------------------------------------------------------------- task data


def load_tasks(tasks) -> dict[str, Mapping]:
    """Task name -> ``DatasetDict`` (``id``, ``source``, ``target``; a ``test`` split): names are loaded with
    :func:`latentlm.data.load_paired_task`, a mapping of name -> dataset is used as given."""
    if isinstance(tasks, Mapping):
        return dict(tasks)
    from ..data import load_paired_task

    return {name: load_paired_task(name) for name in tasks}


def cut_to_tokens(texts: Sequence[str], tokenizer, max_tokens: int) -> list[str]:
    """Each text up to the end of its ``max_tokens``-th token (a slice of the original text, through the fast
    tokenizer's offsets); shorter texts unchanged."""
    offsets = tokenizer(list(texts), add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    return [
        text if len(spans) <= max_tokens else text[: spans[max_tokens - 1][1]]
        for text, spans in zip(texts, offsets["offset_mapping"])
    ]


def task_examples(task: str, data, tokenizer, settings: BenchmarkSettings) -> dict:
    """The evaluated pairs of a task: the first ``task_samples`` test pairs (fewer if the split is smaller), sources
    cut and target length as :func:`task_lengths` says, references round-tripped through ``tokenizer``."""
    if "test" not in data:
        raise ValueError(f"A paired task needs a 'test' split; it has {sorted(data)}.")
    test = data["test"]
    missing = {"source", "target"} - set(test.column_names)
    if missing:
        raise ValueError(f"A paired task needs 'source' and 'target' columns; {sorted(missing)} missing.")
    count = min(settings.task_samples, len(test))
    rows = test.select(range(count))
    references = normalize_reference_texts(list(rows["target"]), tokenizer)
    source_tokens, gen_length = task_lengths(task, settings)
    if gen_length is None:  # the longest reference + its EOS
        gen_length = 1 + max(len(ids) for ids in tokenizer(references, add_special_tokens=False).input_ids)
    return {
        "ids": list(rows["id"]) if "id" in rows.column_names else list(range(count)),
        "sources": cut_to_tokens(list(rows["source"]), tokenizer, source_tokens),
        "references": references,
        "gen_length": gen_length,
    }


def ar_task_prompts(tokenizer, sources: Sequence[str]) -> list[list[int]]:
    """``source [SEP]`` token rows, the layout the AR peer trained on (``tokenize_pairs(concatenate=True)``: no BOS,
    ``[SEP]`` = the end-of-document id, :func:`~latentlm.data.eos_token_id_for`)."""
    from ..data import eos_token_id_for

    sep = eos_token_id_for(tokenizer)
    return [[*ids, sep] for ids in tokenizer(list(sources), add_special_tokens=False).input_ids]


# ---------------------------------------------------------------------------------------------- diffusion knobs


def takes_conditions(pipe) -> bool:
    """Whether ``pipe.__call__`` accepts ``source=`` and ``prompt=`` (explicitly or through ``**kwargs``)."""
    parameters = inspect.signature(pipe.__call__).parameters
    var_keyword = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    return var_keyword or {"source", "prompt"} <= set(parameters)


def default_cfg_scale(pipe) -> float | None:
    """The input-CFG scale ``pipe`` uses by default (its ``guidance_scale`` default, 1.0 = off)."""
    parameter = inspect.signature(pipe.__call__).parameters.get("guidance_scale")
    return None if parameter is None or parameter.default is inspect.Parameter.empty else parameter.default


def conditional_settings(pipe, settings: BenchmarkSettings) -> list[dict]:
    """The conditioned-sampling settings of one pipeline, each once, tagged with its sweeps: ``task_steps`` at the
    default input CFG (``"steps"``), ``cfg_scales`` at ``sweep_steps`` (``"cfg"``)."""
    default = default_cfg_scale(pipe)
    found: dict[tuple, dict] = {}
    entries = [("steps", steps, default) for steps in settings.task_steps]
    entries += [("cfg", settings.sweep_steps, float(scale)) for scale in settings.cfg_scales]
    for sweep, steps, scale in entries:
        key = (steps, default if scale is None else float(scale))
        found.setdefault(key, {"steps": steps, "cfg_scale": scale, "sweeps": []})["sweeps"].append(sweep)
    return list(found.values())


def _diffusion_rows(name, pipe, conditions, *, kind, length, settings, score):
    """Every :func:`conditional_settings` row of one pipeline scored by ``score(texts) -> dict``; ``(rows, None)``,
    or ``([], reason)`` if the pipeline cannot take conditions (its first call raises ``ValueError``,
    ``NotImplementedError`` or ``TypeError``)."""
    if not takes_conditions(pipe):
        return [], f"{type(pipe).__name__} takes no {kind}= argument"
    sc_guidance = default_guidance_scale(pipe) if learns_guidance(pipe) else None
    rows = []
    for setting in conditional_settings(pipe, settings):
        start = time.perf_counter()
        try:
            texts = sample_conditioned(pipe, conditions, kind=kind, length=length, cfg_scale=setting["cfg_scale"],
                                       num_inference_steps=setting["steps"], seed=settings.seed,
                                       batch_size=settings.batch_size)  # fmt: skip
        except (ValueError, NotImplementedError, TypeError) as error:  # TypeError: a pipeline without the argument
            if rows:  # the first call went through: a later failure is a bug, not a missing condition path
                raise
            return [], f"{kind}= rejected: {error}"
        seconds = time.perf_counter() - start
        rows.append({"model": name, "kind": "diffusion", **setting, "sc_guidance_scale": sc_guidance,
                     **score(texts), "generation_seconds": seconds, "examples": texts[:2]})  # fmt: skip
    return rows, None


# ------------------------------------------------------------------------------------------------ paired tasks


def _task_row_scores(texts: list[str], references: list[str], tokenizer) -> dict:
    """BLEU / ROUGE of the generated targets, their mean token count and the number of empty ones."""
    lengths = [len(ids) for ids in tokenizer(texts, add_special_tokens=False).input_ids]
    return {"scores": task_scores(texts, references), "num_empty": sum(not text.strip() for text in texts),
            "mean_tokens": sum(lengths) / len(lengths)}  # fmt: skip


def run_task(task: str, data, pipes: Mapping, ar, settings: BenchmarkSettings, *, speed: bool) -> dict:
    """All rows of one paired task: the AR peer (greedy, nucleus), then every diffusion model's steps and CFG sweeps,
    each with its ratios to the AR peer's greedy scores; then speed rows if ``speed``."""
    tokenizer = next(iter(pipes.values())).tokenizer if pipes else ar[1][1]
    examples = task_examples(task, data, tokenizer, settings)
    sources, references, length = examples["sources"], examples["references"], examples["gen_length"]
    rows, skipped = [], []
    if ar is not None:
        name, (model, ar_tokenizer) = ar
        prompts = ar_task_prompts(ar_tokenizer, sources)
        for decoding, top_p in AR_TASK_DECODING.items():
            start = time.perf_counter()
            new = generate_after(model, ar_tokenizer, prompts, max_new_tokens=length, top_p=top_p,
                                 seed=settings.seed, batch_size=settings.batch_size)  # fmt: skip
            seconds = time.perf_counter() - start
            texts = [ar_tokenizer.decode(ids, skip_special_tokens=True).strip() for ids in new]
            rows.append({"model": name, "kind": "autoregressive", "decoding": decoding, "top_p": top_p,
                         "sweeps": ["baseline"], **_task_row_scores(texts, references, ar_tokenizer),
                         "generation_seconds": seconds, "examples": texts[:2]})  # fmt: skip
    for name, pipe in pipes.items():
        found, reason = _diffusion_rows(
            name, pipe, sources, kind="source", length=length, settings=settings,
            score=lambda texts, pipe=pipe: _task_row_scores(texts, references, pipe.tokenizer),
        )  # fmt: skip
        rows += found
        if reason:
            logger.warning("task %s: %s skipped (%s)", task, name, reason)
            skipped.append({"model": name, "reason": reason})
    peer = next((row for row in rows if row.get("decoding") == "greedy"), None)
    for row in rows:
        if peer is not None:
            row["ratios"] = score_ratios(row["scores"], peer["scores"], SCORE_KEYS)
        logger.info("task %-14s %-40s BLEU %6s  ROUGE-L %6s", task, conditional_row_label(row),
                    _fmt(row["scores"]["bleu"], ".2f"), _fmt(row["scores"]["rougeL"], ".2f"))  # fmt: skip
    result = {"task": task, "metric": TASK_METRIC.get(task, "rougeL"), "num_examples": len(sources),
              "gen_length": length, "rows": rows, "skipped": skipped,
              "examples": [{"id": i, "source": s[:300], "reference": r} for i, s, r in
                           zip(examples["ids"][:2], sources, references)]}  # fmt: skip
    if speed:
        result["speed"] = run_task_speed(
            sources[0], length, pipes, ar, settings, skipped={s["model"] for s in skipped}
        )
    return result


def run_task_speed(source: str, length: int, pipes: Mapping, ar, settings: BenchmarkSettings, skipped=()) -> list:
    """Latency (batch 1, every number of steps) and throughput (batch ``speed_batch_size``, ``sweep_steps``) of one
    conditioned call per diffusion model, and of the AR peer's greedy ``generate`` of exactly ``length`` new tokens
    after ``source [SEP]``; diffusion rows carry their ratios to the AR rows of the same measure."""
    import torch

    rows, ar_rows = [], {}
    if ar is not None:
        name, (model, tokenizer) = ar
        prompt = ar_task_prompts(tokenizer, [source])[0]
        pad = tokenizer.pad_token_id

        def ar_call(batch):
            input_ids = torch.tensor([prompt] * batch, device=next(model.parameters()).device)
            return lambda: model.generate(input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                                          do_sample=False, use_cache=True, min_new_tokens=length,
                                          max_new_tokens=length, pad_token_id=pad)  # fmt: skip

        for measure, batch in (("latency", 1), ("throughput", settings.speed_batch_size)):
            ar_rows[measure] = _measure(ar_call(batch), settings, name, "autoregressive", measure, length, batch, None)
        rows += ar_rows.values()
    for name, pipe in pipes.items():
        if name in skipped:
            continue

        def call(batch, steps, pipe=pipe):
            def run():
                generator = torch.Generator().manual_seed(settings.seed)
                return pipe(source=[source] * batch, gen_length=length, num_inference_steps=steps,
                            generator=generator, output_type="seq").sequences  # fmt: skip

            return run

        for steps in settings.task_steps:
            rows.append(_measure(call(1, steps), settings, name, "diffusion", "latency", length, 1, steps,
                                 ar_row=ar_rows.get("latency")))  # fmt: skip
        batch = settings.speed_batch_size
        rows.append(_measure(call(batch, settings.sweep_steps), settings, name, "diffusion", "throughput", length,
                             batch, settings.sweep_steps, ar_row=ar_rows.get("throughput")))  # fmt: skip
    return rows


def run_tasks(tasks, task_pipes: Mapping, task_ar: Mapping, settings: BenchmarkSettings, *, speed: bool) -> dict:
    """Every paired task: ``tasks`` (names or name -> dataset, see :func:`load_tasks`), the diffusion pipelines and
    AR peer of each (``task_pipes[task]``, ``task_ar[task]``)."""
    return {
        task: run_task(task, data, task_pipes[task], task_ar.get(task), settings, speed=speed)
        for task, data in load_tasks(tasks).items()
    }


# ---------------------------------------------------------------------------------------------- continuation


def continuation_examples(corpus, tokenizer, settings: BenchmarkSettings) -> tuple[list[str], list[str]]:
    """``(prompts, references)``: held-out test chunks of ``prompt_tokens + continuation_tokens`` tokens
    (:func:`held_out_references`); a prompt is the decoded first ``prompt_tokens`` tokens, its reference the whole
    chunk. Chunks whose decoded prompt is not a prefix of the decoded chunk (a tokenizer clean-up across the
    boundary) are passed over."""
    total, wanted = settings.prompt_tokens + settings.continuation_tokens, settings.task_samples
    chunks = held_out_references(corpus, tokenizer, total, [2 * wanted], settings.seed)[0]
    prompts, references = [], []
    for chunk, ids in zip(chunks, tokenizer(chunks, add_special_tokens=False).input_ids):
        prompt = tokenizer.decode(ids[: settings.prompt_tokens], skip_special_tokens=True)
        if chunk.startswith(prompt) and len(chunk) > len(prompt):
            prompts.append(prompt)
            references.append(chunk)
        if len(prompts) == wanted:
            break
    return prompts, references


def _ar_continuations(model, tokenizer, prompts: list[str], settings: BenchmarkSettings, top_p: float) -> list[str]:
    """The AR baseline's texts (prompt + exactly ``continuation_tokens`` new tokens after ``[BOS] prompt``)."""
    bos = bos_token_id_for(model, tokenizer)
    prompt_ids = tokenizer(prompts, add_special_tokens=False).input_ids
    new = generate_after(model, tokenizer, [[bos, *ids] for ids in prompt_ids], top_p=top_p, seed=settings.seed,
                         max_new_tokens=settings.continuation_tokens, min_new_tokens=settings.continuation_tokens,
                         batch_size=settings.batch_size)  # fmt: skip
    texts = []
    for prompt, ids, added in zip(prompts, prompt_ids, new):
        text = tokenizer.decode([*ids, *added], skip_special_tokens=True)
        texts.append(
            text if text.startswith(prompt) else f"{prompt} {tokenizer.decode(added, skip_special_tokens=True)}"
        )
    return texts


def continuation_scores(prompts: list[str], texts: list[str], judge, batch_size: int = 16) -> dict:
    """Judge perplexity of each continuation given its prompt (:func:`continuation_nll`) and the mean unigram
    entropy of the continuations alone (judge tokens); ``num_empty`` continuations are left out of both."""
    model, tokenizer = judge
    continuations = [text[len(prompt) :] for prompt, text in zip(prompts, texts)]
    if not any(continuation.strip() for continuation in continuations):
        return {"ppl": None, "tokens": 0, "entropy": None, "num_empty": len(texts)}
    result = continuation_nll(prompts, texts, model, tokenizer, batch_size=batch_size)
    kept = [continuation for continuation in continuations if continuation.strip()]
    return {"ppl": result.perplexity, "tokens": result.num_tokens, "entropy": unigram_entropy(kept, tokenizer),
            "num_empty": len(texts) - len(kept)}  # fmt: skip


def run_continuation(corpus, pipes: Mapping, ar, judge, settings: BenchmarkSettings) -> dict:
    """Prompt continuation rows: the reference continuations, the AR baseline (ancestral, nucleus), then every
    diffusion model's steps and CFG sweeps; ratios of perplexity to the AR ancestral row and of entropy to the
    reference's."""
    tokenizer = next(iter(pipes.values())).tokenizer if pipes else ar[1][1]
    prompts, references = continuation_examples(corpus, tokenizer, settings)

    def score(texts):
        return {"metrics": continuation_scores(prompts, texts, judge, settings.judge_batch_size)}

    rows = [{"model": "reference", "kind": "reference", "sweeps": ["baseline"], **score(references),
             "generation_seconds": 0.0, "examples": references[:2]}]  # fmt: skip
    if ar is not None:
        name, (model, ar_tokenizer) = ar
        for sampling, top_p in AR_SAMPLING.items():
            start = time.perf_counter()
            texts = _ar_continuations(model, ar_tokenizer, prompts, settings, top_p)
            rows.append({"model": name, "kind": "autoregressive", "sampling": sampling, "top_p": top_p,
                         "sweeps": ["baseline"], **score(texts), "generation_seconds": time.perf_counter() - start,
                         "examples": texts[:2]})  # fmt: skip
    skipped = []
    for name, pipe in pipes.items():
        found, reason = _diffusion_rows(name, pipe, prompts, kind="prompt", length=settings.continuation_tokens,
                                        settings=settings, score=score)  # fmt: skip
        rows += found
        if reason:
            logger.warning("continuation: %s skipped (%s)", name, reason)
            skipped.append({"model": name, "reason": reason})
    peer = next((row for row in rows if row.get("sampling") == "ancestral"), None)
    reference = rows[0]["metrics"]
    for row in rows:
        m = row["metrics"]
        row["ppl_ratio"] = _ratio(m["ppl"], peer["metrics"]["ppl"] if peer else None)
        row["entropy_ratio"] = _ratio(m["entropy"], reference["entropy"])
        logger.info("continuation %-40s ppl %8s  entropy %6s", conditional_row_label(row), _fmt(m["ppl"], ".2f"),
                    _fmt(m["entropy"], ".3f"))  # fmt: skip
    return {"num_prompts": len(prompts), "prompt_tokens": settings.prompt_tokens,
            "continuation_tokens": settings.continuation_tokens, "rows": rows, "skipped": skipped,
            "prompts": prompts[:2]}  # fmt: skip


def _ratio(value, reference):
    return None if value is None or not reference else value / reference


def resolve_task_models(tasks, pipes: Mapping, ar, task_models: Mapping | None, task_ar: Mapping | None, load):
    """Per task: its diffusion pipelines (``task_models[task]``, else the benchmarked ``pipes``) and its AR peer
    (``task_ar[task]``, else ``ar``); ``load(kind, value, name)`` loads a path (``kind``: ``"pipe"`` / ``"ar"``)."""
    names = list(tasks) if not isinstance(tasks, Mapping) else list(tasks.keys())
    unknown = (set(task_models or {}) | set(task_ar or {})) - set(names)
    if unknown:
        raise ValueError(f"task models given for {sorted(unknown)}, which are not among the tasks {names}.")
    task_pipes, peers = {}, {}
    for task in names:
        given = (task_models or {}).get(task)
        task_pipes[task] = {n: load("pipe", v, n) for n, v in given.items()} if given else dict(pipes)
        value = (task_ar or {}).get(task)
        peers[task] = load("ar", value, task) if value is not None else ar
        if not task_pipes[task] and peers[task] is None:
            raise ValueError(f"task {task!r} has no model: give --model / --ar-baseline or task models for it.")
    return task_pipes, peers


__all__ = [
    "AR_TASK_DECODING",
    "continuation_examples",
    "continuation_scores",
    "load_tasks",
    "resolve_task_models",
    "run_continuation",
    "run_task",
    "run_tasks",
    "task_examples",
]
