"""`TrainingConfig`: every knob of a training run, read from a YAML file plus command-line overrides.

A run is described by one YAML file whose top-level keys are the fields of `TrainingConfig`; the ``model:`` mapping
holds the keyword arguments of the method's config class (``LlamaConfig`` for ``method: ar``, ``ELFConfig`` for
``method: elf``) and ``lora:`` those of `peft.LoraConfig`. Overrides use the same names, with dots reaching into
mappings::

    latentlm train cfg.yaml --output_dir runs/x --max_steps 100 --model.hidden_size 64 --lora.r 8

Values are parsed with `yaml.safe_load` (``100`` is an int, ``true`` a bool, ``null`` is None, ``[a, b]`` a list).
PyYAML reads ``1e-3`` as a string (YAML 1.1 wants ``1.0e-3``), so strings in scientific notation are read as floats
everywhere, including inside ``model:``.
"""

import dataclasses
import math
import os
import re
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .sources import check_in_memory_dataset, describe_dataset, is_in_memory_dataset


MIXED_PRECISION = ("no", "bf16", "fp16")
REPORT_TO = ("tensorboard", "none")
# `transformers.get_scheduler` names whose `step()` needs no metric and no extra arguments.
CONFIG_NAME = "training_config.yaml"  # the run's config, saved beside its export
OPTIMIZERS = ("adamw", "muon", "adafactor")
MUON_ADJUST_LR_FNS = ("original", "match_rms_adamw")  # `torch.optim.Muon(adjust_lr_fn=...)`
LR_SCHEDULERS = ("constant", "constant_with_warmup", "linear", "cosine", "cosine_with_restarts", "polynomial")
_SCIENTIFIC = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+$")


