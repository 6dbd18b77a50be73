"""The classes the conformance tests run over: the ONE place to add a new scheduler or model.

* Schedulers are found automatically: every `SchedulerMixin` class exported by `latentlm.schedulers`. Add config
  variants worth checking to `SCHEDULER_VARIANTS` (the default config is always checked).
* Models: add one `ModelCase` line to `MODEL_CASES` per `PreTrainedModel` class (a tiny config and a function
  building its inputs). `tests/test_conformance_models.py` checks every line.
"""

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from diffusers.schedulers.scheduling_utils import SchedulerMixin


# ---------------------------------------------------------------------------------------------------- schedulers


def scheduler_classes() -> list[type]:
    import latentlm.schedulers as module

    classes = (getattr(module, name) for name in module.__all__)
    return [c for c in classes if inspect.isclass(c) and issubclass(c, SchedulerMixin)]


# Extra configs checked besides each class's defaults (keyed by class name; a new class needs no entry).
SCHEDULER_VARIANTS: dict[str, list[dict]] = {
    "FlowMatchEulerSDEScheduler": [
        {"gamma": 0.0},
        {"time_grid": "uniform"},
        {"prediction_type": "flow", "gamma": 0.0, "noise_scale": 1.0},
    ],
    "EulerMaruyamaVPScheduler": [{"solver": "probability_flow"}, {"solver": "ddim"}],
}


def scheduler_cases() -> list[tuple[type, dict]]:
    cases = []
    for cls in scheduler_classes():
        cases += [(cls, {})] + [(cls, kwargs) for kwargs in SCHEDULER_VARIANTS.get(cls.__name__, [])]
    return cases


def scheduler_case_id(case) -> str:
    cls, kwargs = case
    return cls.__name__ + "".join(f"-{k}={v}" for k, v in kwargs.items())


# ---------------------------------------------------------------------------------------------------- models


@dataclass
class ModelCase:
    """One `PreTrainedModel` class under test.

    Attributes:
        model_class: the class.
        config: a function returning a tiny config of the class.
        inputs: `inputs(config, generator) -> dict` of keyword arguments for `forward` (batch of 2).
        output_key: the output field compared between models (e.g. ``"sample"`` or ``"loss"``).
        auto_class: the Auto class that must load it back (by name, from `transformers` or `latentlm`).
        prepare: optional `prepare(model)` run after construction (e.g. fit statistics) before `forward`.
    """

    model_class: type
    config: Callable[[], Any]
    inputs: Callable[[Any, torch.Generator], dict]
    output_key: str
    auto_class: str
    prepare: Callable[[Any], None] | None = None
    extra: dict = field(default_factory=dict)

    @property
    def id(self) -> str:
        return self.model_class.__name__


def _denoiser_inputs(config, generator, seq_len=5):
    inputs = {
        "hidden_states": torch.randn(2, seq_len, config.latent_dim, generator=generator),
        "timestep": torch.rand(2, generator=generator),
        "attention_mask": torch.tensor([[1] * seq_len, [1] * (seq_len - 2) + [0, 0]]),
    }
    if getattr(config, "num_guidance_tokens", 0):
        inputs["guidance_scale"] = torch.tensor([1.0, 2.0])
    return inputs


def _token_inputs(config, generator, seq_len=None):
    seq_len = seq_len or min(config.max_position_embeddings, 12)
    input_ids = torch.randint(5, config.vocab_size, (2, seq_len), generator=generator)
    attention_mask = torch.ones(2, seq_len, dtype=torch.long)
    attention_mask[1, -3:] = 0
    return {"input_ids": input_ids, "attention_mask": attention_mask}


def _fit_cosmos_stats(model):
    with torch.no_grad():
        model.activation_mean.zero_()
        model.activation_std.fill_(1.0)
        model.latent_mean.zero_()
        model.latent_std.fill_(1.0)


def _elf_config():
    from conftest import TINY_ELF
    from latentlm.models import ELFConfig

    return ELFConfig(**TINY_ELF)


def _elf_config_without_control_tokens():
    from conftest import TINY_ELF
    from latentlm.models import ELFConfig

    return ELFConfig(**TINY_ELF, num_guidance_tokens=0, num_mode_tokens=0, self_conditioning=False)


