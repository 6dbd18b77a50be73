"""One Accelerate training loop for every method of the registry.

`train` follows the diffusers / Accelerate example scripts, as a library function: build the tokenizer, data and
model from a `TrainingConfig` (`latentlm.training.builders`), prepare them with Accelerate, run the optimizer (AdamW,
or Muon with AdamW as ELF's official training, see `latentlm.training.optimization`) with warm-up, gradient
accumulation and clipping, keep an EMA, evaluate on a fixed set of validation batches, checkpoint atomically, and
export the final model (or the method's pipeline) to ``output_dir``.

The contract with a method's training head (``MethodSpec.model_class``):

* ``model_class(config)`` builds it; ``model_class.from_pretrained(path)`` loads it.
* ``model(input_ids=..., attention_mask=..., labels=...)`` returns an output with a scalar ``.loss``; any other
  scalar field of the output, and the entries of an optional ``.metrics`` dict, are logged as well.
* Optional ``model.prepare_for_training(dataloader)``: called once per run (also on resume) after the model is moved
  to the training device and before Accelerate wraps it, with the training `DataLoader` (batches on CPU). A method
  uses it to load frozen parts or fit statistics; what it fits belongs in ``model.config`` so that checkpoints and
  the export carry it. On resume the model is rebuilt from the checkpoint's config, so the fitted values are
  already there (or refitted identically, then overwritten by the checkpoint's weights and buffers).
* Optional ``model.model_for_export()``: the model `export` saves in place of the training head (a distillation head
  exports its student as a plain model of the method it distils).
* Optional ``model.load_text_encoder()`` and ``model.encoder_activations(input_ids, attention_mask)``: with
  ``cache_encoder_activations`` the loop runs the frozen encoder once over the data (`cache_encoder_activations`)
  and every batch then carries ``encoder_activations``, which ``forward`` accepts in place of running the encoder.
"""

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.logging import get_logger
from accelerate.utils import DataLoaderConfiguration, ProjectConfiguration, set_seed
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import get_scheduler

from ..hub import save_training_card
from ..models.registry import MethodSpec, get_method
from ..models.warm_start import skip_warm_start
from .adapters import save_adapter
from .builders import (
    apply_lora,
    build_dataloaders,
    build_datasets,
    build_model,
    cache_encoder_activations,
    eval_subset,
    load_tokenizer,
)
from .checkpointing import (
    TrainState,
    full_state_dict,
    load_checkpoint,
    register_model_hooks,
    resolve_checkpoint,
    save_checkpoint,
)
from .config import CONFIG_NAME, TrainingConfig
from .distributed import (
    OutputDirLock,
    check_launch,
    check_lora_sharding,
    check_optimizer_sharding,
    check_sharding,
    per_device_batch_size,
    use_cpu_backend,
)
from .ema import EMA
from .metrics_log import MetricsLog, RunningMean, scalar_metrics
from .optimization import build_optimizer


logger = get_logger(__name__)

LOG_NAME = "train_log.jsonl"
ADAPTER_DIR = "adapter"


@dataclass
class TrainResult:
    """What `train` returns.

    Attributes:
        output_dir: the run directory (checkpoints, logs and the exported model).
        step: optimizer steps taken in total.
        train_loss: mean training loss over the last logging window (None if this call took no step).
        eval_loss: validation loss of the exported weights (the EMA weights when ``ema_decay > 0``).
        checkpoint: the last checkpoint directory.
    """

    output_dir: Path
    step: int
    train_loss: float | None
    eval_loss: float
    checkpoint: Path


