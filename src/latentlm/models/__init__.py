from .backbone import DenoiserOutput, DenoiserPreTrainedModel, DenoiserTransformer
from .elf import ELFConfig, ELFFlowMatchingOutput, ELFForFlowMatching, ELFModel, ELFPreTrainedModel
from .modeling_utils import LatentDiffusionMixin
from .registry import MethodSpec, get_method, list_methods


__all__ = [
    "DenoiserOutput",
    "DenoiserPreTrainedModel",
    "DenoiserTransformer",
    "ELFConfig",
    "ELFFlowMatchingOutput",
    "ELFForFlowMatching",
    "ELFModel",
    "ELFPreTrainedModel",
    "LatentDiffusionMixin",
    "MethodSpec",
    "get_method",
    "list_methods",
]