@dataclass
class TrainingConfig:
    """Configuration of `latentlm.training.train`.

    Model:
        method: registered method name (``"elf"``, ``"ar"``, ... see `latentlm.models.registry`).
        model: keyword arguments of the method's config class. The vocabulary size, the pad/bos/eos token ids
            (bos/eos fall back to the tokenizer's cls/sep tokens) and ``max_position_embeddings = seq_len`` are
            filled from the tokenizer and the data; entries here override them. ``method: ar`` with no size here builds a
            small Llama (`latentlm.models.registry.AR_MODEL_DEFAULTS`: 4 layers of width 256), not ``LlamaConfig()``'s
            6.7B parameters.
        init_from: the pretrained model to fine-tune instead of training from scratch: a pipeline folder (a
            ``latentlm train`` output), a model folder (``config.json``), a Hub id, or a bundled model
            (``"pretrained:elf-tiny-prose"``), see `latentlm.training.sources`; ``model`` entries then override its
            config. A pipeline's tokenizer (and Cosmos' autoencoder) are used unless set here.
        autoencoder: directory of a trained autoencoder for latent diffusion methods (``method: cosmos``, CLI
            ``--autoencoder PATH``); the model's latent shape and vocabulary are read from it.
        tokenizer_name_or_path: tokenizer to load with `AutoTokenizer`; None uses the default encoder's tokenizer
            (`latentlm.models.encoders.default_encoder_path`).
        lora: keyword arguments of `peft.LoraConfig`; when set, only the LoRA parameters are trained.
        gradient_checkpointing: recompute activations in the backward pass to save memory.

    Data:
        dataset: corpus name (``"english-prose"``, ``"brown"``), a `datasets` name, or a builder such as ``"text"``
            used with ``data_files``; from Python also a ``datasets.Dataset`` / ``DatasetDict`` or an iterable of
            texts (saved configs and cards then describe it, e.g. ``in-memory Dataset (1,000 rows)``).
        dataset_config: `datasets` config name.
        text_column: column holding the raw text.
        source_column / target_column: paired data (sequence to sequence): the columns of the source (the
            condition) and of the target; both or neither. Diffusion models train on the target conditioned on the
            source and become conditional; causal LMs train on ``source [SEP] target`` with the loss on the target.
        max_source_length: tokens kept of each source (paired data); with ELF, source and target share the
            denoiser's ``max_source_length + seq_len`` positions.
        data_files: local file(s) for builders such as ``"text"`` or ``"json"``.
        validation_split: fraction of the training texts held out for evaluation when the dataset has no
            ``validation`` split.
        seq_len: length of every training sequence, in tokens.
        packing: concatenate texts and cut them into blocks of ``seq_len`` (no padding) instead of padding each text;
            with ``framing``, split each text into consecutive framed chunks instead of keeping its first chunk.
        framing: frame every sequence with the tokenizer's special tokens, ``[CLS] chunk [SEP] [PAD]...`` with
            ``attention_mask`` 0 on the padding, one document chunk of ``seq_len - 2`` tokens per sequence
            (`latentlm.data.tokenize_and_chunk`), as the official Cosmos code feeds its frozen BERT; False packs
            documents into ``[CLS]``-less blocks (``packing``). None (the default) is the method's default: True for
            ELF and Cosmos (both stages), whose frozen BERT-family encoder reads the text, False otherwise. Configs
            of models trained before this option (the bundled ``elf-tiny-prose``) set ``framing: false``. A Cosmos
            diffusion run (``autoencoder``) takes its autoencoder run's framing, and refuses another. Not used with
            paired data (``source_column``).
        fill_frames: with ``framing`` and ``packing``, fill each framed sequence with consecutive documents, each
            closed by ``[SEP]`` (BERT pre-training style), instead of one document chunk per sequence. For corpora of
            short documents: per-document frames of ``english-large`` are half padding
            (`benchmarks/gpu-h200-training`).
        max_train_samples / max_eval_samples: keep only the first N sequences (quick runs).
        cache_encoder_activations: run the method's frozen encoder over the data once and keep its activations
            on disk with the tokenised sequences (``$LATENTLM_CACHE/encoder-activations``, float16), so training steps
            skip the encoder (ELF, Cosmos). Costs ``seq_len * width * 2`` bytes per sequence.

    Optimisation:
        per_device_train_batch_size / per_device_eval_batch_size: sequences per device and micro-batch.
        total_train_batch_size: sequences per optimizer step over all processes and accumulated micro-batches; when
            set, it replaces ``per_device_train_batch_size`` (= total / (processes x accumulation), which must divide
            evenly), so one config trains the same way on any number of processes.
        gradient_accumulation_steps: micro-batches per optimizer step.
        optimizer: ``"adamw"`` (the default) or ``"muon"``: `torch.optim.Muon` on the 2-D parameters (hidden
            projections and the unembedding head; not embedding tables) and AdamW on the rest, as ELF's official
            training (``lillian039/ELF@pytorch_elf``: Muon, lr 2e-3 constant after warm-up, weight decay 0); see
            `latentlm.training.optimization` for the split and the differences. The ELF paper's AdamW alternative
            is ``optimizer: adamw`` with ``learning_rate: 1.0e-4``, ``adam_beta2: 0.95``. ``"adafactor"``:
            transformers' Adafactor at ``learning_rate`` without a first moment, whose state is a few percent of the
            parameters' size (AdamW's is twice it): for LoRA checkpoints under twice the adapter's size.
        learning_rate, weight_decay, adam_beta1, adam_beta2, adam_epsilon: AdamW (with Muon: the AdamW side); weight
            decay applies to matrices only (not to norms and biases).
        muon_learning_rate: Muon's learning rate; None uses ``learning_rate`` (the official code uses one rate).
        muon_momentum, muon_nesterov, muon_ns_steps: Muon's momentum (0.95), Nesterov momentum (on) and
            Newton-Schulz iterations (5), the official values.
        muon_weight_decay: Muon's decoupled weight decay (0, as the official code).
        muon_output_head: whether the vocabulary projection (``get_output_embeddings()``) is a Muon parameter (True,
            as the official code's ``unembed_kernel``) or an AdamW one (False, as Muon's authors advise).
        muon_adjust_lr_fn: ``"original"`` (step scaled by ``sqrt(max(1, fan_out / fan_in))``, the official and
            Keller Jordan's rule) or ``"match_rms_adamw"`` (Moonshot's ``0.2 sqrt(max(fan_out, fan_in))``, which lets
            Muon reuse AdamW's learning rate).
        lr_scheduler_type: a `transformers.get_scheduler` name, one of `LR_SCHEDULERS`.
        warmup_steps: linear warm-up, in optimizer steps.
        max_steps: number of optimizer steps.
        max_grad_norm: gradient clipping threshold; 0 disables clipping.
        mixed_precision: ``"no"``, ``"bf16"`` or ``"fp16"`` (Accelerate autocast, master weights stay fp32).
        torch_compile: compile the model with `torch.compile` (Accelerate's dynamo plugin, inductor backend); off,
            ``accelerate launch --dynamo_backend`` still applies.
        ema_decay: decay of the exponential moving average of the trained weights, exported at the end; 0 disables.
        seed: seeds model init, data order and training noise; evaluation uses its own generator seeded with it.

    Bookkeeping:
        output_dir: where checkpoints, logs and the final model go.
        eval_steps: evaluate every N steps (and always at the end); None evaluates at the end only.
        eval_batches: number of validation batches per evaluation, the same every time, their sequences spread evenly
            over the whole validation split.
        save_steps: checkpoint every N steps (and always at the end); None checkpoints at the end only.
        save_total_limit: keep the newest N checkpoints; None keeps all.
        logging_steps: log the mean training loss every N steps.
        report_to: ``"tensorboard"`` or ``"none"``; ``train_log.jsonl`` is written either way.
        resume_from_checkpoint: None, ``"latest"`` (the newest complete checkpoint in ``output_dir``, or a fresh
            start when there is none) or the path of a checkpoint directory.
        dataloader_num_workers: worker processes of the data loaders.
    """

    method: str = "elf"
    model: dict[str, Any] = field(default_factory=dict)
    init_from: str | None = None
    autoencoder: str | None = None
    tokenizer_name_or_path: str | None = None
    lora: dict[str, Any] | None = None
    gradient_checkpointing: bool = False

    dataset: Any = "english-prose"  # str, or see `latentlm.training.sources`
    dataset_config: str | None = None
    text_column: str = "text"
    source_column: str | None = None
    target_column: str | None = None
    max_source_length: int = 64
    data_files: str | list | dict | None = None
    validation_split: float = 0.05
    seq_len: int = 128
    packing: bool = True
    framing: bool | None = None
    fill_frames: bool = False
    max_train_samples: int | None = None
    max_eval_samples: int | None = None
    cache_encoder_activations: bool = False

    per_device_train_batch_size: int = 32
    total_train_batch_size: int | None = None
    per_device_eval_batch_size: int = 32
    gradient_accumulation_steps: int = 1
    optimizer: str = "adamw"
    learning_rate: float = 3e-4
    weight_decay: float = 0.01
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_epsilon: float = 1e-8
    muon_learning_rate: float | None = None
    muon_momentum: float = 0.95
    muon_nesterov: bool = True
    muon_ns_steps: int = 5
    muon_weight_decay: float = 0.0
    muon_output_head: bool = True
    muon_adjust_lr_fn: str = "original"
    lr_scheduler_type: str = "constant_with_warmup"
    warmup_steps: int = 0
    max_steps: int = 1000
    max_grad_norm: float = 1.0
    mixed_precision: str = "no"
    torch_compile: bool = False
    ema_decay: float = 0.0
    seed: int = 42

    output_dir: str | None = None
    eval_steps: int | None = 250
    eval_batches: int = 20
    save_steps: int | None = 500
    save_total_limit: int | None = 2
    logging_steps: int = 10
    report_to: str = "tensorboard"
    resume_from_checkpoint: str | None = None
    dataloader_num_workers: int = 0

    def __post_init__(self):
        hints = typing.get_type_hints(type(self))
        if self.mixed_precision is False:  # YAML 1.1 reads an unquoted `no` as False
            self.mixed_precision = "no"
        for f in dataclasses.fields(self):
            if f.name == "dataset":
                in_memory = is_in_memory_dataset(self.dataset)
                self.dataset = (check_in_memory_dataset if in_memory else _coerce_str)(self.dataset)
                continue
            setattr(self, f.name, _coerce(f.name, hints[f.name], getattr(self, f.name)))
        self._validate()

    def _validate(self):
        from ..models.registry import get_method

        get_method(self.method)
        if self.output_dir is None:
            raise ValueError("`output_dir` is required.")
        positive = ("seq_len", "per_device_train_batch_size", "per_device_eval_batch_size")
        positive += ("gradient_accumulation_steps", "max_steps", "logging_steps", "eval_batches", "max_source_length")
        positive += ("muon_ns_steps",)
        optional_positive = ("eval_steps", "save_steps", "save_total_limit", "max_train_samples", "max_eval_samples")
        optional_positive += ("total_train_batch_size", "muon_learning_rate")
        for name in positive + tuple(n for n in optional_positive if getattr(self, n) is not None):
            if getattr(self, name) <= 0:
                raise ValueError(f"`{name}` must be positive, got {getattr(self, name)}.")
        for name in ("warmup_steps", "dataloader_num_workers", "weight_decay", "max_grad_norm", "muon_weight_decay"):
            if getattr(self, name) < 0:
                raise ValueError(f"`{name}` must be non-negative, got {getattr(self, name)}.")
        if self.learning_rate <= 0 or self.adam_epsilon <= 0:
            raise ValueError("`learning_rate` and `adam_epsilon` must be positive.")
        for name in ("adam_beta1", "adam_beta2", "ema_decay", "muon_momentum"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"`{name}` must be in [0, 1), got {getattr(self, name)}.")
        if (self.source_column is None) != (self.target_column is None):
            raise ValueError(
                "`source_column` and `target_column` go together (paired data); got "
                f"source_column={self.source_column!r}, target_column={self.target_column!r}."
            )
        if self.source_column is not None and get_method(self.method).condition_layout is None:
            raise ValueError(f"`source_column`: method {self.method!r} cannot be trained on paired data.")
        if self.source_column is not None and self.framing:
            raise ValueError("`framing` applies to plain text; paired data (`source_column`) has its own layout.")
        if self.autoencoder is not None and self.source_column is None:
            self._match_autoencoder_framing()
        if self.framing is None and self.source_column is None:  # the method's default, recorded in saved configs
            self.framing = get_method(self.method).framed_by_default
        if self.fill_frames and not (self.framing and self.packing):
            raise ValueError(
                "`fill_frames` fills framed, packed sequences with several documents; it needs `framing` and "
                f"`packing` true, got framing={self.framing!r}, packing={self.packing!r}."
            )
        if not 0 < self.validation_split < 1:
            raise ValueError(f"`validation_split` must be in (0, 1), got {self.validation_split}.")
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"`{f.name}` must be a finite number, got {value}.")
        if not is_in_memory_dataset(self.dataset):
            _check_data_file(self.dataset)
        _check_choice("mixed_precision", self.mixed_precision, MIXED_PRECISION)
        _check_choice("report_to", self.report_to, REPORT_TO)
        _check_choice("lr_scheduler_type", self.lr_scheduler_type, LR_SCHEDULERS)
        _check_choice("optimizer", self.optimizer, OPTIMIZERS)
        _check_choice("muon_adjust_lr_fn", self.muon_adjust_lr_fn, MUON_ADJUST_LR_FNS)
        if self.muon_ns_steps >= 100:  # `torch.optim.Muon` would only fail at the first step
            raise ValueError(f"`muon_ns_steps` must be below 100, got {self.muon_ns_steps}.")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "TrainingConfig":
        """Builds a config from a mapping, rejecting unknown keys with the list of valid ones."""
        valid = [f.name for f in dataclasses.fields(cls)]
        for key in values:
            if key not in valid:
                raise ValueError(f"Unknown training config key {key!r}. Valid keys: {', '.join(valid)}.")
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """The fields as plain values; a Python-built ``dataset`` is replaced by its description."""
        if is_in_memory_dataset(self.dataset):
            return dataclasses.asdict(dataclasses.replace(self, dataset=describe_dataset(self.dataset)))
        return dataclasses.asdict(self)

    def _match_autoencoder_framing(self) -> None:
        """A latent diffusion run reads its autoencoder's latents of the sequences the autoencoder was trained on:
        ``framing`` defaults to the autoencoder run's, and a different explicit value is refused; so is a different
        ``fill_frames``."""
        run = _run_config(self.autoencoder)
        if run.get("framing") is None:  # not a `latentlm train` export (or from before `framing`): nothing to match
            return
        autoencoder_framing, autoencoder_fill = bool(run["framing"]), bool(run.get("fill_frames", False))
        if self.fill_frames != autoencoder_fill:
            raise ValueError(
                f"`fill_frames`: the autoencoder {self.autoencoder!r} was trained with fill_frames={autoencoder_fill}, "
                f"so its diffusion run must use the same sequences; got fill_frames={self.fill_frames}."
            )
        if self.framing is None:
            self.framing = autoencoder_framing
        elif self.framing != autoencoder_framing:
            raise ValueError(
                f"`framing`: the autoencoder {self.autoencoder!r} was trained with framing={autoencoder_framing}, "
                f"so its diffusion run must use the same sequences; got framing={self.framing}."
            )

    def save(self, path: str | Path) -> None:
        """Writes the config as YAML (the file `load_config` reads back)."""
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))


