"""The methods the training loop and the CLI know, by name.

A method is a config class, a training head (``forward(input_ids, attention_mask=None, labels=None) -> output
with .loss``) and, for diffusion methods, the pipeline class that samples from it. Adding a method means adding one
entry here; the training loop, the CLI and the benchmark read nothing else.
"""

from dataclasses import dataclass


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
    """

    name: str
    config_class: type
    model_class: type
    pipeline_class: str | None = None


def _method_specs() -> dict[str, MethodSpec]:
    from transformers import LlamaConfig, LlamaForCausalLM

    from .cosmos_lm import CosmosLMAutoencoder, CosmosLMAutoencoderConfig, CosmosLMConfig, CosmosLMForDiffusion
    from .elf import ELFConfig, ELFForFlowMatching
    from .ldlm import LDLMConfig, LDLMForDiffusion

    return {
        # Cosmos trains in two stages: the autoencoder, then diffusion on its latents (`--autoencoder PATH`).
        "cosmos-autoencoder": MethodSpec("cosmos-autoencoder", CosmosLMAutoencoderConfig, CosmosLMAutoencoder),
        "cosmos": MethodSpec("cosmos", CosmosLMConfig, CosmosLMForDiffusion, pipeline_class="CosmosLMPipeline"),
        "elf": MethodSpec("elf", ELFConfig, ELFForFlowMatching, pipeline_class="ELFPipeline"),
        # LDLM trains encoder, decoder and denoiser jointly in one stage; the export is the decoder side only.
        "ldlm": MethodSpec("ldlm", LDLMConfig, LDLMForDiffusion, pipeline_class="LDLMPipeline"),
        "ar": MethodSpec("ar", LlamaConfig, LlamaForCausalLM, pipeline_class=None),
    }


def get_method(name: str) -> MethodSpec:
    """Returns the `MethodSpec` registered under ``name`` (``"elf"``, ``"ar"``, ...)."""
    specs = _method_specs()
    if name not in specs:
        raise ValueError(f"`method` must be one of {sorted(specs)}, got {name!r}.")
    return specs[name]


def list_methods() -> list[str]:
    return sorted(_method_specs())