def train(config: TrainingConfig) -> TrainResult:
    """Trains ``config.method`` as described by ``config`` and exports the result to ``config.output_dir``.

    Launch with ``python``/``latentlm train`` on one device, and with Accelerate's torchrun launcher on several
    (``accelerate launch --multi_gpu --num_processes N -m latentlm.cli train ...``, or ``torchrun``; on CPUs too,
    see `latentlm.training.distributed`). The main process holds ``output_dir`` (a lock) for the whole run and alone
    writes logs, checkpoints (each process adds its RNG state) and the export. Re-running with
    ``resume_from_checkpoint="latest"`` continues a killed run exactly: the data position, the RNG states, the
    optimizer, scheduler and EMA come back, so the per-step losses match those of an uninterrupted run.
    """
    output_dir = Path(config.output_dir)
    accelerator = Accelerator(
        cpu=use_cpu_backend(),
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        mixed_precision=config.mixed_precision,
        dynamo_backend="inductor" if config.torch_compile else None,
        log_with=None if config.report_to == "none" else config.report_to,
        project_config=ProjectConfiguration(project_dir=str(output_dir), logging_dir=str(output_dir / "logs")),
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True, data_seed=config.seed),
    )
    check_launch(accelerator.num_processes)
    check_sharding(accelerator.distributed_type.value)
    check_optimizer_sharding(config.optimizer, accelerator.distributed_type.value)
    check_lora_sharding(config.lora is not None, accelerator.distributed_type.value)
    per_device = per_device_batch_size(
        config.total_train_batch_size,
        config.per_device_train_batch_size,
        accelerator.num_processes,
        config.gradient_accumulation_steps,
    )
    config = dataclasses.replace(config, per_device_train_batch_size=per_device)
    lock = OutputDirLock(output_dir).acquire() if accelerator.is_main_process else None
    try:
        return _train(config, accelerator)
    finally:
        if lock is not None:
            lock.release()


def _train(config: TrainingConfig, accelerator: Accelerator) -> TrainResult:
    """`train` once the processes have joined and the main process holds ``output_dir``."""
    spec = get_method(config.method)
    output_dir = Path(config.output_dir)
    _quiet_other_processes(accelerator)
    set_seed(config.seed)
    checkpoint = resolve_checkpoint(output_dir, config.resume_from_checkpoint)
    if accelerator.is_main_process:
        config.save(output_dir / CONFIG_NAME)

    with accelerator.main_process_first():
        tokenizer = load_tokenizer(config)
        train_dataset, eval_dataset = build_datasets(config, tokenizer)
    eval_dataset = eval_subset(config, eval_dataset, accelerator.num_processes)
    model = build_model(spec, config, tokenizer, checkpoint).to(accelerator.device)
    if config.cache_encoder_activations:
        with accelerator.main_process_first():
            train_dataset, eval_dataset = cache_encoder_activations(model, (train_dataset, eval_dataset), accelerator)
    train_dataloader, eval_dataloader = build_dataloaders(config, train_dataset, eval_dataset)

    if config.gradient_checkpointing:
        # transformers >= 5.x renamed gradient_checkpointing_enable; accept both.
        (getattr(model, "activation_checkpointing_enable", None) or model.gradient_checkpointing_enable)()
    if hasattr(model, "prepare_for_training"):
        model.prepare_for_training(train_dataloader)
    if config.lora is not None:
        model = apply_lora(model, config.lora)
    optimizer = build_optimizer(model, config)
    lr_scheduler = get_scheduler(
        config.lr_scheduler_type,
        optimizer,
        # The prepared scheduler steps once per process and optimizer step.
        num_warmup_steps=config.warmup_steps * accelerator.num_processes,
        num_training_steps=config.max_steps * accelerator.num_processes,
    )
    model, optimizer, train_dataloader, eval_dataloader, lr_scheduler = accelerator.prepare(
        model, optimizer, train_dataloader, eval_dataloader, lr_scheduler
    )
    ema = EMA(accelerator.unwrap_model(model), config.ema_decay) if config.ema_decay > 0 else None  # FSDP: shards
    # Every process built the same model from `seed`; from here on each draws its own training noise (diffusion
    # time, noise, dropout), else the processes of one step would share it. One process keeps the stream of `seed`.
    set_seed(config.seed, device_specific=True)
    if len(train_dataloader) == 0:
        raise ValueError(
            f"The training split has {len(train_dataset)} sequences, fewer than one batch of "
            f"{config.per_device_train_batch_size} x {accelerator.num_processes} processes."
        )

    state = TrainState()
    register_model_hooks(accelerator)
    if checkpoint is not None:
        logger.info(f"Resuming from {checkpoint}")
        load_checkpoint(accelerator, checkpoint, state, ema)
    resumed_step = state.step
    accelerator.init_trackers("latentlm", config=_flat_scalars(config.to_dict()))
    metrics = MetricsLog(accelerator, output_dir / LOG_NAME, resume_step=state.step)
    prepared = (model, optimizer, lr_scheduler, train_dataloader, eval_dataloader)
    run = _Run(config, accelerator, *prepared, ema, state, metrics)

    logger.info(
        f"Training {config.method} ({_num_params(model)}) for {config.max_steps} steps of "
        f"{config.per_device_train_batch_size * accelerator.num_processes * config.gradient_accumulation_steps} "
        f"sequences of {config.seq_len} tokens; {len(train_dataset)} training sequences."
    )
    train_loss, eval_loss = _train_loop(run)
    if checkpoint is None or state.step != resumed_step:
        checkpoint = save_checkpoint(accelerator, output_dir, state.step, config.save_total_limit, state, ema)

    unwrapped = accelerator.unwrap_model(model)
    if ema is not None:
        ema.copy_to(unwrapped)
        eval_loss = evaluate(model, eval_dataloader, accelerator, config.seed)
        metrics.log(state.step, {"ema_eval_loss": eval_loss})
    elif eval_loss is None:
        eval_loss = evaluate(model, eval_dataloader, accelerator, config.seed)
    accelerator.wait_for_everyone()
    final = _whole_model(accelerator, model, spec)
    if accelerator.is_main_process:
        export(final, tokenizer, spec, output_dir)
        save_training_card(output_dir, final, config, eval_loss=eval_loss, num_processes=accelerator.num_processes)
    accelerator.end_training()
    logger.info(f"Step {state.step}: train loss {train_loss}, eval loss {eval_loss:.4f}. Exported to {output_dir}")
    return TrainResult(output_dir, state.step, train_loss, eval_loss, checkpoint)


