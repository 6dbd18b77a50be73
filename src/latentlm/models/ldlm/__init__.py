from .configuration_ldlm import LDLMConfig, LDLMDecoderConfig
from .modeling_ldlm import (
    LDLMForDiffusion,
    LDLMModel,
    LDLMOutput,
    LDLMPreTrainedModel,
    scale_gradient,
    warmup_gamma,
)
from .modeling_ldlm_codec import LDLMDecoder, LDLMDecoderOutput, LDLMEncoder
from .timestep_sampler import AdaptiveTimestepSampler


__all__ = [
    "AdaptiveTimestepSampler",
    "LDLMConfig",
    "LDLMDecoder",
    "LDLMDecoderConfig",
    "LDLMDecoderOutput",
    "LDLMEncoder",
    "LDLMForDiffusion",
    "LDLMModel",
    "LDLMOutput",
    "LDLMPreTrainedModel",
    "scale_gradient",
    "warmup_gamma",
]