def _elf_warm_config():
    """ELF warm-started from a tiny BERT (`init_denoiser_from`): BERT blocks holding the encoder's layers."""
    from conftest import TINY_ELF, tiny_pretrained_encoder
    from latentlm.models import ELFConfig
    from latentlm.models.warm_start import pretrained_block_kwargs

    return ELFConfig(**{**TINY_ELF, **pretrained_block_kwargs(tiny_pretrained_encoder("bert"))})


def _cosmos_config():
    from latentlm.models import CosmosLMConfig

    return CosmosLMConfig(
        vocab_size=40, num_latents=3, latent_dim=8, max_position_embeddings=12, hidden_size=32,
        num_hidden_layers=2, num_attention_heads=2,
    )  # fmt: skip


def _cosmos_first_form_config():
    """Cosmos with latentlm's first denoiser (time tokens, input self-conditioning, concat skips, zero-init head): the
    form of every Cosmos model saved before the published denoiser became the default."""
    from latentlm.models.denoiser_conditioning import DenoiserOptions

    config = _cosmos_config().to_dict()
    config.update(DenoiserOptions().to_dict(), num_time_tokens=4, self_cond_per_batch=False)
    return type(_cosmos_config()).from_dict(config)


def _cosmos_ae_config():
    from conftest import NO_AUGMENTATION, TINY_COSMOS_AE
    from latentlm.models import CosmosLMAutoencoderConfig

    return CosmosLMAutoencoderConfig(**TINY_COSMOS_AE, **NO_AUGMENTATION, init_lm_head_from_encoder=False)


def _cosmos_ae_original_config():
    """latentlm's original codec (`codec_version=1`), which every config saved before the published form loads as."""
    from conftest import NO_AUGMENTATION, TINY_COSMOS_AE
    from latentlm.models import CosmosLMAutoencoderConfig

    return CosmosLMAutoencoderConfig(**TINY_COSMOS_AE, **NO_AUGMENTATION, codec_version=1)


def _cosmos_ae_inputs(config, generator):
    # The autoencoder's forward reads encoder activations; feed them directly (no frozen encoder in unit tests).
    inputs = _token_inputs(config, generator, seq_len=config.max_position_embeddings)
    inputs["encoder_activations"] = torch.randn(
        2, config.max_position_embeddings, config.encoder_dim, generator=generator
    )
    return inputs


def _head_inputs(latent_shape):
    def inputs(config, generator):
        tokens = _token_inputs(config, generator)
        seq_len = tokens["input_ids"].shape[1]
        shape = latent_shape(config, seq_len)
        tokens["latents"] = torch.randn(2, *shape, generator=generator)
        if shape[0] != seq_len:  # latents of a codec: the text mask does not apply to them
            tokens.pop("attention_mask")
        return tokens

    return inputs


def _ldlm_config():
    from latentlm.models import LDLMConfig
    from test_ldlm import TINY_LDLM

    # The encoder warm-up and the adaptive time sampler are training state that every training forward advances (a
    # step counter, the loss moving averages): switched off, two training passes (with and without gradient
    # checkpointing) see the same model. Their own behaviour is tested in tests/test_ldlm.py.
    return LDLMConfig(**TINY_LDLM, encoder_warmup=False, adaptive_timesteps=False)


def _ldlm_conditional_config():
    """LDLM trained with conditions: the denoiser cross-attends to a condition's frozen-LM states and holds their
    standardisation buffers."""
    return _ldlm_config().__class__(**{**_ldlm_config().to_diff_dict(), "conditional": True})


def _ldlm_decoder_config():
    return _ldlm_config().decoder_config()


def _ldlm_inputs(config, generator):
    # Feed the frozen LM's states directly (no frozen LM in unit tests), as for Cosmos' autoencoder.
    inputs = _token_inputs(config, generator)
    inputs["encoder_activations"] = torch.randn(*inputs["input_ids"].shape, config.encoder_dim, generator=generator)
    return inputs


def _ldlm_decoder_inputs(config, generator):
    return {"latents": torch.randn(2, config.num_latents, config.latent_dim, generator=generator)}


