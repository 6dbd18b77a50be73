"""Model cards and Hub uploads for latentlm models.

```python
from latentlm.hub import push_to_hub, save_model_card

save_model_card("runs/elf-small", model_name="elf-small", method="elf", base_info={"num_parameters": 11_030_000})
push_to_hub("runs/elf-small", "me/elf-small")  # writes a card first if the folder has none
```

The card's YAML front matter is built by `huggingface_hub.ModelCardData`, valid for the Hub: ``library_name`` and
``pipeline_tag`` per class (``latentlm`` / ``text-generation`` for diffusion models and pipelines, ``transformers``
for the AR baseline, ``feature-extraction`` for the Cosmos autoencoder), ``datasets`` only for Hub dataset ids,
``base_model`` for fine-tunes and LoRA adapters. transformers' and diffusers' own ``push_to_hub`` would write a card
with *their* ``library_name``; latentlm's pipelines and models override it (`PushToHubMixin`), and a folder always
gets its card before it is uploaded (`push_to_hub`, in `latentlm.hub_upload`).

`latentlm.training.train` writes the card of its export (``README.md`` next to the weights) with
`save_training_card`. Cards are pure text: building one needs neither the network nor the weights.
"""

import contextlib
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from huggingface_hub import ModelCard, ModelCardData


__all__ = [
    "DEFAULT_IGNORE_PATTERNS",
    "PushToHubMixin",
    "base_model_of",
    "is_hub_dataset_id",
    "card_from_folder",
    "model_card",
    "model_summary",
    "push_to_hub",
    "save_model_card",
    "save_training_card",
    "training_summary",
]

CARD_NAME = "README.md"
BASE_TAGS = ("latentlm", "text-diffusion")
# method -> (library_name, pipeline_tag, tags): the library that loads the folder and what the model does. The AR
# baseline is a plain transformers causal LM; the Cosmos autoencoder maps text to latents and back.
_HUB_METADATA = {
    "ar": ("transformers", "text-generation", ("latentlm", "causal-lm")),
    "cosmos-autoencoder": ("latentlm", "feature-extraction", ("latentlm", "text-autoencoder")),
}
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]*[A-Za-z0-9]$")
ADAPTER_FILES = ("adapter_config.json", "pytorch_lora_weights.safetensors")

_METHOD_DESCRIPTIONS = {
    "elf": (
        "an [ELF](https://arxiv.org/abs/2605.10938) (Embedded Language Flows) text diffusion model: rectified flow "
        "matching in the contextual embedding space of a frozen pretrained encoder, with the same network decoding "
        "the final embeddings to tokens"
    ),
    "cosmos": (
        "a [Cosmos](https://arxiv.org/abs/2506.21170) text diffusion model: variance-preserving diffusion over the "
        "few latents of a trained text autoencoder (saved beside it in the pipeline), decoded once at the end"
    ),
    "cosmos-autoencoder": (
        "a [Cosmos](https://arxiv.org/abs/2506.21170) text autoencoder: a Perceiver compressor turns L tokens (read "
        "through a frozen pretrained encoder) into N latents and a decompressor turns them back into tokens, trained "
        "with token cross-entropy, alignment to the frozen encoder's activations and perturbation augmentations"
    ),
    "ar": (
        "an autoregressive baseline (a transformers causal language model) trained with latentlm's training loop on "
        "the same tokenizer and data as its diffusion models"
    ),
}
_MODEL_KEYS = {  # config key -> label, in display order
    "architecture": "Architecture",
    "num_parameters": "Parameters",
    "hidden_size": "Hidden size",
    "num_hidden_layers": "Layers",
    "num_attention_heads": "Attention heads",
    "intermediate_size": "Intermediate size",
    "latent_dim": "Latent size",
    "bottleneck_dim": "Bottleneck size",
    "vocab_size": "Vocabulary",
    "max_position_embeddings": "Max. sequence length",
    "encoder": "Frozen encoder",
}
_TRAINING_LABELS = {
    "dataset": "Dataset",
    "max_steps": "Optimizer steps",
    "batch_size": "Batch (sequences per step)",
    "per_device_train_batch_size": "Per-device batch",
    "num_processes": "Processes",
    "gradient_accumulation_steps": "Gradient accumulation",
    "seq_len": "Sequence length (tokens)",
    "tokens": "Tokens seen",
    "optimizer": "Optimizer",
    "learning_rate": "Learning rate",
    "lr_scheduler_type": "LR schedule",
    "warmup_steps": "Warm-up steps",
    "weight_decay": "Weight decay",
    "ema_decay": "EMA decay",
    "mixed_precision": "Mixed precision",
    "seed": "Seed",
    "init_from": "Initialised from",
    "lora": "LoRA",
    "eval_loss": "Final eval loss",
}
_LOCAL_BUILDERS = ("text", "json", "csv", "parquet", "arrow")


