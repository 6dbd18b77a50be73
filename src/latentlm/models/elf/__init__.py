from .configuration_elf import ELFConfig
from .modeling_elf import ELFFlowMatchingOutput, ELFForFlowMatching, ELFModel, ELFPreTrainedModel


__all__ = ["ELFConfig", "ELFFlowMatchingOutput", "ELFForFlowMatching", "ELFModel", "ELFPreTrainedModel"]
