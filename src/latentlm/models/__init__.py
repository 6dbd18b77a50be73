from .backbone import DenoiserOutput, DenoiserPreTrainedModel, DenoiserTransformer
from .cosmos_lm import (
    CosmosLMAutoencoder,
    CosmosLMAutoencoderConfig,
    CosmosLMConfig,
    CosmosLMForDiffusion,
    CosmosLMForDistillation,
    CosmosLMModel,
    CosmosLMPreTrainedModel,
)
from .elf import (
    ELFConfig,
    ELFFlowMatchingOutput,
    ELFForDistillation,
    ELFForFlowMatching,
    ELFModel,
    ELFPreTrainedModel,
)
from .ldlm import (
    LDLMConfig,
    LDLMDecoder,
    LDLMDecoderConfig,
    LDLMForDiffusion,
    LDLMModel,
    LDLMPreTrainedModel,
)
from .modeling_utils import LatentDiffusionMixin
from .nfdm import NFDMConfig, NFDMForDiffusion, NFDMModel, NFDMPreTrainedModel
from .registry import MethodSpec, get_method, list_methods


__all__ = [
    "CosmosLMAutoencoder",
    "CosmosLMAutoencoderConfig",
    "CosmosLMConfig",
    "CosmosLMForDiffusion",
    "CosmosLMForDistillation",
    "CosmosLMModel",
    "CosmosLMPreTrainedModel",
    "DenoiserOutput",
    "DenoiserPreTrainedModel",
    "DenoiserTransformer",
    "ELFConfig",
    "ELFFlowMatchingOutput",
    "ELFForDistillation",
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
    "NFDMConfig",
    "NFDMForDiffusion",
    "NFDMModel",
    "NFDMPreTrainedModel",
    "get_method",
    "list_methods",
]
