from .configuration_cosmos_lm import CosmosLMAutoencoderConfig, CosmosLMConfig
from .distillation_cosmos_lm import CosmosLMForDistillation
from .modeling_cosmos_lm import (
    CosmosLMDiffusionOutput,
    CosmosLMForDiffusion,
    CosmosLMModel,
    CosmosLMPreTrainedModel,
)
from .modeling_cosmos_lm_autoencoder import CosmosLMAutoencoder, CosmosLMAutoencoderOutput


__all__ = [
    "CosmosLMAutoencoder",
    "CosmosLMAutoencoderConfig",
    "CosmosLMAutoencoderOutput",
    "CosmosLMConfig",
    "CosmosLMDiffusionOutput",
    "CosmosLMForDiffusion",
    "CosmosLMForDistillation",
    "CosmosLMModel",
    "CosmosLMPreTrainedModel",
]