def model_card(
    *,
    model_name: str,
    method: str,
    base_info: Mapping[str, Any],
    training: Mapping[str, Any] | None = None,
    evaluation: str | None = None,
    datasets: list[str] | None = None,
    license: str = "apache-2.0",
    tags: list[str] | None = None,
    base_model: str | None = None,
    repo_id: str | None = None,
    adapter: bool = False,
    pipeline: bool = True,
) -> ModelCard:
    """Builds the model card of a latentlm model.

    Args:
        model_name: the card's title (and ``model_name`` in the metadata).
        method: the registered method (``"elf"``, ``"ar"``, ...); it picks the usage snippet and is added to the tags.
        base_info: the model's summary, label -> value (see `model_summary`); ``num_parameters`` is shown in millions.
        training: the training summary (see `training_summary`): dataset, steps, batch, sequence length, tokens seen,
            mixed precision, final eval loss, ...
        evaluation: Markdown for an "Evaluation" section (tables, protocol, the command that made the numbers).
        datasets: dataset names; only valid Hub ids (``owner/name``, not a latentlm corpus or a local file) go into
            the metadata.
        license: SPDX-style license id for the metadata.
        tags: extra tags; the method's tags (``latentlm``, ``text-diffusion``, ...) and its name are always there.
        base_model: the model this one was fine-tuned from (metadata ``base_model`` when it is a Hub id).
        adapter: the card of a LoRA adapter of ``base_model``: the usage snippet loads the base and the adapter.
        pipeline: the repository holds a pipeline (else a bare diffusion model: the snippet loads it with
            `AutoModelForTextDiffusion`).
        repo_id: the Hub repository the usage snippet loads; defaults to ``model_name`` (`push_to_hub` replaces it
            with the repository it uploads to).

    Returns:
        a `huggingface_hub.ModelCard`; ``card.save(path)`` writes it, ``ModelCard.load(path)`` reads it back.
    """
    library_name, pipeline_tag, method_tags = _HUB_METADATA.get(method, ("latentlm", "text-generation", BASE_TAGS))
    extra_tags = ["lora", "peft"] if adapter else []
    all_tags = list(dict.fromkeys([*method_tags, method, *extra_tags, *(tags or [])]))
    hub_datasets = [name for name in datasets or [] if is_hub_dataset_id(name)]
    card_data = ModelCardData(
        library_name=library_name,
        pipeline_tag=pipeline_tag,
        license=license,
        tags=all_tags,
        datasets=hub_datasets or None,
        base_model=base_model if base_model and _HUB_ID.match(base_model) else None,
        model_name=model_name,
    )
    description = _METHOD_DESCRIPTIONS.get(method, f"a `{method}` continuous latent diffusion language model")
    target = repo_id or model_name
    if adapter:
        description = f"a LoRA adapter for {base_model or 'its base model'}, {description.removeprefix('a ').removeprefix('an ')}"
    sections = [
        f"# {model_name}",
        f"This is {description}, trained with `latentlm`.",
        "## Usage\n\n"
        + (_adapter_snippet(base_model, target) if adapter else _usage_snippet(method, target, pipeline)),
        "## Model\n\n" + _table(base_info, _MODEL_KEYS, header=("Property", "Value")),
    ]
    if training:
        sections.append("## Training\n\n" + _table(training, _TRAINING_LABELS, header=("Hyper-parameter", "Value")))
    if evaluation:
        sections.append("## Evaluation\n\n" + evaluation.strip())
    body = "\n\n".join(sections)
    return ModelCard(f"---\n{card_data.to_yaml()}\n---\n\n{body}\n")


