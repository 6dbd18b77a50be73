from .configuration_cosmos_lm import CosmosLMAutoencoderConfig, CosmosLMConfig
from .modeling_cosmos_lm import (
    CosmosLMAutoencoder,
    CosmosLMAutoencoderOutput,
    CosmosLMDiffusionOutput,
    CosmosLMForDiffusion,
    CosmosLMModel,
    CosmosLMPreTrainedModel,
)


__all__ = [
    "CosmosLMAutoencoder",
    "CosmosLMAutoencoderConfig",
    "CosmosLMAutoencoderOutput",
    "CosmosLMConfig",
    "CosmosLMDiffusionOutput",
    "CosmosLMForDiffusion",
    "CosmosLMModel",
    "CosmosLMPreTrainedModel",
]