def trained_sequence_layout(path: str | os.PathLike) -> tuple[bool, bool]:
    """``(framing, fill_frames)`` of the `latentlm train` run that exported ``path`` (its ``CONFIG_NAME``): the
    sequences its model was trained on. Folders without that file, and runs from before `TrainingConfig.framing`,
    packed: ``(False, False)``."""
    run = _run_config(path)
    return bool(run.get("framing")), bool(run.get("fill_frames"))


def _run_config(path: str | os.PathLike) -> dict:
    """The saved `TrainingConfig` of the run exported to ``path`` as a dict; empty for folders without one. A
    checkpoint's model (``RUN/checkpoints/checkpoint-N/model``) is the run's: it reads ``RUN``'s config."""
    from .checkpointing import CHECKPOINTS_DIR, MODEL_DIR

    path = Path(path)
    candidates = [path]
    if path.name == MODEL_DIR and path.parent.parent.name == CHECKPOINTS_DIR:
        candidates.append(path.parent.parent.parent)
    for folder in candidates:
        if (folder / CONFIG_NAME).is_file():
            return yaml.safe_load((folder / CONFIG_NAME).read_text()) or {}
    return {}


def load_config(path: str | Path | None = None, overrides: Iterable[str] | Mapping[str, Any] = ()) -> TrainingConfig:
    """Reads a YAML config and applies overrides.

    Args:
        path: YAML file whose top-level keys are `TrainingConfig` fields; None starts from the defaults.
        overrides: command-line style ``["--max_steps", "100", "--model.hidden_size=64"]`` or a mapping
            ``{"max_steps": 100, "model.hidden_size": 64}``; dotted keys reach into mappings (``model``, ``lora``).

    Raises:
        ValueError: on an unknown key, a malformed override or an invalid value (the message names the field).
    """
    values = {}
    if path is not None:
        if not Path(path).is_file():
            raise FileNotFoundError(f"No such config file: {str(path)!r}.")
        try:
            values = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except (yaml.YAMLError, UnicodeDecodeError) as err:
            raise ValueError(f"{path} is not a valid YAML file: {err}") from err
        if not isinstance(values, dict):
            raise ValueError(f"{path} must hold a mapping of training config keys, got {type(values).__name__}.")
    values = _read_scientific(values)
    if not isinstance(overrides, Mapping):
        overrides = parse_overrides(overrides)
    for key, value in overrides.items():
        _set_dotted(values, key, _read_scientific(value))
    return TrainingConfig.from_dict(values)


