"""Reconstruction accuracy of latent codecs (Cosmos autoencoders, LDLM's jointly trained encoder and decoder), clean
and under latent noise: the compression sweep's measurement, and LDLM's report of its latent space.

Cosmos (arXiv 2506.21170) compares autoencoders of several compression ratios L / N, trained with and without the
augmentations that smooth the latent space, by the token accuracy of their reconstructions of held-out text, clean
and with Gaussian noise added to the normalised latents (the diffusion space): a smooth latent space keeps its
accuracy as the noise grows. ``latentlm reconstruct`` (or :func:`run_reconstruction`) writes, to ``out_dir``:

* ``reconstruction.json``: every number, per autoencoder, with its settings, the machine and the command;
* ``reconstruction.md``: a table (rows: autoencoders, columns: noise levels) and the exact command line;
* ``reconstruction.png``: accuracy vs noise level, one line per autoencoder (same N, same colour; augmented solid,
  not augmented dashed).

Protocol: each autoencoder reads the first ``num_sequences`` sequences of ``split`` (default ``test``), tokenised with
its own tokenizer into sequences of its ``max_position_embeddings`` tokens as its training did: framed
(``[CLS] chunk [SEP] [PAD]...``, the default of new Cosmos runs) when the ``training_config.yaml`` that ``latentlm train``
writes beside the export says ``framing: true`` (each frame filled with consecutive documents when it also says
``fill_frames: true``), else packed blocks (older runs, folders without that file). The frozen
encoder's activations are computed once and cached on disk (:func:`latentlm.data.add_encoder_activations`), shared by
the autoencoders with the same tokenizer, length and encoder. An autoencoder saved without latent statistics gets them
from the first ``fit_batches`` batches of the *train* split, never from the evaluated text. The noise is drawn from a
``torch.Generator`` seeded with ``seed``, so every autoencoder of the same latent shape sees the same noise.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import torch

from ._utils import check_positive_int, model_device
from .bench_report import _fmt, _jsonable, _now, _table, command_line, machine_info


logger = logging.getLogger(__name__)

DEFAULT_NOISE_LEVELS = (0.0, 0.25, 0.5, 1.0, 1.5, 2.0)
AUGMENTATION_FIELDS = (
    "activation_mask_fraction",
    "activation_mask_prob",
    "activation_noise_fraction",
    "activation_noise_delta",
    "latent_dropout",
)
FILE_NAMES = {"json": "reconstruction.json", "markdown": "reconstruction.md", "plot": "reconstruction.png"}


# ------------------------------------------------------------------------------------------------- the measurement


def _check_noise_levels(noise_levels) -> list[float]:
    levels = [float(level) for level in noise_levels]
    if not levels:
        raise ValueError("`noise_levels` is empty: give at least one level (0 for the clean reconstruction).")
    bad = [level for level in levels if not math.isfinite(level) or level < 0]
    if bad:
        raise ValueError(f"`noise_levels` must be finite and non-negative, got {bad}.")
    return levels


@torch.no_grad()
def reconstruction_counts(
    autoencoder, batches: Iterable[Mapping[str, torch.Tensor]], noise_levels=(0.0,), *, seed: int = 0
) -> tuple[dict[float, int], int]:
    """Correctly reconstructed real tokens per noise level, and the number of real tokens: the counts behind
    :func:`reconstruction_accuracy` (same arguments)."""
    levels = _check_noise_levels(noise_levels)
    if not autoencoder.has_latent_statistics:
        raise ValueError(
            "The autoencoder's latent statistics are not fitted, so its latents cannot be normalised: call "
            "`autoencoder.fit_latent_statistics(batches)` on training batches first (never on the evaluated text); "
            "`latentlm reconstruct` fits them on the first `--fit-batches` batches of the train split."
        )
    device = model_device(autoencoder)
    generator = torch.Generator().manual_seed(seed)  # on the CPU: the same noise on every device
    correct, total = dict.fromkeys(levels, 0), 0
    was_training = autoencoder.training
    autoencoder.eval()
    try:
        for batch in batches:
            input_ids = torch.as_tensor(batch["input_ids"]).long().to(device)
            mask = batch.get("attention_mask")
            real = torch.ones_like(input_ids, dtype=torch.bool) if mask is None else torch.as_tensor(mask).to(device)
            real = real.bool()
            activations = batch.get("encoder_activations")
            if activations is not None:
                activations = torch.as_tensor(activations).float().to(device)
            latents = autoencoder.encode(
                input_ids, None if mask is None else real.long(), encoder_activations=activations
            )
            normalised = autoencoder.normalize_latents(latents.float())
            noise = torch.randn(normalised.shape, generator=generator).to(device)
            seq_len = input_ids.shape[1]
            for level in levels:
                decoded = autoencoder.denormalize_latents(normalised + level * noise if level else normalised)
                predictions = autoencoder.decode(decoded)[:, :seq_len].argmax(dim=-1)
                correct[level] += int(((predictions == input_ids) & real).sum())
            total += int(real.sum())
    finally:
        autoencoder.train(was_training)
    if total == 0:
        raise ValueError("`batches` held no real tokens (every `attention_mask` is 0, or there was no batch).")
    return correct, total


def reconstruction_accuracy(
    autoencoder, batches: Iterable[Mapping[str, torch.Tensor]], noise_levels=(0.0,), *, seed: int = 0
) -> dict[float, float]:
    """Token accuracy of a codec's reconstructions, clean and with noise on the normalised latents.

    For every batch: clean latents ``z = encode(input_ids, attention_mask, encoder_activations)`` `(batch,
    num_latents, latent_dim)`, normalised ``zn = normalize_latents(z)`` (the diffusion space, standardised per latent
    position and dimension); for each level ``s``, ``logits = decode(denormalize_latents(zn + s * eps))`` `(batch,
    max_position_embeddings, vocab_size)`, whose first ``seq_len`` slots are compared, by argmax, with the input
    tokens. Eval mode (no augmentation), no gradients; the training mode is restored afterwards.

    The noise ``eps ~ N(0, I)``, of the latents' shape, is drawn on the CPU from a ``torch.Generator`` seeded with
    ``seed``, once per batch and shared by every level (common random numbers: the levels differ only by the scale),
    so two autoencoders of the same latent shape see the same noise for the same batches, on any device.

    Args:
        autoencoder: a `CosmosLMAutoencoder` or `LDLMForDiffusion` (whose latents are diffused as encoded:
            its normalisation is the identity) with fitted statistics (``has_latent_statistics``), and either
            its frozen encoder attached or ``encoder_activations`` in every batch.
        batches: dicts of ``input_ids`` `(batch, seq_len <= max_position_embeddings)`, optionally ``attention_mask``
            `(batch, seq_len)` (1 on real tokens, 0 on padding; default all real) and ``encoder_activations``
            `(batch, seq_len, encoder_dim)` (the frozen encoder's raw output; skips the encoder). Tensors or arrays;
            they are moved to the autoencoder's device.
        noise_levels: standard deviations ``s >= 0`` of the noise, in units of the normalised latents (0: clean).
        seed: seed of the noise generator.

    Returns:
        ``{s: accuracy}`` for each level, in the given order: correctly reconstructed real tokens / real tokens.

    Raises:
        ValueError: if the latent statistics are not fitted (fit them with ``fit_latent_statistics`` on training
            batches), ``noise_levels`` is empty or has a negative level, or ``batches`` holds no real token.
    """
    correct, total = reconstruction_counts(autoencoder, batches, noise_levels, seed=seed)
    return {level: count / total for level, count in correct.items()}


# ---------------------------------------------------------------------------------------------------------- data


def augmentation_settings(config) -> dict:
    """The autoencoder's augmentation settings from its config, and ``augmented``: whether any of them acts (a masked
    share, a noised share or latent dropout above 0)."""
    settings = {name: getattr(config, name, 0.0) for name in AUGMENTATION_FIELDS}
    settings["augmented"] = any(
        settings[name] > 0 for name in ("activation_mask_fraction", "activation_noise_fraction", "latent_dropout")
    )
    return settings


def iterate_batches(dataset, batch_size: int):
    """Batches of a fixed-length dataset, in order, stacked by the training loop's collator."""
    from ..data import DataCollatorForFixedLength

    collate = DataCollatorForFixedLength()
    for start in range(0, len(dataset), batch_size):
        yield collate([dataset[i] for i in range(start, min(start + batch_size, len(dataset)))])


