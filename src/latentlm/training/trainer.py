"""One Accelerate training loop for every method of the registry.

`train` follows the diffusers / Accelerate example scripts, as a library function: build the tokenizer, data and
model from a `TrainingConfig`, prepare them with Accelerate, run the optimizer (AdamW, or Muon with AdamW as ELF's
official training, see `latentlm.training.optimization`) with warm-up, gradient accumulation and clipping, keep an
EMA, evaluate on a fixed set of validation batches, checkpoint atomically, and export the final
model (or the method's pipeline) to ``output_dir``.

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
from transformers import AutoTokenizer, PreTrainedTokenizerBase, get_scheduler

from ..data import DataCollatorForFixedLength, eos_token_id_for
from ..hub import save_training_card
from ..models.encoders import default_encoder_path
from ..models.registry import MethodSpec, get_method
from ..models.warm_start import pretrained_block_kwargs, skip_warm_start
from .adapters import save_adapter
from .checkpointing import (
    MODEL_DIR,
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
from .sources import PretrainedSource, resolve_init_from


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
    train_dataloader, eval_dataloader = build_dataloaders(config, train_dataset, eval_dataset, accelerator)

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


def load_tokenizer(config: TrainingConfig) -> PreTrainedTokenizerBase:
    """``config.tokenizer_name_or_path``, else the tokenizer of the ``init_from`` pipeline, else the default
    encoder's tokenizer."""
    source = init_source(config)
    pipeline_tokenizer = source.component("tokenizer") if source is not None else None
    return AutoTokenizer.from_pretrained(config.tokenizer_name_or_path or pipeline_tokenizer or default_encoder_path())


def init_source(config: TrainingConfig) -> PretrainedSource | None:
    """The resolved ``init_from`` (a pipeline or model folder, a Hub id or a bundled name), or None.

    Resolved where it is used (tokenizer, model): a Hub id costs one cache lookup each time, and a long-lived
    process never holds a stale snapshot path.
    """
    return resolve_init_from(config.init_from) if config.init_from is not None else None


def build_datasets(config: TrainingConfig, tokenizer: PreTrainedTokenizerBase):
    """Loads the corpus and returns the tokenised ``(train, validation)`` datasets of ``seq_len``-token sequences.

    A corpus without a ``validation`` split gets one: ``validation_split`` of the training texts, chosen with
    ``seed`` (see `latentlm.data.load_text_dataset`).
    """
    from datasets import DatasetDict

    from ..data import load_text_dataset, tokenize_and_chunk, tokenize_pairs

    raw = load_text_dataset(
        config.dataset,
        config_name=config.dataset_config,
        text_column=config.source_column or config.text_column,
        data_files=config.data_files,
        validation_split=config.validation_split,
        seed=config.seed,
    )
    raw = DatasetDict(train=raw["train"], validation=raw["validation"])
    if config.source_column is not None:
        tokenized = tokenize_pairs(
            raw,
            tokenizer,
            source_column=config.source_column,
            target_column=config.target_column,
            target_length=config.seq_len,
            source_length=config.max_source_length,
            concatenate=get_method(config.method).condition_layout == "concatenated",
        )
    else:
        tokenized = tokenize_and_chunk(
            raw,
            tokenizer,
            config.seq_len,
            packing=config.packing,
            framing=config.framing,
            text_column=config.text_column,
            fill_frames=config.fill_frames,
        )
    splits = []
    for name, limit in (("train", config.max_train_samples), ("validation", config.max_eval_samples)):
        dataset = tokenized[name]
        if limit is not None:
            dataset = dataset.select(range(min(limit, len(dataset))))
        if len(dataset) == 0:
            raise ValueError(
                f"The {name} split of {config.to_dict()['dataset']!r} has no sequence of {config.seq_len} tokens."
            )
        splits.append(dataset)
    return tuple(splits)


def collate(examples: list[dict]) -> dict[str, torch.Tensor]:
    """Stacks the token columns (and cached ``encoder_activations``); ``labels`` default to the inputs with padding
    set to -100."""
    batch = DataCollatorForFixedLength()(examples)
    if "labels" not in batch:
        batch["labels"] = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    return batch