def parse_overrides(args: Iterable[str]) -> dict[str, Any]:
    """Parses ``--key value`` / ``--key=value`` pairs with `yaml.safe_load`; a bare ``--flag`` means ``true``."""
    args, overrides, i = list(args), {}, 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--") or len(arg) == 2:
            raise ValueError(f"Expected an override such as `--max_steps 100`, got {arg!r}.")
        key, has_value, value = arg[2:].partition("=")
        if not has_value:
            has_value = i + 1 < len(args) and not args[i + 1].startswith("--")
            value = args[i + 1] if has_value else "true"
            i += has_value
        overrides[key.replace("-", "_")] = _read_scientific(yaml.safe_load(value)) if value != "" else None
        i += 1
    return overrides


def _set_dotted(values: dict[str, Any], key: str, value: Any) -> None:
    """``values["model"]["hidden_size"] = value`` for ``key = "model.hidden_size"``."""
    *parents, leaf = key.split(".")
    target = values
    for i, parent in enumerate(parents):
        if target.get(parent) is None:
            target[parent] = {}
        if not isinstance(target[parent], dict):
            raise ValueError(f"Cannot set {key!r}: `{'.'.join(parents[: i + 1])}` is not a mapping.")
        target = target[parent]
    target[leaf] = value


def _read_scientific(value: Any) -> Any:
    """Reads strings such as ``"1e-3"`` as floats, recursively through mappings and lists."""
    if isinstance(value, str) and _SCIENTIFIC.match(value):
        return float(value)
    if isinstance(value, dict):
        return {k: _read_scientific(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_read_scientific(v) for v in value]
    return value


def _coerce(name: str, hint: Any, value: Any) -> Any:
    """Checks ``value`` against the field's type hint; ints are accepted (and converted) for float fields."""
    allowed = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    allowed = tuple(typing.get_origin(t) or t for t in allowed)
    if value is None and type(None) in allowed:
        return None
    if float in allowed and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, allowed) and not (isinstance(value, bool) and bool not in allowed):
        return value
    expected = " or ".join("null" if t is type(None) else t.__name__ for t in allowed)
    raise ValueError(f"`{name}` must be {expected}, got {value!r}.")


