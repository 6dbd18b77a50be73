from .configuration_elf import ELFConfig
from .distillation_elf import ELFForDistillation
from .modeling_elf import ELFFlowMatchingOutput, ELFForFlowMatching, ELFModel, ELFPreTrainedModel


__all__ = ["ELFConfig", "ELFFlowMatchingOutput", "ELFForDistillation", "ELFForFlowMatching", "ELFModel",
           "ELFPreTrainedModel"]  # fmt: skip
