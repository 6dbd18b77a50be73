from .backbone import DenoiserOutput, DenoiserPreTrainedModel, DenoiserTransformer
from .cosmos_lm import (
    CosmosLMAutoencoder,
    CosmosLMAutoencoderConfig,
    CosmosLMConfig,
    CosmosLMForDiffusion,
    CosmosLMModel,
    CosmosLMPreTrainedModel,
)
from .elf import ELFConfig, ELFFlowMatchingOutput, ELFForFlowMatching, ELFModel, ELFPreTrainedModel
from .ldlm import (
    LDLMConfig,
    LDLMDecoder,
    LDLMDecoderConfig,
    LDLMForDiffusion,
    LDLMModel,
    LDLMPreTrainedModel,
)
from .modeling_utils import LatentDiffusionMixin
from .registry import MethodSpec, get_method, list_methods


__all__ = [
    "CosmosLMAutoencoder",
    "CosmosLMAutoencoderConfig",
    "CosmosLMConfig",
    "CosmosLMForDiffusion",
    "CosmosLMModel",
    "CosmosLMPreTrainedModel",
    "DenoiserOutput",
    "DenoiserPreTrainedModel",
    "DenoiserTransformer",
    "ELFConfig",
    "ELFFlowMatchingOutput",
    "ELFForFlowMatching",
    "ELFModel",
    "ELFPreTrainedModel",
    "LDLMConfig",
    "LDLMDecoder",
    "LDLMDecoderConfig",
    "LDLMForDiffusion",
    "LDLMModel",
    "LDLMPreTrainedModel",
    "LatentDiffusionMixin",
    "MethodSpec",
    "get_method",
    "list_methods",
]