class _SequenceSource:
    """Tokenised, encoded sequences of a text dataset, computed once per (tokenizer, length, encoder, split, range)."""

    def __init__(self, corpus, device, batch_size: int):
        self.corpus, self.device, self.batch_size = corpus, torch.device(device), batch_size
        self._tokenized, self._encoded = {}, {}

    def tokenized(self, tokenizer, seq_len: int, split: str, layout: tuple[bool, bool] = (False, False)):
        """``split`` tokenised into sequences of ``seq_len`` tokens with ``layout = (framing, fill_frames)``."""
        from datasets.fingerprint import Hasher

        from ..data import tokenize_and_chunk

        key = (Hasher.hash(tokenizer), seq_len, split, layout)
        if key not in self._tokenized:
            if split not in self.corpus:
                raise ValueError(f"The dataset has no {split!r} split; its splits: {sorted(self.corpus)}.")
            framing, fill_frames = layout
            self._tokenized[key] = tokenize_and_chunk(
                self.corpus[split], tokenizer, seq_len, framing=framing, fill_frames=fill_frames
            )
        return key, self._tokenized[key]

    def sequences(
        self, autoencoder, tokenizer, split: str, start: int, count: int, layout: tuple[bool, bool] = (False, False)
    ):
        """Rows ``start : start + count`` of ``split`` (fewer if the split is shorter), with the encoder's activations
        (cached on disk, one encoder forward for every autoencoder reading the same tokens)."""
        from ..data import add_model_encoder_activations

        seq_len = autoencoder.config.max_position_embeddings
        tokens_key, tokenized = self.tokenized(tokenizer, seq_len, split, layout)
        encoder = autoencoder.load_text_encoder()
        name = getattr(encoder.config, "_name_or_path", "")
        key = (tokens_key, type(encoder).__name__, name, getattr(autoencoder, "encoder_layer", -1), start, count)
        if key not in self._encoded:
            rows = tokenized.select(range(min(start, len(tokenized)), min(start + count, len(tokenized))))
            if len(rows) > 0:
                rows = add_model_encoder_activations(rows, autoencoder, device=self.device, batch_size=self.batch_size)
            self._encoded[key] = rows
        return self._encoded[key]


