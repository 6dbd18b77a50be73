"""Atomic, rotating checkpoints that are also loadable models.

Layout of ``<output_dir>/checkpoints/checkpoint-<step>/``::

    model/                   save_pretrained of the unwrapped model (config.json + model.safetensors); for LoRA runs
                             the adapter alone (`latentlm.training.adapters`) plus the base model's config.json: the
                             base weights come from ``init_from`` again on resume
    optimizer.bin            AdamW state                                   (Accelerate, loaded with weights_only)
    scheduler.bin            LR scheduler state                            (Accelerate, loaded with weights_only)
    random_states_0.pkl      Python / NumPy / torch RNG states, one file per process       (idem)
    train_state.json         `TrainState`: the step counter and the data position
    ema.safetensors          `EMA` shadow weights (when ``ema_decay > 0``), its decay and count in ``ema.json``
    manifest.json            size and SHA-256 of every other file, written last

Under FSDP, ``model/`` and ``ema.safetensors`` hold whole tensors gathered from the shards (every process takes part),
and Accelerate adds its own FSDP files (``pytorch_model_fsdp.bin``, ``optimizer.bin``), which restore the shards.

A checkpoint is written into a hidden sibling directory, fsynced, then renamed into place, so a crash mid-save leaves
the previous checkpoints intact and an incomplete one is never mistaken for a complete one. Nothing of latentlm's own
is a pickle (a LoRA run's adapter is safetensors too), and Accelerate's files are loaded with ``weights_only=True``,
so resuming never runs code stored in a checkpoint. On resume the manifest is verified (every file present with its
size and hash, no extra file, finite weights, the adapter's included); ``"latest"`` falls back, with a warning, to the
newest checkpoint that passes. Rotation renames a checkpoint to a hidden name before deleting it, so a kill
mid-rotation never leaves a half-deleted ``checkpoint-N``.
"""

import dataclasses
import hashlib
import json
import logging
import os
import re
import shutil
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import DistributedType
from safetensors.torch import load_file, save_file

from .adapters import load_adapter_weights, save_adapter


logger = logging.getLogger(__name__)

CHECKPOINTS_DIR = "checkpoints"
MODEL_DIR = "model"
MANIFEST_NAME = "manifest.json"
TRAIN_STATE_NAME = "train_state.json"
EMA_WEIGHTS_NAME, EMA_STATE_NAME = "ema.safetensors", "ema.json"
_CHECKPOINT_NAME = re.compile(r"^checkpoint-(\d+)$")


class CheckpointError(ValueError):
    """A checkpoint that is incomplete, damaged, or holds non-finite weights."""


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
        fields = {f.name for f in dataclasses.fields(self)}
        if set(state_dict) != fields or not all(type(v) is int and v >= 0 for v in state_dict.values()):
            raise CheckpointError(f"The train state must hold the integers {sorted(fields)}, got {state_dict!r}.")
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
            return None
        for path in reversed(checkpoints):
            try:
                verify_checkpoint(path)
            except CheckpointError as err:
                logger.warning(f"Skipping damaged checkpoint {path}: {err}")
                continue
            if path != checkpoints[-1]:
                logger.warning(f"Resuming from {path}, the newest intact checkpoint.")
            return path
        raise CheckpointError(
            f"Every checkpoint in {Path(output_dir) / CHECKPOINTS_DIR} is damaged (see the warnings above); "
            "remove them to start anew."
        )
    path = Path(resume_from_checkpoint)
    if not (path / MODEL_DIR / "config.json").is_file():
        raise CheckpointError(
            f"`resume_from_checkpoint`: {path} is not a checkpoint directory (no {MODEL_DIR}/config.json)."
        )
    verify_checkpoint(path)
    return path


