"""The ``latentlm`` command.

    latentlm train CONFIG.yaml [--key value ...]

One small function per subcommand; `main` dispatches. Run it as ``latentlm``, ``python -m latentlm.cli`` or, on
several devices, ``accelerate launch -m latentlm.cli train ...``.
"""

import argparse
import logging


def _train(args: argparse.Namespace) -> None:
    """``latentlm train``: reads the YAML config, applies the overrides and trains."""
    from .training import load_config, train

    try:
        config = load_config(args.config, args.overrides)
    except ValueError as err:
        raise SystemExit(f"latentlm train: error: {err}") from err
    train(config)


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
    return parser


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``latentlm`` console script; ``argv`` defaults to ``sys.argv[1:]``."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    args.func(args)


if __name__ == "__main__":
    main()
