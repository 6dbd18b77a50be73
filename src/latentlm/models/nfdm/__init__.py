from .configuration_nfdm import NFDMConfig
from .modeling_nfdm import NFDMBoundTerms, NFDMForDiffusion, NFDMModel, NFDMOutput, NFDMPreTrainedModel


__all__ = ["NFDMBoundTerms", "NFDMConfig", "NFDMForDiffusion", "NFDMModel", "NFDMOutput", "NFDMPreTrainedModel"]
