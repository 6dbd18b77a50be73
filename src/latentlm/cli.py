"""The ``latentlm`` command.

    latentlm train CONFIG.yaml [--key value ...]
    latentlm sample PATH [--num_samples 4 --num_inference_steps N --seed 0 ...]
    latentlm sample PATH --prompt "the government said" [--prompt ...] [--num_return_sequences 2]
    latentlm sample PATH --source "an article" --guidance_scale 2
    latentlm sample --pretrained elf-tiny-prose
    latentlm evaluate samples.jsonl | PIPELINE_DIR
    latentlm bench --model elf=PATH --ar-baseline PATH [--quick]
    latentlm reconstruct --autoencoder ae16=PATH [--autoencoder ...] [--noise-levels 0 0.5 1 ...]
    latentlm likelihood PATH [--corpus english-prose --seq-len 64 --num-draws 4]
    latentlm push FOLDER USER/REPO [--private] [--adapter-only] [--revision BRANCH] [--commit-message MSG]

One small function per subcommand; `main` dispatches. Run it as ``latentlm``, ``python -m latentlm.cli`` or, in
several processes, ``accelerate launch --multi_gpu --num_processes N -m latentlm.cli train ...`` (GPUs or CPUs; see
`latentlm.training.distributed` for why ``accelerate launch --cpu`` starts only one).

Errors print one line, ``latentlm COMMAND: error: ...``, and exit with status 1 (2 for usage errors, 130 for Ctrl-C).
``--debug`` anywhere on the command line, or ``LATENTLM_DEBUG=1``, shows the full traceback instead.
"""

import argparse
import logging
import os
import sys


DEBUG_ENV = "LATENTLM_DEBUG"


def _train(args: argparse.Namespace) -> None:
    """``latentlm train``: reads the YAML config, applies the overrides and trains."""
    from .training import list_checkpoints, load_config, train
    from .training.distributed import LaunchError

    try:
        config = load_config(args.config, args.overrides)
    except ValueError as err:
        raise SystemExit(f"latentlm train: error: {err}") from err
    try:
        train(config)
    except LaunchError as err:
        raise SystemExit(f"latentlm train: error: {err}") from err
    except KeyboardInterrupt:
        checkpoints = list_checkpoints(config.output_dir)
        where = (
            f"the last checkpoint is {checkpoints[-1]} (resume with --resume_from_checkpoint latest)"
            if checkpoints
            else "no checkpoint was written yet"
        )
        print(f"latentlm train: interrupted; {where}.", file=sys.stderr)
        raise SystemExit(130) from None


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
        try:
            pipe.scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config, **scheduler_overrides)
        except ValueError as err:
            raise SystemExit(f"latentlm sample: error: {err}") from err
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


def _push(args: argparse.Namespace) -> None:
    """``latentlm push``: uploads a run's export (or its LoRA adapter) with latentlm's model card."""
    from pathlib import Path

    from .hub import push_to_hub
    from .training.trainer import ADAPTER_DIR

    folder = Path(args.folder)
    if args.adapter_only:
        folder = folder if (folder / "adapter_config.json").is_file() else folder / ADAPTER_DIR
        if not (folder / "adapter_config.json").is_file():
            raise SystemExit(
                f"latentlm push: error: --adapter-only: {args.folder} holds no LoRA adapter ({ADAPTER_DIR}/)."
            )
    try:
        info = push_to_hub(
            folder,
            args.repo_id,
            private=args.private,
            revision=args.revision,
            commit_message=args.commit_message or f"Upload {folder.resolve().name} with latentlm",
        )
    except ValueError as err:
        raise SystemExit(f"latentlm push: error: {err}") from err
    print(getattr(info, "commit_url", info))


