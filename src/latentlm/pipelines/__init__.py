from .auto import AutoPipelineForTextGeneration
from .pipeline_cosmos_lm import CosmosLMPipeline
from .pipeline_elf import ELFPipeline
from .pipeline_latent_diffusion import LatentDiffusionTextPipeline
from .pipeline_ldlm import LDLMPipeline
from .pipeline_nfdm import NFDMPipeline
from .pipeline_output import TextPipelineOutput


__all__ = [
    "AutoPipelineForTextGeneration",
    "CosmosLMPipeline",
    "ELFPipeline",
    "LDLMPipeline",
    "LatentDiffusionTextPipeline",
    "NFDMPipeline",
    "TextPipelineOutput",
]