def save_model_card(folder: str | os.PathLike, **kwargs) -> ModelCard:
    """Writes `model_card(**kwargs)` to ``folder/README.md`` (a saved pipeline or model folder) and returns it."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"`folder` ({folder}) is not a directory: save the model or pipeline there first.")
    card = model_card(**kwargs)
    card.save(folder / CARD_NAME)
    return card


def model_summary(model) -> dict[str, Any]:
    """The card's "Model" table of a model object: class, parameter count and the sizes in its config.

    A PEFT-wrapped model is summarised by its base model; a frozen encoder kept outside the module tree (ELF) is not
    counted, and is shown by name.
    """
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    summary = _config_summary(base.config.to_dict())
    summary["architecture"] = type(base).__name__
    summary["num_parameters"] = sum(p.numel() for p in base.parameters())
    return _ordered(summary)


def training_summary(config, *, num_processes: int = 1, eval_loss: float | None = None) -> dict[str, Any]:
    """The card's "Training" table of a `latentlm.training.TrainingConfig`.

    ``batch_size`` is sequences per optimizer step (per-device batch x processes x accumulation) and ``tokens`` the
    tokens seen, ``max_steps x batch_size x seq_len``.
    """
    batch_size = config.per_device_train_batch_size * num_processes * config.gradient_accumulation_steps
    summary = {
        "dataset": _dataset_label(config),
        "max_steps": config.max_steps,
        "batch_size": batch_size,
        "per_device_train_batch_size": config.per_device_train_batch_size,
        "num_processes": num_processes,
        "gradient_accumulation_steps": config.gradient_accumulation_steps,
        "seq_len": config.seq_len,
        "tokens": config.max_steps * batch_size * config.seq_len,
        # Named only when not the default AdamW, so the cards of AdamW runs read as before.
        "optimizer": _optimizer_label(config),
        "learning_rate": config.learning_rate,
        "lr_scheduler_type": config.lr_scheduler_type,
        "warmup_steps": config.warmup_steps,
        "weight_decay": config.weight_decay,
        "ema_decay": config.ema_decay or None,
        "mixed_precision": config.mixed_precision,
        "seed": config.seed,
        "init_from": _display_name(config.init_from) if config.init_from else None,
        "lora": ", ".join(f"{key}={value}" for key, value in config.lora.items()) if config.lora else None,
        "eval_loss": eval_loss,
    }
    return {key: value for key, value in summary.items() if value is not None}


def _optimizer_label(config) -> str | None:
    optimizer = getattr(config, "optimizer", "adamw")
    if optimizer == "adamw":
        return None
    if optimizer == "adafactor":
        return f"Adafactor (lr {config.learning_rate:g}, factored second moments, no first moment)"
    lr = config.muon_learning_rate if config.muon_learning_rate is not None else config.learning_rate
    return f"Muon (lr {lr:g}, momentum {config.muon_momentum:g}) + AdamW"


def save_training_card(
    folder: str | os.PathLike, model, config, *, eval_loss: float | None = None, num_processes: int = 1
) -> ModelCard:
    """Writes the card of a training run's export: `model_summary` + `training_summary`, tags from the config."""
    tags = ["lora"] if config.lora else None
    base_model = base_model_of(config.init_from)
    return save_model_card(
        folder,
        model_name=_folder_name(folder),
        method=config.method,
        base_info=model_summary(model),
        training=training_summary(config, num_processes=num_processes, eval_loss=eval_loss),
        datasets=_hub_datasets(config),
        tags=tags,
        base_model=base_model,
    )