def cache_encoder_activations(model, datasets: tuple, accelerator: Accelerator) -> tuple:
    """Adds the frozen encoder's activations to each dataset, computed once and cached on disk (see
    `latentlm.data.add_encoder_activations`); the model's ``forward`` then skips its encoder."""
    from ..data import add_model_encoder_activations

    if not hasattr(model, "encoder_activations"):
        raise ValueError(
            "`cache_encoder_activations` needs a method with a frozen encoder (elf, cosmos, cosmos-autoencoder, ldlm); "
            f"{type(model).__name__} has none."
        )
    return tuple(add_model_encoder_activations(dataset, model, device=accelerator.device) for dataset in datasets)


def eval_subset(config: TrainingConfig, eval_dataset, num_processes: int = 1):
    """The validation sequences every evaluation reads: ``eval_batches`` batches of every process, spread evenly over
    the whole split (validation splits are in document order, and a mix such as english-large lists its sources one
    after another, so the first batches would score one source only)."""
    num_eval = min(config.eval_batches * config.per_device_eval_batch_size * num_processes, len(eval_dataset))
    return eval_dataset.select([i * len(eval_dataset) // num_eval for i in range(num_eval)])


def build_dataloaders(config: TrainingConfig, train_dataset, eval_dataset, accelerator: Accelerator):
    """A shuffled training loader and an evaluation loader (over `eval_subset`).

    Both loaders own a generator, so creating an iterator never draws from the global torch RNG (which would make
    a resumed run diverge from an uninterrupted one). The shuffling order of each epoch is fixed by ``seed`` and the
    epoch number (Accelerate's seedable sampler).
    """
    common = {"collate_fn": collate, "num_workers": config.dataloader_num_workers}
    train_dataloader = DataLoader(
        train_dataset,
        batch_size=config.per_device_train_batch_size,
        shuffle=True,
        drop_last=True,
        generator=torch.Generator().manual_seed(config.seed),
        **common,
    )
    eval_dataloader = DataLoader(
        eval_dataset,
        batch_size=config.per_device_eval_batch_size,
        generator=torch.Generator().manual_seed(config.seed),
        **common,
    )
    return train_dataloader, eval_dataloader


def build_model(spec: MethodSpec, config: TrainingConfig, tokenizer, checkpoint: Path | None = None):
    """The method's training head: from a checkpoint's config (resume), from ``init_from``, or from scratch.

    A LoRA run's checkpoints hold the adapter only: on resume its base weights come from ``init_from`` again.
    """
    if config.lora is not None and config.init_from is None:
        raise ValueError(
            "`lora` fine-tunes a pretrained model: set `init_from` (a folder, a Hub id or `pretrained:<name>`)."
        )
    if checkpoint is not None and config.lora is None:
        with skip_warm_start():  # the checkpoint's weights replace the copy
            return spec.model_class(spec.config_class.from_pretrained(checkpoint / MODEL_DIR))
    _check_model_keys(spec.config_class, config.model)
    if config.init_from is not None and config.model.get("init_denoiser_from") is not None:
        raise ValueError(
            "`model.init_denoiser_from` builds a new denoiser from a pretrained encoder, `init_from` loads a trained "
            "model: set one of them."
        )
    if config.init_from is not None:
        source = init_source(config)
        return spec.model_class.from_pretrained(
            source.model_dir, dtype=torch.float32, **_init_from_overrides(spec, config, source)
        )
    return spec.model_class(spec.config_class(**model_config_kwargs(spec.config_class, tokenizer, config)))


def _init_from_overrides(spec: MethodSpec, config: TrainingConfig, source: PretrainedSource) -> dict:
    """``config.model``, plus the autoencoder of an ``init_from`` pipeline (Cosmos) unless one is set."""
    overrides = dict(config.model)
    autoencoder = config.autoencoder or source.component("autoencoder")
    if autoencoder is not None and "autoencoder_name_or_path" in _config_keys(spec.config_class):
        overrides.setdefault("autoencoder_name_or_path", str(autoencoder))
    return overrides


def model_config_kwargs(config_class: type, tokenizer, config: TrainingConfig) -> dict:
    """Keyword arguments of a new model config: tokenizer- and data-derived values, overridden by ``config.model``
    (or, when that sets none of them, by the method's ``model_defaults``).

    BERT-like tokenizers have no bos/eos tokens; their cls/sep tokens play those roles. An autoregressive model
    trained on packed, unframed documents never sees a BOS: each document follows the previous one's end-of-document
    id, so that id is its ``bos_token_id`` (GPT-2's convention), and ``generate`` starts a text where its training
    documents start. Paired data makes a diffusion model conditional and sizes the positions for source and target
    (see `MethodSpec.condition_layout`).
    """
    eos_token_id = eos_token_id_for(tokenizer)  # the id the data pipeline ends documents with
    packed_documents = config.packing and not config.framing and config.source_column is None
    derived = {
        "vocab_size": len(tokenizer),
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": (
            eos_token_id
            if config.method == "ar" and packed_documents
            else _first_not_none(tokenizer.bos_token_id, tokenizer.cls_token_id)
        ),
        "eos_token_id": eos_token_id,
        "mask_token_id": tokenizer.mask_token_id,  # Cosmos' decoder slots
        "max_position_embeddings": config.seq_len,
    }
    known = _config_keys(config_class)
    condition_width = None
    if config.autoencoder is not None:
        derived.update(_autoencoder_derived(config.autoencoder))
        condition_width = derived.pop("encoder_dim")
    layout = get_method(config.method).condition_layout
    if config.source_column is not None:
        derived["conditional"] = True
        if layout == "in_sequence":
            derived["max_position_embeddings"] = config.max_source_length + config.seq_len
        elif layout == "concatenated":
            derived["max_position_embeddings"] = config.max_source_length + 1 + config.seq_len
    defaults = get_method(config.method).model_defaults
    if any(key in config.model for key in defaults):
        defaults = {}
    # A warm start takes the pretrained encoder's block sizes (`model` entries still win, and must then match it).
    warm_start = config.model.get("init_denoiser_from")
    defaults = {**defaults, **(pretrained_block_kwargs(warm_start) if warm_start is not None else {})}
    kwargs = {**{key: value for key, value in derived.items() if key in known}, **defaults, **config.model}
    # A conditional latent model cross-attends to the autoencoder's frozen-encoder states, whatever its latent width.
    if kwargs.get("conditional") and condition_width is not None and "cross_attention_dim" in known:
        kwargs.setdefault("cross_attention_dim", condition_width)
    return kwargs


def _autoencoder_derived(path: str) -> dict:
    """Config values a latent diffusion model takes from its trained autoencoder (``--autoencoder PATH``)."""
    from transformers import AutoConfig

    try:
        autoencoder = AutoConfig.from_pretrained(path)
    except OSError as err:
        raise ValueError(f"`autoencoder` must be a trained autoencoder folder, got {path!r}: {err}") from err
    shared = ("num_latents", "latent_dim", "vocab_size", "pad_token_id", "bos_token_id", "eos_token_id")
    return {
        "autoencoder_name_or_path": str(path),
        **{key: getattr(autoencoder, key) for key in shared},
        "encoder_dim": getattr(autoencoder, "encoder_dim", None),
    }


def _check_model_keys(config_class: type, model_kwargs: dict) -> None:
    known = _config_keys(config_class)
    unknown = sorted(set(model_kwargs) - known)
    if unknown:
        raise ValueError(
            f"Unknown `model` keys for {config_class.__name__}: {unknown}. Valid keys: {', '.join(sorted(known))}."
        )


def _config_keys(config_class: type) -> set[str]:
    return set(config_class().to_dict())


def _first_not_none(*values):
    return next((value for value in values if value is not None), None)


def apply_lora(model, lora_kwargs: dict):
    """Wraps the model with PEFT LoRA adapters (`peft.LoraConfig(**lora_kwargs)`); only adapters stay trainable."""
    from peft import LoraConfig, get_peft_model

    return get_peft_model(model, LoraConfig(**lora_kwargs))


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
