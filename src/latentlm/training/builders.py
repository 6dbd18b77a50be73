"""What a training run is built from, given its `TrainingConfig`: the tokenizer, the tokenised splits (with the
frozen encoder's activations cached, when asked) and their data loaders, and the method's training head (from
scratch, from ``init_from``, or from a checkpoint on resume; wrapped in LoRA adapters for a ``lora`` run).

`latentlm.training.train` calls these in order; a benchmark or a test that needs the same tokenizer, data or model
config as a run calls them too.
"""

from pathlib import Path

import torch
from accelerate import Accelerator
from torch.utils.data import DataLoader
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from ..data import DataCollatorForFixedLength, eos_token_id_for
from ..models.encoders import default_encoder_path
from ..models.registry import MethodSpec, get_method
from ..models.warm_start import pretrained_block_kwargs, skip_warm_start
from .checkpointing import MODEL_DIR
from .config import TrainingConfig
from .sources import PretrainedSource, resolve_init_from


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


def build_dataloaders(config: TrainingConfig, train_dataset, eval_dataset):
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
