"""The ``latentlm`` command.

    latentlm train CONFIG.yaml [--key value ...]
    latentlm sample PATH [--num_samples 4 --num_inference_steps 32 --seed 0 ...]
    latentlm sample PATH --prompt "the government said" [--prompt ...] [--num_return_sequences 2]
    latentlm sample PATH --source "an article" --guidance_scale 2
    latentlm sample --pretrained elf-tiny-prose
    latentlm evaluate samples.jsonl | PIPELINE_DIR
    latentlm bench --model elf=PATH --ar-baseline PATH [--quick]
    latentlm reconstruct --autoencoder ae16=PATH [--autoencoder ...] [--noise-levels 0 0.5 1 ...]

One small function per subcommand; `main` dispatches. Run it as ``latentlm``, ``python -m latentlm.cli`` or, in
several processes, ``accelerate launch --multi_gpu --num_processes N -m latentlm.cli train ...`` (GPUs or CPUs; see
`latentlm.training.distributed` for why ``accelerate launch --cpu`` starts only one).
"""

import argparse
import logging


def _train(args: argparse.Namespace) -> None:
    """``latentlm train``: reads the YAML config, applies the overrides and trains."""
    from .training import load_config, train
    from .training.distributed import LaunchError

    try:
        config = load_config(args.config, args.overrides)
    except ValueError as err:
        raise SystemExit(f"latentlm train: error: {err}") from err
    try:
        train(config)
    except LaunchError as err:
        raise SystemExit(f"latentlm train: error: {err}") from err


def _sample(args: argparse.Namespace) -> None:
    """``latentlm sample``: loads a saved pipeline (a training run's output or a bundled model) and prints samples."""
    import json

    import torch

    from . import pretrained_path
    from .models.backbone import compile_denoiser
    from .pipelines import AutoPipelineForTextGeneration

    if (args.path is None) == (args.pretrained is None):
        raise SystemExit("latentlm sample: error: give either PATH or --pretrained NAME.")
    try:
        path = pretrained_path(args.pretrained) if args.pretrained else args.path
        pipe = AutoPipelineForTextGeneration.from_pretrained(path, dtype=torch.float32)
    except ValueError as err:
        raise SystemExit(f"latentlm sample: error: {err}") from err
    scheduler_overrides = {
        key: getattr(args, key) for key in ("gamma", "time_grid", "solver") if getattr(args, key) is not None
    }
    unknown = sorted(set(scheduler_overrides) - set(pipe.scheduler.config))
    if unknown:
        raise SystemExit(
            f"latentlm sample: error: --{unknown[0]} does not apply to this model's sampler "
            f"({type(pipe.scheduler).__name__}; its settings: {', '.join(sorted(pipe.scheduler.config))})."
        )
    if scheduler_overrides:
        pipe.scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config, **scheduler_overrides)
    pipe.to(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if args.torch_compile:
        compile_denoiser(pipe.model)
    call = dict(
        gen_length=args.gen_length,
        num_inference_steps=args.num_inference_steps,
        num_return_sequences=args.num_return_sequences,
        max_new_tokens=args.max_new_tokens,
        prompt=args.prompt,
        source=args.source,
        guidance_scale=args.guidance_scale,
        sc_guidance_scale=args.sc_guidance_scale,
    )
    if args.prompt is None and args.source is None:
        call["batch_size"] = args.num_samples
    try:
        out = pipe(generator=torch.Generator().manual_seed(args.seed), **call)
    except ValueError as err:
        raise SystemExit(f"latentlm sample: error: {err}") from err
    for i, text in enumerate(out.texts):
        print(f"[{i}] {text}")
    if args.output:
        with open(args.output, "w") as f:
            for text in out.texts:
                f.write(json.dumps({"text": text}) + "\n")


def build_parser() -> argparse.ArgumentParser:
    """The parser of every subcommand; each sets ``func``, the function `main` calls with the parsed arguments."""
    parser = argparse.ArgumentParser(
        prog="latentlm",
        description="Continuous latent diffusion and flow-matching language models.",
        allow_abbrev=False,
    )
    subcommands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = subcommands.add_parser(
        "train",
        help="train or fine-tune a model",
        description="Train a model from a YAML config. Any config key can be overridden as `--key value`; dotted "
        "keys reach into mappings (`--model.hidden_size 64`, `--lora.r 8`).",
        allow_abbrev=False,
    )
    train.add_argument("config", help="YAML file of `latentlm.training.TrainingConfig` fields")
    train.add_argument("overrides", nargs=argparse.REMAINDER, help="`--key value` pairs overriding the config")
    train.set_defaults(func=_train)

    sample = subcommands.add_parser(
        "sample",
        help="generate text with a saved pipeline",
        description="Generate text with a pipeline folder (a training run's output_dir) or a bundled model.",
        allow_abbrev=False,
    )
    sample.add_argument("path", nargs="?", help="a saved pipeline folder")
    sample.add_argument("--pretrained", help="name of a model bundled with the package, e.g. elf-tiny-prose")
    sample.add_argument("--num_samples", type=int, default=4)
    sample.add_argument("--gen_length", type=int, default=None, help="tokens per sample (default: the model's max)")
    sample.add_argument("--num_inference_steps", type=int, default=32)
    sample.add_argument("--prompt", action="append", help="text to continue (repeat for several)")
    sample.add_argument(
        "--source", action="append", help="text to transform, for models trained on pairs (repeatable)"
    )
    sample.add_argument("--num_return_sequences", type=int, default=1, help="samples per prompt or source")
    sample.add_argument("--max_new_tokens", type=int, default=None, help="tokens to generate (same as --gen_length)")
    sample.add_argument(
        "--guidance_scale", type=float, default=1.0, help="classifier-free guidance on the prompt/source (1 = off)"
    )
    sample.add_argument(
        "--sc_guidance_scale", type=float, default=None, help="ELF's learned self-conditioning guidance (default 3)"
    )
    sample.add_argument("--gamma", type=float, default=None, help="ELF's SDE re-injection (0 = ODE)")
    sample.add_argument("--time_grid", choices=["logit_normal", "uniform"], default=None, help="ELF's time grid")
    sample.add_argument(
        "--solver", choices=["euler_maruyama", "probability_flow", "ddim"], default=None, help="Cosmos' sampler"
    )
    sample.add_argument("--torch_compile", action="store_true", help="compile the denoiser with torch.compile")
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    sample.add_argument("--output", help="also write the samples to this JSON-lines file")
    sample.set_defaults(func=_sample)

    from .evaluation.benchmark import (
        add_bench_arguments,
        add_evaluate_arguments,
        run_bench_from_args,
        run_evaluate_from_args,
    )

    bench = subcommands.add_parser(
        "bench", help="quality and speed of diffusion models against the AR baseline", allow_abbrev=False
    )
    add_bench_arguments(bench).set_defaults(func=run_bench_from_args)
    evaluate = subcommands.add_parser(
        "evaluate", help="quality metrics of a file of texts or of a pipeline folder", allow_abbrev=False
    )
    add_evaluate_arguments(evaluate).set_defaults(func=run_evaluate_from_args)

    from .evaluation.reconstruction import add_reconstruct_arguments, run_reconstruct_from_args

    reconstruct = subcommands.add_parser(
        "reconstruct", help="reconstruction accuracy of Cosmos autoencoders under latent noise", allow_abbrev=False
    )
    add_reconstruct_arguments(reconstruct).set_defaults(func=run_reconstruct_from_args)
    return parser


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``latentlm`` console script; ``argv`` defaults to ``sys.argv[1:]``."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    args.func(args)


if __name__ == "__main__":
    main()