def _check_data_file(dataset: str) -> None:
    """A local data file must exist, hold something and be UTF-8 (`datasets` would only say that "an error occurred
    while generating the dataset")."""
    from ..hub import looks_like_local_path

    path = Path(dataset).expanduser()
    if not path.exists():
        if looks_like_local_path(dataset) or path.suffix in (".txt", ".json", ".jsonl", ".csv", ".parquet"):
            raise FileNotFoundError(f"`dataset`: no such file or folder: {dataset!r}.")
        return  # a corpus name or a Hub dataset
    if not path.is_file() or path.suffix == ".parquet":
        return
    has_text = False
    try:
        with path.open(encoding="utf-8") as f:
            for chunk in iter(lambda: f.read(1 << 20), ""):
                has_text = has_text or bool(chunk.strip())
    except UnicodeDecodeError as err:
        raise ValueError(
            f"`dataset`: {dataset} is not UTF-8 text ({err.reason} at byte {err.start}); re-encode it as UTF-8."
        ) from err
    if not has_text:
        raise ValueError(f"`dataset`: {dataset} is empty.")


def _coerce_str(value: Any) -> str:
    return _coerce("dataset", str, os.fspath(value) if isinstance(value, os.PathLike) else value)


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {list(choices)}, got {value!r}.")