def card_from_folder(folder: str | os.PathLike, repo_id: str | None = None) -> ModelCard:
    """Builds a card for a saved folder from its files alone (no weights loaded).

    The model summary comes from the model's ``config.json`` and the safetensors headers; the training summary from
    ``training_config.yaml`` and the last evaluation in ``train_log.jsonl`` when a training run left them there.
    """
    folder = Path(folder)
    if _is_adapter_folder(folder):
        return _adapter_card(folder, repo_id)
    config_file = _model_config_file(folder)
    config = json.loads(config_file.read_text())
    base_info = _config_summary(config)
    base_info["architecture"] = (config.get("architectures") or [None])[0]
    base_info["num_parameters"] = _count_safetensors_parameters(config_file.parent)
    method, run, training = _method_of(config), *_run_summary(folder)
    if run is not None:
        method = run.method
    return model_card(
        model_name=_folder_name(folder),
        method=method,
        base_info=_ordered({key: value for key, value in base_info.items() if value is not None}),
        training=training,
        datasets=_hub_datasets(run) if run else None,
        base_model=base_model_of(run.init_from) if run else None,
        repo_id=repo_id,
        pipeline=(folder / "model_index.json").is_file(),
    )


def _run_summary(folder: Path):
    """The training config and summary a ``latentlm train`` run left in ``folder``, or ``(None, None)``."""
    if not (folder / "training_config.yaml").is_file():
        return None, None
    from .training.config import load_config

    run = load_config(folder / "training_config.yaml")
    training = training_summary(run, eval_loss=_last_eval_loss(folder / "train_log.jsonl"))
    for key in ("num_processes", "batch_size", "tokens"):  # the number of processes is not recorded
        training.pop(key)
    return run, training


def _is_adapter_folder(folder: Path) -> bool:
    return not (folder / "model_index.json").is_file() and any((folder / name).is_file() for name in ADAPTER_FILES)


def _adapter_card(folder: Path, repo_id: str | None) -> ModelCard:
    """The card of a LoRA adapter folder (PEFT's or diffusers' layout), with the run's training summary when the
    folder is a run's ``adapter/``."""
    info, base = {}, None
    if (folder / "adapter_config.json").is_file():
        config = json.loads((folder / "adapter_config.json").read_text())
        base = config.get("base_model_name_or_path")
        if base and (folder / base).exists():  # a folder relative to the adapter: no Hub id to name
            base = None
        info = {"architecture": "LoRA", "r": config.get("r"), "lora_alpha": config.get("lora_alpha")}
        info["target_modules"] = ", ".join(sorted(config.get("target_modules") or []))
    info["num_parameters"] = _count_safetensors_parameters(folder)
    run, training = _run_summary(folder.parent)
    base = base or (base_model_of(run.init_from) if run else None)
    return model_card(
        model_name=_folder_name(folder) if folder.name != "adapter" else f"{_folder_name(folder.parent)}-lora",
        method=run.method if run else "elf",
        base_info={key: value for key, value in info.items() if value not in (None, "")},
        training=training,
        datasets=_hub_datasets(run) if run else None,
        base_model=base,
        repo_id=repo_id,
        adapter=True,
    )


# ----------------------------------------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------------------------------------


def _adapter_snippet(base_model: str | None, target: str) -> str:
    code = f"""\
import torch
import latentlm

pipe = latentlm.AutoPipelineForTextGeneration.from_pretrained("{base_model or "<base model>"}")
pipe.load_lora_weights("{target}", adapter_name="adapter")
output = pipe(batch_size=2, gen_length=64, generator=torch.Generator().manual_seed(0))
print(output.texts)"""
    return f"```bash\npip install latentlm\n```\n\n```python\n{code}\n```"