def load_autoencoder(path, device):
    """A saved codec (float32, eval mode, on ``device``) and its tokenizer. ``path`` is one of:

    * a `CosmosLMAutoencoder` folder (the export of a ``cosmos-autoencoder`` run, or a checkpoint's ``model/``);
    * an LDLM training head, `LDLMForDiffusion` (encoder and decoder; a checkpoint's ``model/``);
    * an LDLM run folder: its export holds no encoder (sampling needs none), so the codec is read from the run's newest
      intact checkpoint, with the EMA weights the export was made from when the run kept an EMA.

    The tokenizer is the one saved with the folder (or the run's ``tokenizer/``), else the frozen encoder's, which
    training uses by default.
    """
    from transformers import AutoTokenizer

    from ..models.encoders import resolve_encoder_path

    path = Path(path)
    folder, ema_weights = _codec_weights(path)
    config = json.loads((folder / "config.json").read_text())
    if config.get("model_type") == "latentlm_ldlm":
        from ..models.ldlm import LDLMForDiffusion

        if "LDLMForDiffusion" not in config.get("architectures", []):
            raise ValueError(
                f"{folder} holds LDLM's denoiser, not its encoder: give the LDLM run folder or a checkpoint's `model/`."
            )
        codec = LDLMForDiffusion.from_pretrained(str(folder), dtype=torch.float32)
        if ema_weights is not None:
            _load_ema_weights(codec, ema_weights)
    else:
        from ..models.cosmos_lm import CosmosLMAutoencoder

        codec = CosmosLMAutoencoder.from_pretrained(str(folder), dtype=torch.float32)
    codec = codec.to(device).eval()
    tokenizer_path = next(
        (str(p) for p in (path, path / "tokenizer") if (p / "tokenizer_config.json").is_file()), None
    )
    if tokenizer_path is None:
        tokenizer_path = resolve_encoder_path(codec.config.encoder_name_or_path)
        logger.warning(f"{path} holds no tokenizer: using the encoder's, {tokenizer_path}.")
    return codec, AutoTokenizer.from_pretrained(tokenizer_path)


