"""The methods the training loop and the CLI know, by name.

A method is a config class, a training head (``forward(input_ids, attention_mask=None, labels=None) -> output
with .loss``) and, for diffusion methods, the pipeline class that samples from it. Adding a method means adding one
entry here; the training loop, the CLI and the benchmark read nothing else.
"""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class MethodSpec:
    """How to build, train and export one method.

    Attributes:
        name: the key used in YAML configs (``method: elf``).
        config_class: a `transformers.PreTrainedConfig` subclass, filled from the YAML ``model:`` mapping.
        model_class: the training head; ``model_class(config)`` builds it from scratch and
            ``model_class.from_pretrained(path)`` fine-tunes an existing checkpoint.
        pipeline_class: name of the `latentlm.pipelines` class that samples from the model, or ``None`` for methods
            sampled with ``model.generate`` (the autoregressive baseline).
        condition_layout: how paired data (``source_column`` / ``target_column``) reaches the model:
            ``"in_sequence"`` (condition tokens share the denoiser's positions, ELF), ``"cross_attention"`` (Cosmos),
            ``"concatenated"`` (``source [SEP] target`` for causal LMs), or ``None`` (the method takes no condition).
        framed_by_default: the default of ``TrainingConfig.framing``: True for the methods whose frozen BERT-family
            encoder reads the text (ELF, Cosmos), so it sees ``[CLS] ... [SEP]`` windows as the official code feeds it.
        model_defaults: the model a run from scratch builds when its YAML ``model:`` sets none of these keys, for
            config classes whose own defaults build a model far too large to train by accident (``LlamaConfig()``
            is 6.7B parameters).
    """

    name: str
    config_class: type
    model_class: type
    pipeline_class: str | None = None
    condition_layout: str | None = None
    framed_by_default: bool = False
    model_defaults: dict = field(default_factory=dict)


# `method: ar` without sizes: the small Llama of examples/configs/ar-tiny.yaml (~3M parameters besides the embeddings).
AR_MODEL_DEFAULTS = {
    "hidden_size": 256,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "intermediate_size": 704,
    "tie_word_embeddings": True,
}


def _method_specs() -> dict[str, MethodSpec]:
    from transformers import LlamaConfig, LlamaForCausalLM

    from .cosmos_lm import (
        CosmosLMAutoencoder,
        CosmosLMAutoencoderConfig,
        CosmosLMConfig,
        CosmosLMForDiffusion,
        CosmosLMForDistillation,
    )
    from .elf import ELFConfig, ELFForDistillation, ELFForFlowMatching
    from .ldlm import LDLMConfig, LDLMForDiffusion
    from .nfdm import NFDMConfig, NFDMForDiffusion

    return {
        # Cosmos trains in two stages: the autoencoder, then diffusion on its latents (`--autoencoder PATH`).
        "cosmos-autoencoder": MethodSpec(
            "cosmos-autoencoder", CosmosLMAutoencoderConfig, CosmosLMAutoencoder, framed_by_default=True
        ),
        "cosmos": MethodSpec(
            "cosmos",
            CosmosLMConfig,
            CosmosLMForDiffusion,
            "CosmosLMPipeline",
            condition_layout="cross_attention",
            framed_by_default=True,
        ),
        # A few-step Cosmos student (DDIM) distilled from a frozen Cosmos teacher on its autoencoder; exported as Cosmos.
        "cosmos-distill": MethodSpec(
            "cosmos-distill", CosmosLMConfig, CosmosLMForDistillation, "CosmosLMPipeline", framed_by_default=True
        ),
        "elf": MethodSpec(
            "elf", ELFConfig, ELFForFlowMatching, "ELFPipeline", condition_layout="in_sequence", framed_by_default=True
        ),
        # A few-step ELF student distilled from a frozen ELF teacher (`model.distill_teacher`); exported as ELF.
        "elf-distill": MethodSpec("elf-distill", ELFConfig, ELFForDistillation, "ELFPipeline"),
        "nfdm": MethodSpec("nfdm", NFDMConfig, NFDMForDiffusion, pipeline_class="NFDMPipeline"),
        # LDLM trains encoder, decoder and denoiser jointly in one stage; the export is the denoiser and decoder side.
        "ldlm": MethodSpec("ldlm", LDLMConfig, LDLMForDiffusion, "LDLMPipeline", condition_layout="cross_attention"),
        "ar": MethodSpec(
            "ar",
            LlamaConfig,
            LlamaForCausalLM,
            pipeline_class=None,
            condition_layout="concatenated",
            model_defaults=AR_MODEL_DEFAULTS,
        ),
    }


def get_method(name: str) -> MethodSpec:
    """Returns the `MethodSpec` registered under ``name`` (``"elf"``, ``"ar"``, ...)."""
    specs = _method_specs()
    if name not in specs:
        raise ValueError(f"`method` must be one of {sorted(specs)}, got {name!r}.")
    return specs[name]


def list_methods() -> list[str]:
    return sorted(_method_specs())
