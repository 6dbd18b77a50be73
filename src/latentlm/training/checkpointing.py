"""Atomic, rotating checkpoints that are also loadable models.

Layout of ``<output_dir>/checkpoints/checkpoint-<step>/``::

    model/                   save_pretrained of the unwrapped model (config.json + model.safetensors); for LoRA runs
                             the adapter alone (`latentlm.training.adapters`) plus the base model's config.json: the
                             base weights come from ``init_from`` again on resume
    optimizer.bin            AdamW state
    scheduler.bin            LR scheduler state
    random_states_0.pkl      Python / NumPy / torch RNG states, one file per process
    custom_checkpoint_0.pkl  `TrainState`: the step counter and the data position
    custom_checkpoint_1.pkl  `EMA` shadow weights (when ``ema_decay > 0``)

A checkpoint is written by `accelerate.Accelerator.save_state` into a hidden sibling directory, fsynced, then renamed
into place, so a crash mid-save leaves the previous checkpoints intact and an incomplete one is never mistaken for a
complete one. The non-model files are Accelerate's own pickles: only resume from checkpoints you wrote yourself.
"""

import dataclasses
import logging
import os
import re
import shutil
from pathlib import Path

from accelerate import Accelerator

from .adapters import load_adapter_weights, save_adapter


logger = logging.getLogger(__name__)

CHECKPOINTS_DIR = "checkpoints"
MODEL_DIR = "model"
_CHECKPOINT_NAME = re.compile(r"^checkpoint-(\d+)$")


@dataclasses.dataclass
class TrainState:
    """What a checkpoint needs beyond Accelerate's own state: the step and where the data stream stands.

    Attributes:
        step: optimizer steps taken.
        epoch: current pass over the training data (it seeds the shuffling order).
        batches_in_epoch: micro-batches of ``epoch`` already consumed on each process.
    """

    step: int = 0
    epoch: int = 0
    batches_in_epoch: int = 0

    def state_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)

    def load_state_dict(self, state_dict: dict[str, int]) -> None:
        for key, value in state_dict.items():
            setattr(self, key, value)


def list_checkpoints(output_dir: str | Path) -> list[Path]:
    """The complete checkpoints of a run, oldest first (half-written ones have a different name and are skipped)."""
    root = Path(output_dir) / CHECKPOINTS_DIR
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), path) for path in root.iterdir() if (m := _CHECKPOINT_NAME.match(path.name))]
    return [path for _, path in sorted(found)]


def resolve_checkpoint(output_dir: str | Path, resume_from_checkpoint: str | None) -> Path | None:
    """Maps ``resume_from_checkpoint`` (None, ``"latest"`` or a path) to a checkpoint directory, or None to start.

    Raises:
        ValueError: when a new run would start in an ``output_dir`` that already holds checkpoints (it would mix two
            runs' checkpoints), or when the path is not a checkpoint.
    """
    checkpoints = list_checkpoints(output_dir)
    if resume_from_checkpoint is None:
        if checkpoints:
            raise ValueError(
                f"{output_dir} already holds checkpoints of another run. Set `resume_from_checkpoint` to 'latest' to "
                "continue it, or choose another `output_dir`."
            )
        return None
    if resume_from_checkpoint == "latest":
        if not checkpoints:
            logger.info(f"No checkpoint in {output_dir}; starting a new run.")
        return checkpoints[-1] if checkpoints else None
    path = Path(resume_from_checkpoint)
    if not (path / MODEL_DIR / "config.json").is_file():
        raise ValueError(
            f"`resume_from_checkpoint`: {path} is not a checkpoint directory (no {MODEL_DIR}/config.json)."
        )
    return path


def save_checkpoint(accelerator: Accelerator, output_dir: str | Path, step: int, total_limit: int | None) -> Path:
    """Saves the full training state as ``checkpoints/checkpoint-<step>`` atomically, then rotates old checkpoints.

    Call on every process (`Accelerator.save_state` is collective); only the main process touches the file system
    otherwise.
    """
    root = Path(output_dir) / CHECKPOINTS_DIR
    final, partial = root / f"checkpoint-{step}", root / f".checkpoint-{step}.partial"
    if accelerator.is_main_process and root.is_dir():
        for leftover in root.glob(".checkpoint-*.partial"):  # from a crash mid-save
            shutil.rmtree(leftover)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(partial))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        _fsync_tree(partial)
        _replace_dir(partial, final)
        _fsync(root)
        _rotate(output_dir, total_limit)
    accelerator.wait_for_everyone()
    return final


def register_model_hooks(accelerator: Accelerator) -> None:
    """Makes `save_state` write the model with ``save_pretrained`` into ``model/`` and `load_state` read it back.

    A checkpoint's ``model/`` folder is then an ordinary model directory (``from_pretrained`` loads it, and its
    config carries anything the model fitted before training). Models with PEFT adapters save and load the adapter
    only (`latentlm.training.adapters`).
    """

    def save_model_hook(models, weights, output_dir):
        model = accelerator.unwrap_model(models[0])
        if accelerator.is_main_process:
            save_model(model, Path(output_dir) / MODEL_DIR)
        if weights:
            weights.pop()

    def load_model_hook(models, input_dir):
        model = accelerator.unwrap_model(models[0])
        models.pop()
        if _has_adapters(model):
            load_adapter_weights(model, Path(input_dir) / MODEL_DIR)
            return
        loaded = type(model).from_pretrained(Path(input_dir) / MODEL_DIR)
        model.load_state_dict(loaded.state_dict())

    accelerator.register_save_state_pre_hook(save_model_hook)
    accelerator.register_load_state_pre_hook(load_model_hook)


def save_model(model, path: str | Path) -> None:
    """``save_pretrained``, or for a PEFT model its adapter (`save_adapter`) plus the base model's ``config.json``."""
    if _has_adapters(model):
        save_adapter(model, path)
        model.get_base_model().config.save_pretrained(path)
    else:
        model.save_pretrained(path)


def _has_adapters(model) -> bool:
    return getattr(model, "peft_config", None) is not None


def _rotate(output_dir: str | Path, total_limit: int | None) -> None:
    checkpoints = list_checkpoints(output_dir)
    if total_limit is None or len(checkpoints) <= total_limit:
        return
    for path in checkpoints[:-total_limit]:
        logger.info(f"Deleting old checkpoint {path}")
        shutil.rmtree(path)


def _replace_dir(source: Path, target: Path) -> None:
    """Renames ``source`` to ``target``; an existing ``target`` (the same step saved again) is moved away first."""
    if target.exists():
        stale = target.with_name(f".{target.name}.stale")
        shutil.rmtree(stale, ignore_errors=True)
        os.replace(target, stale)
        shutil.rmtree(stale)
    os.replace(source, target)


def _fsync_tree(path: Path) -> None:
    for directory, _, files in os.walk(path):
        for name in files:
            _fsync(Path(directory) / name)
        _fsync(Path(directory))


def _fsync(path: Path) -> None:
    if path.is_dir() and os.name != "posix":  # directories cannot be opened for fsync on Windows
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