def _fit_ldlm_stats(model):
    with torch.no_grad():
        model.hidden_mean.zero_()
        model.hidden_std.fill_(1.0)


def _fit_conditional_ldlm_stats(model):
    """Also the denoiser's statistics of the condition's states. (The conditional path itself, which reads a frozen
    LM, is tested in tests/test_conditional_generation.py: here the model runs without a condition.)"""
    from latentlm.models import LDLMForDiffusion

    _fit_ldlm_stats(model)
    if isinstance(model, LDLMForDiffusion):
        _fit_ldlm_stats(model.model)


def _nfdm_config():
    from latentlm.models import NFDMConfig
    from test_nfdm import TINY_NFDM

    return NFDMConfig(**TINY_NFDM)


def model_cases() -> list[ModelCase]:
    from latentlm.models import (
        CosmosLMAutoencoder,
        CosmosLMForDiffusion,
        CosmosLMModel,
        ELFForFlowMatching,
        ELFModel,
        LDLMDecoder,
        LDLMForDiffusion,
        LDLMModel,
        NFDMForDiffusion,
        NFDMModel,
    )

    elf_latents = _head_inputs(lambda config, seq_len: (seq_len, config.latent_dim))
    cosmos_latents = _head_inputs(lambda config, seq_len: (config.num_latents, config.latent_dim))
    return [
        ModelCase(ELFModel, _elf_config, _denoiser_inputs, "sample", "AutoModel"),
        ModelCase(
            ELFModel, _elf_config_without_control_tokens, _denoiser_inputs, "sample", "AutoModel",
            extra={"id": "ELFModel-no-control-tokens"},
        ),
        ModelCase(ELFForFlowMatching, _elf_config, elf_latents, "loss", "AutoModelForTextDiffusion"),
        ModelCase(
            ELFForFlowMatching, _elf_warm_config, elf_latents, "loss", "AutoModelForTextDiffusion",
            extra={"id": "ELFForFlowMatching-warm-start-bert"},
        ),
        ModelCase(CosmosLMModel, _cosmos_config, _denoiser_inputs, "sample", "AutoModel"),
        ModelCase(
            CosmosLMModel, _cosmos_first_form_config, _denoiser_inputs, "sample", "AutoModel",
            extra={"id": "CosmosLMModel-first-form"},
        ),
        ModelCase(CosmosLMForDiffusion, _cosmos_config, cosmos_latents, "loss", "AutoModelForTextDiffusion"),
        ModelCase(CosmosLMAutoencoder, _cosmos_ae_config, _cosmos_ae_inputs, "logits", "AutoModel", _fit_cosmos_stats),
        ModelCase(
            CosmosLMAutoencoder, _cosmos_ae_original_config, _cosmos_ae_inputs, "logits", "AutoModel", _fit_cosmos_stats,
            extra={"id": "CosmosLMAutoencoder-original"},
        ),
        ModelCase(LDLMModel, _ldlm_config, _denoiser_inputs, "sample", "AutoModel"),
        ModelCase(LDLMForDiffusion, _ldlm_config, _ldlm_inputs, "loss", "AutoModelForTextDiffusion", _fit_ldlm_stats),
        ModelCase(
            LDLMModel, _ldlm_conditional_config, _denoiser_inputs, "sample", "AutoModel", _fit_ldlm_stats,
            extra={"id": "LDLMModel-conditional"},
        ),
        ModelCase(
            LDLMForDiffusion, _ldlm_conditional_config, _ldlm_inputs, "loss", "AutoModelForTextDiffusion",
            _fit_conditional_ldlm_stats, extra={"id": "LDLMForDiffusion-conditional"},
        ),
        ModelCase(LDLMDecoder, _ldlm_decoder_config, _ldlm_decoder_inputs, "logits", "AutoModel"),
        ModelCase(NFDMModel, _nfdm_config, _denoiser_inputs, "sample", "AutoModel"),
        ModelCase(NFDMForDiffusion, _nfdm_config, _token_inputs, "loss", "AutoModelForTextDiffusion"),
    ]  # fmt: skip


def model_case_id(case: ModelCase) -> str:
    return case.extra.get("id", case.id)