def _usage_snippet(method: str, target: str, pipeline: bool = True) -> str:
    if method == "ar":
        code = f"""\
from transformers import AutoModelForCausalLM, AutoTokenizer

tokenizer = AutoTokenizer.from_pretrained("{target}")
model = AutoModelForCausalLM.from_pretrained("{target}")
inputs = tokenizer("the", add_special_tokens=False, return_tensors="pt")
outputs = model.generate(**inputs, max_new_tokens=64, do_sample=True)
print(tokenizer.batch_decode(outputs, skip_special_tokens=True))"""
    elif method == "cosmos-autoencoder":
        code = f"""\
from transformers import AutoTokenizer
from latentlm import CosmosLMAutoencoder

tokenizer = AutoTokenizer.from_pretrained("{target}")
autoencoder = CosmosLMAutoencoder.from_pretrained("{target}")
autoencoder.load_text_encoder()  # the frozen encoder it reads (not part of the weights)
batch = tokenizer(["the cat sat on the mat."], return_tensors="pt")
latents = autoencoder.encode(batch.input_ids, batch.attention_mask)  # (1, num_latents, latent_dim)
print(tokenizer.batch_decode(autoencoder.decode(latents).argmax(-1)))"""
    elif not pipeline:
        code = f"""\
from latentlm import AutoModelForTextDiffusion

model = AutoModelForTextDiffusion.from_pretrained("{target}")  # the training head (float32)
# sample with the method's pipeline: e.g. latentlm.ELFPipeline.from_model(model, tokenizer)"""
    else:
        code = f"""\
import torch
import latentlm

pipe = latentlm.AutoPipelineForTextGeneration.from_pretrained("{target}")
output = pipe(batch_size=2, gen_length=64, generator=torch.Generator().manual_seed(0))
print(output.texts)"""
    return f"```bash\npip install latentlm\n```\n\n```python\n{code}\n```"


def _table(values: Mapping[str, Any], labels: Mapping[str, str], header: tuple[str, str]) -> str:
    rows = [f"| {header[0]} | {header[1]} |", "|---|---|"]
    for key, value in values.items():
        label = labels.get(key, key.replace("_", " ").capitalize())
        rows.append(f"| {label} | {_format_value(key, value)} |".replace("\n", " "))
    return "\n".join(rows)


def _format_value(key: str, value: Any) -> str:
    if key == "num_parameters" and isinstance(value, int):
        text = f"{value / 1e6:.2f}M ({value:,})"
    elif key == "eval_loss" and isinstance(value, float):
        text = f"{value:.4f}"
    elif isinstance(value, bool):
        text = str(value).lower()
    elif isinstance(value, int):
        text = f"{value:,}"
    elif isinstance(value, float):
        text = f"{value:g}"
    else:
        text = str(value)
    return text.replace("|", "\\|")


def _config_summary(config: Mapping[str, Any]) -> dict[str, Any]:
    summary = {key: config[key] for key in _MODEL_KEYS if config.get(key) is not None}
    if "encoder_name_or_path" in config:  # None means the default encoder
        from .models.encoders import DEFAULT_ENCODER

        summary["encoder"] = _display_name(config["encoder_name_or_path"] or DEFAULT_ENCODER)
    return summary


def _ordered(summary: Mapping[str, Any]) -> dict[str, Any]:
    known = {key: summary[key] for key in _MODEL_KEYS if key in summary}
    return {**known, **{key: value for key, value in summary.items() if key not in known}}


def _dataset_label(config) -> str:
    from .training.sources import describe_dataset, is_in_memory_dataset

    if is_in_memory_dataset(config.dataset):
        return describe_dataset(config.dataset)
    label = _display_name(config.dataset)
    if config.dataset_config:
        label += f" ({config.dataset_config})"
    if config.data_files:
        files = config.data_files
        files = [files] if isinstance(files, str) else list(files.values() if isinstance(files, dict) else files)
        label += ": " + ", ".join(_display_name(str(f)) for f in files)
    return label


def _hub_datasets(config) -> list[str] | None:
    """``[config.dataset]`` when it is a Hub dataset id (see `is_hub_dataset_id`)."""
    return [config.dataset] if isinstance(config.dataset, str) and is_hub_dataset_id(config.dataset) else None


def is_hub_dataset_id(name: str) -> bool:
    """True for ``owner/name`` ids that are not a local path, a latentlm corpus or a generic builder (``text``).

    Canonical ids without an owner (``"wikitext"``) are now served under an organisation on the Hub; write those.
    """
    from .data.corpora import CORPORA

    return name not in _LOCAL_BUILDERS and name not in CORPORA and _is_hub_id(name) and bool(_HUB_ID.match(name))


def base_model_of(init_from: str | None) -> str | None:
    """The Hub id a fine-tune's card names as ``base_model``: ``init_from`` when it is a Hub id, the repository of a
    folder inside the Hub cache; None for local folders and bundled models (no Hub id to name)."""
    from .training.sources import BUNDLED_PREFIX, hub_id_of_cache_path

    if not init_from or init_from.startswith(BUNDLED_PREFIX):
        return None
    if os.path.exists(init_from):
        return hub_id_of_cache_path(init_from)
    return init_from if _HUB_ID.match(init_from) else None