def _codec_weights(path: Path) -> tuple[Path, Path | None]:
    """The folder holding a codec's config and weights, and the EMA weights to apply (LDLM runs only)."""
    from ..training.checkpointing import EMA_WEIGHTS_NAME, MODEL_DIR, list_checkpoints, resolve_checkpoint

    if (path / "config.json").is_file():
        return path, None
    if (path / "model_index.json").is_file() and list_checkpoints(path):  # a run: its newest intact checkpoint
        checkpoint = resolve_checkpoint(path, "latest")
        ema_weights = checkpoint / EMA_WEIGHTS_NAME
        return checkpoint / MODEL_DIR, ema_weights if ema_weights.is_file() else None
    raise ValueError(
        f"{path} is neither a codec folder (no config.json) nor a training run with checkpoints: give a Cosmos "
        "autoencoder folder, an LDLM run folder or an LDLM checkpoint's `model/`."
    )


@torch.no_grad()
def _load_ema_weights(model, file: Path) -> None:
    """Copies a checkpoint's EMA averages into ``model`` through the trainer's `EMA` (which refuses a mismatch)."""
    from safetensors.torch import load_file

    from ..training.checkpointing import EMA_STATE_NAME
    from ..training.ema import EMA

    ema = EMA(model, decay=0.0)
    ema.load_state_dict({**json.loads((file.parent / EMA_STATE_NAME).read_text()), "shadow": load_file(file)})
    ema.copy_to(model)


def _resolve_dataset(dataset):
    if isinstance(dataset, (str, os.PathLike)):
        from ..data import load_text_dataset

        return load_text_dataset(dataset, validation_split=None)
    if not isinstance(dataset, Mapping):
        raise ValueError(f"`dataset` must be a name, a path or a DatasetDict, got {type(dataset).__name__}.")
    return dataset


# ------------------------------------------------------------------------------------------------------ the run


