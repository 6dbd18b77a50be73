"""What defines a benchmark run besides the models: :class:`BenchmarkSettings` (full and ``--quick`` defaults), the
sampling constants, and the protocol in words that ``RESULTS.md`` reproduces."""

from __future__ import annotations

from dataclasses import dataclass, field, replace


AR_SAMPLING = {"ancestral": 1.0, "nucleus": 0.9}  # row name -> top_p (temperature 1, top_k 0 for both)
SAMPLER_KNOBS = ("gamma", "solver")  # scheduler config keys the quality sweeps vary (ELF's gamma, Cosmos' solver)
MAUVE_SEED = 25
# The score each paired task is judged by (the issue-8 targets): ROUGE-L for summaries and glosses, BLEU for verses.
TASK_METRIC = {"bbc-headlines": "rougeL", "kjv-web": "bleu", "wordnet-gloss": "rougeL"}
# (source tokens, target tokens) the paired tasks' models are trained with: max_source_length and seq_len of
# examples/configs/{elf,ar}-{headlines,verses,glosses}.yaml; the default cut of the sources and target length.
TASK_LENGTHS = {"bbc-headlines": (64, 16), "kjv-web": (64, 64), "wordnet-gloss": (16, 32)}
DEFAULT_SOURCE_TOKENS = 64  # latentlm train's max_source_length default, for tasks not in TASK_LENGTHS


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
    batch_slice: int | None = None
    speed_reference: str | None = None
    latency_repeats: int = 5
    throughput_repeats: int = 3
    warmup: int = 1
    matmul_size: int | None = None
    corpus: str = "english-prose"
    device: str = "cpu"
    tasks: tuple[str, ...] = ()
    task_samples: int = 256
    task_steps: tuple[int, ...] = (8, 16, 32)
    cfg_scales: tuple[float, ...] = (1.0, 1.5, 2.0, 3.0, 4.0)
    task_gen_length: int | None = None
    task_source_tokens: int | None = None
    continuation: bool = False
    prompt_tokens: int = 16
    continuation_tokens: int = 48
    notes: list[str] = field(default_factory=list)

    @classmethod
    def defaults(cls, quick: bool) -> BenchmarkSettings:
        """The full protocol, or the ``--quick`` one (a few minutes on a 2-core CPU with a small model)."""
        if not quick:
            return cls()
        return cls(
            quick=True, num_samples=16, gen_length=64, steps=(8, 32), guidance_scales=(1.0, 3.0), gammas=(0.0, 1.5),
            batch_size=16, speed_lengths=(64,), speed_batch_size=8, latency_repeats=3, throughput_repeats=2,
            task_samples=16, task_steps=(8, 32), cfg_scales=(1.0, 2.0, 3.0), prompt_tokens=8, continuation_tokens=32,
        )  # fmt: skip


def resolve_settings(quick: bool, **given) -> BenchmarkSettings:
    """The mode's defaults with every non-``None`` argument applied (sequences become tuples)."""
    unknown = set(given) - set(BenchmarkSettings.__dataclass_fields__)
    if unknown:
        raise TypeError(f"Unknown benchmark settings: {sorted(unknown)}.")
    values = {key: tuple(value) if isinstance(value, (list, tuple)) else value
              for key, value in given.items() if value is not None}  # fmt: skip
    settings = replace(BenchmarkSettings.defaults(quick), **values)
    optional = ("task_source_tokens", "task_gen_length", "batch_slice")
    for name in ("task_samples", "prompt_tokens", "continuation_tokens", *optional):
        value = getattr(settings, name)
        if value is None and name in optional:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    if settings.gen_length < 2:
        raise ValueError(
            f"gen_length must be at least 2 (BOS + one token for the AR baseline), got {settings.gen_length}."
        )
    return settings


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
        "autoregressive": "model.generate from one BOS token (the model's bos: what its training documents start "
        "after, [SEP] for packed documents, [CLS] for framed ones), KV cache, do_sample=True, "
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
        "output_type='seq' (ids, no text decoding), default guidance and sampler"
        + (f", the model on at most {s.batch_slice} sequences at a time (enable_batch_slicing)" if s.batch_slice else "")
        + "; AR: greedy (do_sample=False) "
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
        "and its factored head over the L tokens, Cosmos the autoencoder's Perceiver decompressor and token head "
        "over its L token slots; over the measured time, as a share of the best fp32 torch.mm FLOP/s measured in "
        "the same process.",
        **(conditional_protocol_text(s) if s.tasks or s.continuation else {}),
    }