@dataclass
class _Run:
    """What the training loop works with: the config and the prepared objects."""

    config: TrainingConfig
    accelerator: Accelerator
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    lr_scheduler: Any
    train_dataloader: DataLoader
    eval_dataloader: DataLoader
    ema: EMA | None
    state: TrainState
    metrics: "MetricsLog"


def _train_loop(run: _Run) -> tuple[float | None, float | None]:
    """Runs optimizer steps until ``max_steps``; returns the last logged training loss and evaluation loss."""
    config, accelerator, model, state = run.config, run.accelerator, run.model, run.state
    running, grad_norm, train_loss, eval_loss = RunningMean(), None, None, None
    max_norm = config.max_grad_norm or math.inf  # still measure the norm when clipping is off
    progress = tqdm(
        total=config.max_steps, initial=state.step, desc="Steps", disable=not accelerator.is_local_main_process
    )
    model.train()
    while state.step < config.max_steps:
        run.train_dataloader.set_epoch(state.epoch)
        batches = run.train_dataloader
        if state.batches_in_epoch > 0:  # resuming mid-epoch
            batches = accelerator.skip_first_batches(run.train_dataloader, state.batches_in_epoch)
        for batch in batches:
            with accelerator.accumulate(model):
                output = model(**batch)
                accelerator.backward(output.loss)
                if accelerator.sync_gradients:
                    grad_norm = accelerator.clip_grad_norm_(model.parameters(), max_norm)
                run.optimizer.step()
                run.lr_scheduler.step()
                run.optimizer.zero_grad(set_to_none=True)
            running.add({"loss": output.loss, **scalar_metrics(output)})
            state.batches_in_epoch += 1
            if not accelerator.sync_gradients:
                continue

            state.step += 1
            progress.update(1)
            if run.ema is not None:
                run.ema.update(accelerator.unwrap_model(model))
            done = state.step >= config.max_steps
            if state.step % config.logging_steps == 0 or done:
                values = {**running.pop(accelerator), "lr": run.lr_scheduler.get_last_lr()[0]}
                if grad_norm is not None:
                    values["grad_norm"] = float(grad_norm)
                run.metrics.log(state.step, values)
                progress.set_postfix(loss=f"{values['loss']:.4f}", lr=f"{values['lr']:.2e}")
                train_loss = values["loss"]
            if (config.eval_steps and state.step % config.eval_steps == 0) or done:
                eval_loss = evaluate(model, run.eval_dataloader, accelerator, config.seed)
                run.metrics.log(state.step, {"eval_loss": eval_loss})
            if config.save_steps and state.step % config.save_steps == 0 and not done:
                save_checkpoint(accelerator, config.output_dir, state.step, config.save_total_limit, state, run.ema)
            if done:
                break
        else:
            state.epoch += 1
            state.batches_in_epoch = 0
    progress.close()
    return train_loss, eval_loss


