from .configuration_ldlm import LDLMConfig, LDLMDecoderConfig
from .modeling_ldlm import (
    LDLMDecoder,
    LDLMEncoder,
    LDLMForDiffusion,
    LDLMModel,
    LDLMOutput,
    LDLMPreTrainedModel,
    scale_gradient,
    warmup_gamma,
)
from .timestep_sampler import AdaptiveTimestepSampler


__all__ = [
    "AdaptiveTimestepSampler",
    "LDLMConfig",
    "LDLMDecoder",
    "LDLMDecoderConfig",
    "LDLMEncoder",
    "LDLMForDiffusion",
    "LDLMModel",
    "LDLMOutput",
    "LDLMPreTrainedModel",
    "scale_gradient",
    "warmup_gamma",
]
