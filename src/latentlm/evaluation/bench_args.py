"""The command line of ``latentlm bench``: its arguments (unconditional quality and speed, paired tasks, prompt
continuation). :func:`~latentlm.evaluation.benchmark.run_bench_from_args` runs them."""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def _model_argument(value: str) -> tuple[str, str]:
    """``NAME=PATH`` or ``PATH`` (named after the folder)."""
    from ..hub import looks_like_local_path

    name, path = value.split("=", 1) if "=" in value and not os.path.exists(value) else (Path(value).name, value)
    if looks_like_local_path(path) and not os.path.exists(os.path.expanduser(path)):
        raise argparse.ArgumentTypeError(f"no such folder: {path!r}")
    return name, path


def positive_int(value: str) -> int:
    """argparse type: a positive integer (``--num-samples 0`` is an error, not an empty run)."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}") from None
    if number <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}")
    return number


def add_bench_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Arguments of ``latentlm bench`` (see :func:`run_benchmark`); ``None`` defaults mean the mode's default."""
    parser.add_argument("--model", dest="models", action="append", type=_model_argument, default=[],
                        metavar="NAME=PATH", help="a diffusion pipeline folder (repeatable)")  # fmt: skip
    parser.add_argument("--ar-baseline", help="the autoregressive baseline's folder (transformers causal LM)")
    parser.add_argument("--out-dir", default="benchmarks", help="where RESULTS.md, results.json and plots go")
    parser.add_argument("--quick", action="store_true", help="the few-minute protocol (16 samples, 64 tokens, ...)")
    parser.add_argument("--num-samples", type=positive_int)
    parser.add_argument("--gen-length", type=positive_int)
    parser.add_argument("--steps", type=positive_int, nargs="+")
    parser.add_argument("--guidance-scales", type=float, nargs="+",
                        help="sweep of the guidance the model learned (ELF's self-conditioning guidance, the "
                        "pipeline's sc_guidance_scale); models without one have no such rows")  # fmt: skip
    parser.add_argument("--gammas", type=float, nargs="+", help="gamma sweep (schedulers with a gamma, ELF)")
    parser.add_argument("--solvers", nargs="+", metavar="SOLVER",
                        help="solver sweep for schedulers with a solver (Cosmos: euler_maruyama probability_flow "
                        "ddim); default none")  # fmt: skip
    parser.add_argument("--sweep-steps", type=int, help="steps of the guidance, gamma and solver sweeps (default 32)")
    parser.add_argument("--batch-size", type=positive_int, help="generation batch size of the quality rows")
    parser.add_argument("--speed-lengths", type=int, nargs="+", help="token counts of the speed tables")
    parser.add_argument("--speed-batch-size", type=int, help="batch size of the throughput measurement")
    parser.add_argument("--batch-slice", type=positive_int, metavar="N",
                        help="diffusion pipelines run their model on at most N sequences at a time "
                        "(pipe.enable_batch_slicing(N); faster for large batches on CPUs); default off")  # fmt: skip
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
    parser.add_argument("--no-quality", dest="quality", action="store_false",
                        help="no unconditional quality rows (e.g. to run only --task / --continuation)")  # fmt: skip
    add_conditional_arguments(parser)
    return parser


def _task_model_argument(value: str) -> tuple[str, str, str]:
    """``TASK:NAME=PATH`` or ``TASK:PATH`` (named after the folder)."""
    task, sep, rest = value.partition(":")
    if not sep or not task or not rest:
        raise argparse.ArgumentTypeError(f"expected TASK:NAME=PATH, got {value!r}")
    return (task, *_model_argument(rest))


def _task_ar_argument(value: str) -> tuple[str, str]:
    task, sep, path = value.partition("=")
    if not sep or not task or not path:
        raise argparse.ArgumentTypeError(f"expected TASK=PATH, got {value!r}")
    return task, path


def add_conditional_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The conditional-generation arguments of ``latentlm bench`` (paired tasks, prompt continuation)."""
    group = parser.add_argument_group("conditional generation (paired tasks, prompt continuation)")
    group.add_argument("--task", dest="tasks", action="append", default=[], metavar="TASK",
                       help="a paired task to score with BLEU / ROUGE: bbc-headlines, kjv-web, wordnet-gloss "
                       "(repeatable)")  # fmt: skip
    group.add_argument("--task-model", dest="task_models", action="append", type=_task_model_argument, default=[],
                       metavar="TASK:NAME=PATH", help="a diffusion pipeline trained on TASK (repeatable); a task "
                       "without one is run with the --model models")  # fmt: skip
    group.add_argument("--task-ar", dest="task_ar", action="append", type=_task_ar_argument, default=[],
                       metavar="TASK=PATH", help="TASK's AR peer (causal LM trained on source [SEP] target); "
                       "default: --ar-baseline")  # fmt: skip
    group.add_argument("--task-samples", type=positive_int, help="test pairs / prompts per row (default 256, quick 16)")
    group.add_argument("--task-steps", type=positive_int, nargs="+", help="steps of the task rows (default 8 16 32)")
    group.add_argument("--cfg-scales", type=float, nargs="+",
                       help="input classifier-free guidance sweep at --sweep-steps (the pipeline's guidance_scale; "
                       "1 = off; default 1 1.5 2 3 4, quick 1 2 3)")  # fmt: skip
    group.add_argument("--task-gen-length", type=positive_int,
                       help="target tokens (default: the task recipe's seq_len, bbc-headlines 24, kjv-web 48, "
                       "wordnet-gloss 32; other tasks the longest reference + 1)")  # fmt: skip
    group.add_argument("--task-source-tokens", type=positive_int,
                       help="sources cut to this many tokens for every model (default: the task recipe's "
                       "max_source_length, bbc-headlines 64, kjv-web 64, wordnet-gloss 16; other tasks 64)")  # fmt: skip
    group.add_argument("--continuation", action="store_true", default=None,
                       help="prompt continuation rows on --corpus with the --model models and --ar-baseline")  # fmt: skip
    group.add_argument("--prompt-tokens", type=positive_int, help="prompt length of the continuation rows (default 16)")
    group.add_argument("--continuation-tokens", type=positive_int, help="continuation length (default 48, quick 32)")
    return parser


BENCH_OVERRIDES = ("sweep_steps", "batch_size", "batch_slice", "speed_lengths", "speed_batch_size",
                   "latency_repeats", "throughput_repeats", "matmul_size", "judge_batch_size", "mauve",
                   "task_samples", "task_steps", "cfg_scales", "task_gen_length", "task_source_tokens",
                   "continuation", "prompt_tokens", "continuation_tokens")  # fmt: skip