@torch.no_grad()
def evaluate(model, dataloader, accelerator: Accelerator, seed: int) -> float:
    """Mean loss over ``dataloader`` with the model's randomness (diffusion time, noise) drawn from ``seed``.

    The global RNG is forked, so evaluating leaves training randomness untouched and the number is comparable
    across steps and runs.
    """
    model.eval()
    device = accelerator.device
    losses = []
    with torch.random.fork_rng(devices=[] if device.type == "cpu" else [device], device_type=device.type):
        torch.manual_seed(seed)
        for batch in dataloader:
            losses.append(accelerator.gather(model(**batch).loss.detach().float().reshape(1)))
    model.train()
    return torch.cat(losses).mean().item()


def _whole_model(accelerator: Accelerator, model, spec: MethodSpec):
    """The trained model with whole weights on the main process. Under FSDP every process takes part in gathering
    the shards, and the main process loads them into a fresh model of the same config (None on the others)."""
    unwrapped = accelerator.unwrap_model(model)
    state_dict = full_state_dict(accelerator, model)
    if state_dict is None:
        return unwrapped
    if not accelerator.is_main_process:
        return None
    with skip_warm_start():
        whole = spec.model_class(unwrapped.config)
    whole.load_state_dict(state_dict)
    return whole


def export(model, tokenizer, spec: MethodSpec, output_dir: Path) -> None:
    """Saves the final model to ``output_dir``: the method's pipeline if it has one, else model + tokenizer.

    LoRA runs also save the adapter alone in ``output_dir/adapter`` (`save_adapter`; ``pipe.load_lora_weights``
    reads it) and export the merged weights.
    """
    if getattr(model, "peft_config", None) is not None:
        save_adapter(model, output_dir / ADAPTER_DIR)
        model = model.merge_and_unload()
    if hasattr(model, "model_for_export"):
        model = model.model_for_export()
    if spec.pipeline_class is None:
        model.save_pretrained(output_dir)
        tokenizer.save_pretrained(output_dir)
    else:
        from .. import pipelines

        getattr(pipelines, spec.pipeline_class).from_model(model, tokenizer).save_pretrained(output_dir)


def _flat_scalars(values: dict, prefix: str = "") -> dict:
    """Flattens nested mappings to ``a.b`` keys and keeps the values TensorBoard's hparams accept."""
    flat = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(_flat_scalars(value, f"{prefix}{key}."))
        elif isinstance(value, (int, float, str, bool)):
            flat[f"{prefix}{key}"] = value
    return flat


def _num_params(model) -> str:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return f"{total / 1e6:.2f}M parameters, {trainable / 1e6:.2f}M trainable"


def _quiet_other_processes(accelerator: Accelerator) -> None:
    if not accelerator.is_local_main_process:
        import datasets
        import transformers

        datasets.utils.logging.set_verbosity_error()
        transformers.utils.logging.set_verbosity_error()