def verify_checkpoint(path: str | Path) -> None:
    """Raises `CheckpointError` unless every file of the manifest is there with its size and hash, no other file
    is, and every floating-point tensor of the checkpoint's safetensors files is finite."""
    path = Path(path)
    manifest_file = path / MANIFEST_NAME
    try:
        manifest = json.loads(manifest_file.read_text())
        files = manifest["files"]
    except FileNotFoundError:
        raise CheckpointError(
            f"{path} has no {MANIFEST_NAME}: it was cut short or written by an older latentlm."
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as err:
        raise CheckpointError(f"{manifest_file} is unreadable: {err}") from err
    present = {p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()} - {MANIFEST_NAME}
    if present - files.keys():
        raise CheckpointError(f"{path} holds files its manifest does not list: {sorted(present - files.keys())}.")
    for name, expected in files.items():
        file = path / name
        if not file.is_file():
            raise CheckpointError(f"{file} is missing.")
        if file.stat().st_size != expected["size"] or _sha256(file) != expected["sha256"]:
            raise CheckpointError(f"{file} does not match the manifest (size or SHA-256): it was damaged.")
    for name in files:
        if name.endswith(".safetensors"):
            _check_finite(path / name)


def _check_finite(file: Path) -> None:
    try:
        tensors = load_file(file)
    except Exception as err:  # noqa: BLE001  (safetensors raises its own error type for a bad header)
        raise CheckpointError(f"{file} is unreadable: {err}") from err
    bad = [name for name, t in tensors.items() if torch.is_floating_point(t) and not torch.isfinite(t).all()]
    if bad:
        raise CheckpointError(f"{file} holds NaN or infinite weights ({bad[:3]}): the run had diverged.")


def load_checkpoint(accelerator: Accelerator, path: str | Path, state: TrainState, ema=None) -> None:
    """Restores a verified checkpoint: Accelerate's state (model, optimizer, LR scheduler, RNG), then the train
    state and the EMA, which latentlm stores as JSON and safetensors."""
    from accelerate.utils import load as safe_load  # torch.load with weights_only=True (and NumPy's RNG types)

    path = Path(path)
    rng_file = path / f"random_states_{accelerator.process_index}.pkl"
    try:  # Accelerate would only log an unreadable RNG state at INFO level and let the run diverge
        safe_load(rng_file)
    except Exception as err:  # noqa: BLE001
        raise CheckpointError(f"{rng_file} is missing or unreadable: {err}") from err
    accelerator.load_state(str(path))  # Accelerate's `load` uses weights_only=True for every file it reads
    state.load_state_dict(json.loads((path / TRAIN_STATE_NAME).read_text()))
    if ema is not None:
        if not (path / EMA_WEIGHTS_NAME).is_file():
            raise CheckpointError(f"{path} has no EMA weights but the run keeps an EMA (`ema_decay > 0`).")
        ema.load_state_dict(
            {**json.loads((path / EMA_STATE_NAME).read_text()), "shadow": load_file(path / EMA_WEIGHTS_NAME)}
        )


def _write_own_state(directory: Path, state: TrainState | None, ema_state: dict | None) -> None:
    if state is not None:
        (directory / TRAIN_STATE_NAME).write_text(json.dumps(state.state_dict()))
    if ema_state is not None:
        ema_state = dict(ema_state)
        save_file({k: v.detach().cpu().contiguous() for k, v in ema_state.pop("shadow").items()},
                  directory / EMA_WEIGHTS_NAME)  # fmt: skip
        (directory / EMA_STATE_NAME).write_text(json.dumps(ema_state))


def _write_manifest(directory: Path) -> None:
    files = {
        p.relative_to(directory).as_posix(): {"size": p.stat().st_size, "sha256": _sha256(p)}
        for p in sorted(directory.rglob("*"))
        if p.is_file() and p.name != MANIFEST_NAME
    }
    (directory / MANIFEST_NAME).write_text(json.dumps({"files": files}, indent=1))


def _sha256(file: Path) -> str:
    digest = hashlib.sha256()
    with file.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def save_checkpoint(
    accelerator: Accelerator,
    output_dir: str | Path,
    step: int,
    total_limit: int | None,
    state: TrainState | None = None,
    ema=None,
) -> Path:
    """Saves the full training state as ``checkpoints/checkpoint-<step>`` atomically, then rotates old checkpoints.

    `state` and `ema` (an `EMA`) are written by latentlm itself (JSON and safetensors), then the manifest, last.

    Call on every process (`Accelerator.save_state` is collective); only the main process touches the file system
    otherwise.
    """
    root = Path(output_dir) / CHECKPOINTS_DIR
    final, partial = root / f"checkpoint-{step}", root / f".checkpoint-{step}.partial"
    if accelerator.is_main_process and root.is_dir():
        for leftover in [*root.glob(".checkpoint-*.partial"), *root.glob(".checkpoint-*.deleting"),
                         *root.glob(".checkpoint-*.stale")]:  # fmt: skip
            shutil.rmtree(leftover)  # from a crash mid-save or mid-rotation
    accelerator.wait_for_everyone()
    accelerator.save_state(str(partial))
    ema_state = None if ema is None else ema.state_dict()  # collective under FSDP: it gathers the shards
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        _write_own_state(partial, state, ema_state)
        _write_manifest(partial)
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
        state_dict = full_state_dict(accelerator, models[0])
        if accelerator.is_main_process:
            save_model(model, Path(output_dir) / MODEL_DIR, state_dict)
        if weights:
            weights.pop()

    def load_model_hook(models, input_dir):
        if not models:  # FSDP / DeepSpeed: Accelerate restored the weights from its own files
            return
        model = accelerator.unwrap_model(models[0])
        models.pop()
        if _has_adapters(model):
            load_adapter_weights(model, Path(input_dir) / MODEL_DIR)
            return
        loaded = type(model).from_pretrained(Path(input_dir) / MODEL_DIR)
        model.load_state_dict(loaded.state_dict())

    accelerator.register_save_state_pre_hook(save_model_hook)
    accelerator.register_load_state_pre_hook(load_model_hook)


def full_state_dict(accelerator: Accelerator, model) -> dict[str, torch.Tensor] | None:
    """Under FSDP, the whole weights of a sharded model on the main process (call on every process: gathering the
    shards is collective); None otherwise, where every process holds the whole model."""
    if accelerator.distributed_type != DistributedType.FSDP:
        return None
    return accelerator.get_state_dict(model)


def save_model(model, path: str | Path, state_dict: dict[str, torch.Tensor] | None = None) -> None:
    """``save_pretrained`` (of `state_dict` when given: the gathered weights of a sharded model), or for a PEFT model
    its adapter (`save_adapter`) plus the base model's ``config.json``."""
    if _has_adapters(model):
        save_adapter(model, path)
        model.get_base_model().config.save_pretrained(path)
    else:
        model.save_pretrained(path, state_dict=state_dict)


def _has_adapters(model) -> bool:
    return getattr(model, "peft_config", None) is not None


def _rotate(output_dir: str | Path, total_limit: int | None) -> None:
    checkpoints = list_checkpoints(output_dir)
    if total_limit is None or len(checkpoints) <= total_limit:
        return
    for path in checkpoints[:-total_limit]:
        logger.info(f"Deleting old checkpoint {path}")
        doomed = path.with_name(f".{path.name}.deleting")  # never a half-deleted `checkpoint-N` under its real name
        os.replace(path, doomed)
        shutil.rmtree(doomed)


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