def run_reconstruction(
    autoencoders: Mapping[str, str | os.PathLike],
    *,
    dataset="english-prose",
    split: str = "test",
    num_sequences: int = 512,
    noise_levels: Sequence[float] = DEFAULT_NOISE_LEVELS,
    fit_batches: int = 16,
    batch_size: int = 32,
    seed: int = 0,
    device: str = "cpu",
    out_dir: str | os.PathLike = "benchmarks/reconstruction",
    command: str | None = None,
) -> dict:
    """Measures :func:`reconstruction_accuracy` of each saved autoencoder on held-out text and writes
    ``reconstruction.json``, ``reconstruction.md`` and ``reconstruction.png`` to ``out_dir``.

    Args:
        autoencoders: ``{name: path}`` of saved codecs (see :func:`load_autoencoder`: Cosmos autoencoder folders,
            LDLM run folders or LDLM checkpoints' ``model/``).
        dataset: a corpus name, a local file or folder (:func:`latentlm.data.load_text_dataset`, splits as stored),
            or a ``DatasetDict`` with a ``text`` column.
        split: the evaluated split.
        num_sequences: the first sequences of ``split`` that are evaluated (packed blocks of each autoencoder's
            ``max_position_embeddings`` tokens).
        noise_levels: standard deviations of the noise on the normalised latents.
        fit_batches: batches of the train split that fit the latent statistics of an autoencoder saved without
            them (the sequences after the evaluated ones when ``split`` is ``train``).
        batch_size: sequences per forward pass.
        seed: seed of the noise.
        device: where the models run.
        out_dir: where the files go.
        command: the command line recorded in the report.

    Returns:
        The content of ``reconstruction.json`` (with ``paths``, the files written).
    """
    if not autoencoders:
        raise ValueError("`autoencoders` is empty: give at least one `{name: folder}`.")
    check_positive_int(num_sequences, "num_sequences")
    check_positive_int(batch_size, "batch_size")
    if isinstance(fit_batches, bool) or not isinstance(fit_batches, int) or fit_batches < 0:
        raise ValueError(f"fit_batches must be a non-negative integer, got {fit_batches!r}.")
    levels = _check_noise_levels(noise_levels)
    source = _SequenceSource(_resolve_dataset(dataset), device, batch_size)
    from ..training.config import trained_sequence_layout

    rows = {}
    for name, path in autoencoders.items():
        autoencoder, tokenizer = load_autoencoder(path, device)
        config = autoencoder.config
        layout = trained_sequence_layout(path)
        evaluated = source.sequences(autoencoder, tokenizer, split, 0, num_sequences, layout)
        if len(evaluated) == 0:
            raise ValueError(
                f"The {split!r} split has no sequence of {config.max_position_embeddings} tokens for {name!r}."
            )
        if len(evaluated) < num_sequences:
            logger.warning(f"{name}: the {split!r} split has only {len(evaluated)} sequences of "
                           f"{config.max_position_embeddings} tokens; {num_sequences} were asked for.")  # fmt: skip
        statistics = "saved with the model"
        if not autoencoder.has_latent_statistics and fit_batches > 0:
            start = len(evaluated) if split == "train" else 0
            fit = source.sequences(autoencoder, tokenizer, "train", start, fit_batches * batch_size, layout)
            if len(fit) == 0:
                raise ValueError(f"The train split has no sequence left to fit the latent statistics of {name!r}.")
            autoencoder.fit_latent_statistics(
                {key: value.to(device) for key, value in batch.items()} for batch in iterate_batches(fit, batch_size)
            )
            statistics = f"fitted on {len(fit)} train sequences (rows {start} to {start + len(fit) - 1})"
        logger.info(f"{name}: {len(evaluated)} sequences, noise levels {levels}")
        correct, total = reconstruction_counts(autoencoder, iterate_batches(evaluated, batch_size), levels, seed=seed)
        rows[name] = {
            "path": str(path),
            "num_latents": config.num_latents,
            "latent_dim": config.latent_dim,
            "seq_len": config.max_position_embeddings,
            "framing": layout[0],  # framed: the real tokens counted include each sequence's [CLS] and [SEP]
            "fill_frames": layout[1],
            "compression_ratio": config.compression_ratio,
            "augmentation": augmentation_settings(config),
            "latent_statistics": statistics,
            "accuracy": {format(level, "g"): correct[level] / total for level in levels},
            "num_sequences": len(evaluated),
            "num_tokens": total,
            "seed": seed,
            "split": split,
        }
        del autoencoder
    results = {
        "command": command,
        "date": _now(),
        "machine": machine_info(device),
        "settings": {
            "dataset": str(dataset) if isinstance(dataset, (str, os.PathLike)) else type(dataset).__name__,
            "split": split,
            "num_sequences": num_sequences,
            "noise_levels": levels,
            "fit_batches": fit_batches,
            "batch_size": batch_size,
            "seed": seed,
        },
        "autoencoders": rows,
    }
    results["paths"] = write_reconstruction(results, out_dir)
    return _jsonable(results)


# ------------------------------------------------------------------------------------------------------ outputs


def write_reconstruction(results: dict, out_dir) -> dict[str, str]:
    """Writes ``reconstruction.json``, ``reconstruction.png`` and ``reconstruction.md``; returns their paths."""
    import json

    from .plots import plot_reconstruction

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {key: str(out / name) for key, name in FILE_NAMES.items()}
    plot_reconstruction(results, paths["plot"])
    record = {key: value for key, value in results.items() if key != "paths"} | {"paths": paths}
    Path(paths["json"]).write_text(json.dumps(_jsonable(record), indent=2) + "\n")
    Path(paths["markdown"]).write_text(render_reconstruction_markdown(results))
    return paths


def reconstruction_table(results: dict) -> list[str]:
    """The markdown table: one row per autoencoder, one accuracy column per noise level."""
    levels = results["settings"]["noise_levels"]
    header = ["autoencoder", "N", "L / N", "augmented", "tokens"] + [f"σ = {level:g}" for level in levels]
    rows = []
    for name, row in results["autoencoders"].items():
        accuracy = [_fmt(row["accuracy"].get(format(level, "g")), ".4f") for level in levels]
        augmented = "yes" if row["augmentation"]["augmented"] else "no"
        settings = [str(row["num_latents"]), f"{row['compression_ratio']:g}", augmented, str(row["num_tokens"])]
        rows.append([name, *settings, *accuracy])
    return _table(header, rows)