def _is_hub_id(name: str) -> bool:
    return not os.path.exists(name) and not os.path.isabs(name) and name.count("/") <= 1


def _display_name(name_or_path: str) -> str:
    """A Hub id as is; a local path by its last component (cards must not leak local paths)."""
    return name_or_path if _is_hub_id(name_or_path) else Path(name_or_path).name


def _folder_name(folder: str | os.PathLike) -> str:
    return Path(folder).resolve().name


def _model_config_file(folder: Path) -> Path:
    """The model's ``config.json``: in the folder, or in the pipeline component folder that has one."""
    index = folder / "model_index.json"
    if index.is_file():
        components = [name for name, value in json.loads(index.read_text()).items() if isinstance(value, list)]
        for name in components:
            candidate = folder / name / "config.json"
            if candidate.is_file() and "model_type" in json.loads(candidate.read_text()):
                return candidate
    if (folder / "config.json").is_file():
        return folder / "config.json"
    raise ValueError(f"{folder} holds no model config.json (neither a saved model nor a saved pipeline).")


def _method_of(config: Mapping[str, Any]) -> str:
    model_type = config.get("model_type", "")
    if model_type.startswith("latentlm_"):
        return model_type.removeprefix("latentlm_").replace("_", "-")  # latentlm_cosmos_autoencoder -> method name
    if any(name.endswith("ForCausalLM") for name in config.get("architectures") or []):
        return "ar"
    return model_type or "unknown"


def _count_safetensors_parameters(model_dir: Path) -> int | None:
    """Parameters stored in the folder's safetensors files, read from the headers only."""
    from safetensors import safe_open

    files = sorted(model_dir.glob("*.safetensors"))
    if not files:
        return None
    total = 0
    for file in files:
        with safe_open(file, framework="pt") as f:
            for name in f.keys():
                shape = f.get_slice(name).get_shape()
                count = 1
                for size in shape:
                    count *= size
                total += count
    return total


def _last_eval_loss(log_file: Path) -> float | None:
    """The last ``ema_eval_loss`` / ``eval_loss`` of a training log (the loss of the exported weights)."""
    if not log_file.is_file():
        return None
    loss = None
    for line in log_file.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        for key in ("eval_loss", "ema_eval_loss"):
            if key in record:
                loss = record[key]
    return loss


# ---------------------------------------------------------------------------------------------------- loading errors


def looks_like_local_path(name_or_path: str | os.PathLike) -> bool:
    """True for what can only be a local path: absolute, ``./`` / ``../`` / ``~``, or more than one ``/``."""
    name = os.fspath(name_or_path)
    return (
        os.path.isabs(name) or name.startswith((".", "~")) or name.count("/") > 1 or (os.sep != "/" and os.sep in name)
    )


def check_local_path(name_or_path: str | os.PathLike) -> None:
    """`FileNotFoundError` naming the path when it can only be local and does not exist (instead of the Hub's
    "Repo id must be in the form ..." or "Couldn't reach ... on the Hub")."""
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise TypeError(
            f"`pretrained_model_name_or_path` must be a path or a Hub id, got {type(name_or_path).__name__}."
        )
    name = os.path.expanduser(os.fspath(name_or_path))
    if looks_like_local_path(name_or_path) and not os.path.exists(name):
        raise FileNotFoundError(f"No such file or folder: {os.fspath(name_or_path)!r}.")


@contextlib.contextmanager
def reraise_naming_file(name_or_path: str | os.PathLike):
    """Re-raises unreadable-file errors (corrupt safetensors or JSON) as `OSError`s that name the folder."""
    from safetensors import SafetensorError

    try:
        yield
    except (SafetensorError, json.JSONDecodeError, UnicodeDecodeError) as err:
        raise OSError(f"Could not read the files in {os.fspath(name_or_path)!r}: {err}") from err


from .hub_upload import DEFAULT_IGNORE_PATTERNS, PushToHubMixin, push_to_hub  # noqa: E402  (uploads use the cards above)