def task_lengths(task: str, settings: BenchmarkSettings) -> tuple[int, int | None]:
    """``(source tokens, target tokens)`` of a task: the settings' if given, else its :data:`TASK_LENGTHS` recipe
    (source :data:`DEFAULT_SOURCE_TOKENS`, target ``None`` = the longest reference + 1, for other tasks)."""
    source, target = TASK_LENGTHS.get(task, (DEFAULT_SOURCE_TOKENS, None))
    return settings.task_source_tokens or source, settings.task_gen_length or target


def conditional_protocol_text(s: BenchmarkSettings) -> dict[str, str]:
    """The protocol of the conditional rows in words (paired tasks and prompt continuation)."""
    text = {}
    if s.tasks:
        lengths = [task_lengths(task, s) for task in s.tasks]
        cut = ", ".join(f"{task}: {source}" for task, (source, _) in zip(s.tasks, lengths))
        length = ", ".join(
            f"{task}: {target or 'longest reference + 1'}" for task, (_, target) in zip(s.tasks, lengths)
        )
        text["tasks"] = (
            f"paired tasks {', '.join(s.tasks)}: the first {s.task_samples} test pairs (split order); each source cut "
            f"to its first tokens of the models' tokenizer ({cut}), the same text for every model; targets of "
            f"({length}) tokens, EOS cut (defaults: the task recipes' max_source_length and seq_len). Diffusion: pipeline(source=..., gen_length, num_inference_steps, "
            "guidance_scale = input CFG (1 = off), generator=torch.Generator().manual_seed(seed + i) for batch i), "
            f"learned guidance and sampler at their defaults; steps {'/'.join(map(str, s.task_steps))} at the "
            f"pipeline's default input CFG, CFG sweep {'/'.join(f'{w:g}' for w in s.cfg_scales)} at "
            f"{s.sweep_steps} steps. AR peer (causal LM trained on `source [SEP] target`): generate after "
            "source [SEP] (its training layout) until EOS, greedy and nucleus (top_p=0.9, temperature 1, torch.manual_seed(seed + "
            "i)). Scores against the references round-tripped through the tokenizer: corpus BLEU (sacrebleu, "
            "lowercased, 13a) and ROUGE-1/2/L F1 (rouge-score, stemmed, mean over pairs), in percent; ratios are "
            "to the AR peer's greedy row; the main score is "
            + ", ".join(f"{task}: {TASK_METRIC.get(task, 'rougeL')}" for task in s.tasks)
            + ". Speed: latency (batch 1) and throughput (batch "
            f"{s.speed_batch_size}) of one source, diffusion at each number of steps (throughput at {s.sweep_steps}), "
            "the AR peer greedy with exactly as many new tokens (min_new_tokens = max_new_tokens)."
        )
    if s.continuation:
        text["continuation"] = (
            f"{s.task_samples} held-out {s.corpus} test chunks of {s.prompt_tokens + s.continuation_tokens} tokens: "
            f"the first {s.prompt_tokens} are the prompt (round-tripped through the tokenizer), the next "
            f"{s.continuation_tokens} the reference continuation. Diffusion: pipeline(prompt=..., max_new_tokens="
            f"{s.continuation_tokens}, ...) at steps {'/'.join(map(str, s.task_steps))} and the CFG sweep at "
            f"{s.sweep_steps} steps; AR: generate {s.continuation_tokens} new tokens after [BOS] prompt "
            "(min_new_tokens = max_new_tokens), ancestral and nucleus as above. Metrics: judge perplexity of the "
            "continuation given the prompt (prompt + continuation scored whole, only continuation tokens counted), "
            "mean unigram entropy of the continuations (judge tokens); ratios to the AR ancestral row and to the "
            "reference continuations' entropy."
        )
    return text