def render_markdown_lines(results: dict) -> list[str]:
    settings, machine = results["settings"], results["machine"]
    hardware = machine.get("gpu") or f"{machine.get('cpu')}, {machine.get('cpu_cores')} cores"
    return [
        "# Reconstruction accuracy under latent noise", "",
        f"- Date: {results['date']}",
        f"- Machine: {hardware}; device `{machine.get('device')}`; {machine.get('platform')}; torch "
        f"{machine.get('torch')}, Python {machine.get('python')}",
        f"- Data: the first {settings['num_sequences']} packed sequences of the `{settings['split']}` split of "
        f"`{settings['dataset']}`, tokenised with each autoencoder's tokenizer at its length (`tokens`: the real "
        "tokens scored)",
        "- Metric: token accuracy (argmax) of `decode(denormalize_latents(normalize_latents(encode(x)) + σ ε))` over "
        f"real tokens; ε ~ N(0, I) from a generator seeded with {settings['seed']}, the same for every autoencoder "
        "of the same latent shape",
        f"- Latent statistics of autoencoders saved without them: the first {settings['fit_batches']} batches of "
        f"{settings['batch_size']} train sequences",
        "", "Command:", "", "```bash", str(results.get("command")), "```", "",
        *reconstruction_table(results), "",
        f"![Reconstruction accuracy vs noise level]({FILE_NAMES['plot']})",
    ]  # fmt: skip


def render_reconstruction_markdown(results: dict) -> str:
    """``reconstruction.md``: how the numbers were made, the command, the table and the plot."""
    return "\n".join(render_markdown_lines(results)).rstrip() + "\n"


# ------------------------------------------------------------------------------------------------------------ CLI


def add_reconstruct_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Arguments of ``latentlm reconstruct`` (see :func:`run_reconstruction`)."""
    from .bench_args import _model_argument

    parser.add_argument("--autoencoder", dest="autoencoders", action="append", type=_model_argument, default=[],
                        metavar="NAME=PATH", help="a Cosmos autoencoder folder, an LDLM run or an LDLM checkpoint's model/ (repeatable)")  # fmt: skip
    parser.add_argument("--dataset", default="english-prose", help="corpus name or local file/folder of texts")
    parser.add_argument("--split", default="test", help="the evaluated split (default test)")
    parser.add_argument("--num-sequences", type=int, default=512, help="first packed sequences of the split")
    parser.add_argument("--noise-levels", type=float, nargs="+", default=list(DEFAULT_NOISE_LEVELS),
                        help="std of the noise on the normalised latents (0 = clean)")  # fmt: skip
    parser.add_argument("--fit-batches", type=int, default=16,
                        help="train batches fitting the latent statistics of an autoencoder saved without them")  # fmt: skip
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0, help="seed of the noise")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--out-dir", default="benchmarks/reconstruction",
                        help="where reconstruction.json / .md / .png go")  # fmt: skip
    return parser


def run_reconstruct_from_args(args: argparse.Namespace) -> dict:
    """Run ``latentlm reconstruct`` from parsed arguments; prints the table and where the files went."""
    if not args.autoencoders:
        raise SystemExit("latentlm reconstruct: error: give at least one --autoencoder NAME=PATH.")
    names = [name for name, _ in args.autoencoders]
    if len(set(names)) != len(names):
        raise SystemExit(f"latentlm reconstruct: error: the autoencoder names must differ, got {names}.")
    try:
        results = run_reconstruction(
            dict(args.autoencoders), dataset=args.dataset, split=args.split, num_sequences=args.num_sequences,
            noise_levels=args.noise_levels, fit_batches=args.fit_batches, batch_size=args.batch_size, seed=args.seed,
            device=args.device, out_dir=args.out_dir, command=getattr(args, "command_line", None) or command_line(),
        )  # fmt: skip
    except ValueError as err:
        raise SystemExit(f"latentlm reconstruct: error: {err}") from err
    print("\n".join(reconstruction_table(results)))
    print(f"Wrote {', '.join(results['paths'].values())}.")
    return results


__all__ = [
    "DEFAULT_NOISE_LEVELS",
    "add_reconstruct_arguments",
    "augmentation_settings",
    "reconstruction_accuracy",
    "reconstruction_counts",
    "run_reconstruct_from_args",
    "run_reconstruction",
    "write_reconstruction",
]