def build_parser() -> argparse.ArgumentParser:
    """The parser of every subcommand; each sets ``func``, the function `main` calls with the parsed arguments."""
    from .evaluation.benchmark import positive_int

    parser = argparse.ArgumentParser(
        prog="latentlm",
        description="Continuous latent diffusion and flow-matching language models.",
        allow_abbrev=False,
    )
    parser.add_argument(
        "--debug", action="store_true", help=f"show full tracebacks (also ${DEBUG_ENV}=1; accepted anywhere)"
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
    sample.add_argument("--num_samples", type=positive_int, default=4)
    sample.add_argument(
        "--gen_length", type=positive_int, default=None, help="tokens per sample (default: the model's max)"
    )
    sample.add_argument(
        "--num_inference_steps",
        type=positive_int,
        default=None,
        help="denoising steps (default: the pipeline's: 32, Cosmos 200, or a distilled student's steps)",
    )
    sample.add_argument("--prompt", action="append", help="text to continue (repeat for several)")
    sample.add_argument(
        "--source", action="append", help="text to transform, for models trained on pairs (repeatable)"
    )
    sample.add_argument("--num_return_sequences", type=positive_int, default=1, help="samples per prompt or source")
    sample.add_argument(
        "--max_new_tokens", type=positive_int, default=None, help="tokens to generate (same as --gen_length)"
    )
    sample.add_argument(
        "--guidance_scale", type=float, default=1.0, help="classifier-free guidance on the prompt/source (1 = off)"
    )
    sample.add_argument(
        "--sc_guidance_scale", type=float, default=None, help="ELF's learned self-conditioning guidance (default 3)"
    )
    sample.add_argument("--gamma", type=float, default=None, help="ELF's SDE re-injection (0 = ODE)")
    sample.add_argument(
        "--time_grid", choices=["logit_normal", "logit_normal_random", "uniform"], default=None, help="ELF's time grid"
    )
    sample.add_argument(
        "--solver",
        choices=["euler_maruyama", "probability_flow", "ddim", "sde", "ode", "ancestral"],
        default=None,
        help="Cosmos' sampler (euler_maruyama, probability_flow, ddim) or NFDM's (sde, ode, ancestral)",
    )
    sample.add_argument("--torch_compile", action="store_true", help="compile the denoiser with torch.compile")
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    sample.add_argument("--output", help="also write the samples to this JSON-lines file")
    sample.set_defaults(func=_sample)

    push = subcommands.add_parser(
        "push",
        help="upload a trained model, pipeline or LoRA adapter to the Hub",
        description="Upload FOLDER (a `latentlm train` output_dir, a saved pipeline or model, or an adapter folder) "
        "to the Hub repository REPO_ID with latentlm's model card, in one commit. Checkpoints and logs stay local.",
        allow_abbrev=False,
    )
    push.add_argument("folder", help="the folder to upload")
    push.add_argument("repo_id", help="the Hub repository, user/name (created if needed)")
    push.add_argument("--private", action="store_true", help="create the repository as private")
    push.add_argument("--adapter-only", action="store_true", help="upload the run's LoRA adapter (FOLDER/adapter)")
    push.add_argument("--revision", default=None, help="branch to commit to (created if needed)")
    push.add_argument("--commit-message", default=None)
    push.set_defaults(func=_push)

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
        "reconstruct", help="reconstruction accuracy of Cosmos / LDLM codecs under latent noise", allow_abbrev=False
    )
    add_reconstruct_arguments(reconstruct).set_defaults(func=run_reconstruct_from_args)

    from .evaluation.likelihood import add_likelihood_arguments, run_likelihood_from_args

    likelihood = subcommands.add_parser(
        "likelihood",
        help="held-out bits per token: an NFDM model's ELBO or a causal LM's NLL",
        description="Bits per token on held-out text: the variational bound of a diffusion model that has one (NFDM), "
        "with its Monte Carlo standard error, or the exact NLL of a causal LM (the ar method), on the same blocks.",
        allow_abbrev=False,
    )
    add_likelihood_arguments(likelihood).set_defaults(func=run_likelihood_from_args)
    return parser


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``latentlm`` console script; ``argv`` defaults to ``sys.argv[1:]``.

    A failing command prints one line naming the command and the error and exits with status 1; with ``--debug``
    (anywhere: ``train`` passes the rest of its line on as overrides) or ``LATENTLM_DEBUG=1`` it raises instead.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get(DEBUG_ENV, "").lower() in ("1", "true", "yes")
    argv = [arg for arg in argv if arg != "--debug"]
    args = build_parser().parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    try:
        args.func(args)
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"latentlm {args.command}: interrupted.", file=sys.stderr)
        raise SystemExit(130) from None
    except Exception as err:  # noqa: BLE001  (one line for the user; --debug gives the traceback)
        if debug:
            raise
        message = str(err) or type(err).__name__
        if not isinstance(err, (ValueError, OSError)):
            message = f"{type(err).__name__}: {message}"
        print(f"latentlm {args.command}: error: {message} (run with --debug for the traceback)", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
