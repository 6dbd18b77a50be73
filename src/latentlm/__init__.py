"""latentlm: continuous latent diffusion and flow-matching language models for the Hugging Face ecosystem.

`import latentlm` stays light (torch, transformers, diffusers); accelerate, datasets, peft and the evaluation stack
are imported by the subpackages that use them.
"""

from pathlib import Path

from transformers import AutoConfig, AutoModel

from .models import (
    CosmosLMAutoencoder,
    CosmosLMAutoencoderConfig,
    CosmosLMConfig,
    CosmosLMForDiffusion,
    CosmosLMForDistillation,
    CosmosLMModel,
    DenoiserTransformer,
    ELFConfig,
    ELFForDistillation,
    ELFForFlowMatching,
    ELFModel,
    ELFPreTrainedModel,
    LatentDiffusionMixin,
    LDLMConfig,
    LDLMDecoder,
    LDLMDecoderConfig,
    LDLMForDiffusion,
    LDLMModel,
    NFDMConfig,
    NFDMForDiffusion,
    NFDMModel,
    get_method,
    list_methods,
)
from .models.auto import AutoModelForTextDiffusion
from .pipelines import (
    AutoPipelineForTextGeneration,
    CosmosLMPipeline,
    ELFPipeline,
    LatentDiffusionTextPipeline,
    LDLMPipeline,
    NFDMPipeline,
    TextPipelineOutput,
)
from .schedulers import EulerMaruyamaVPScheduler, FlowMatchEulerSDEScheduler, LearnedGaussianSDEScheduler


__version__ = "0.1.0.dev0"

AutoConfig.register(ELFConfig.model_type, ELFConfig, exist_ok=True)
AutoModel.register(ELFConfig, ELFModel, exist_ok=True)
AutoModelForTextDiffusion.register(ELFConfig, ELFForFlowMatching, exist_ok=True)
AutoConfig.register(CosmosLMConfig.model_type, CosmosLMConfig, exist_ok=True)
AutoModel.register(CosmosLMConfig, CosmosLMModel, exist_ok=True)
AutoModelForTextDiffusion.register(CosmosLMConfig, CosmosLMForDiffusion, exist_ok=True)
AutoConfig.register(CosmosLMAutoencoderConfig.model_type, CosmosLMAutoencoderConfig, exist_ok=True)
AutoModel.register(CosmosLMAutoencoderConfig, CosmosLMAutoencoder, exist_ok=True)
AutoConfig.register(LDLMConfig.model_type, LDLMConfig, exist_ok=True)
AutoModel.register(LDLMConfig, LDLMModel, exist_ok=True)
AutoModelForTextDiffusion.register(LDLMConfig, LDLMForDiffusion, exist_ok=True)
AutoConfig.register(LDLMDecoderConfig.model_type, LDLMDecoderConfig, exist_ok=True)
AutoModel.register(LDLMDecoderConfig, LDLMDecoder, exist_ok=True)
AutoConfig.register(NFDMConfig.model_type, NFDMConfig, exist_ok=True)
AutoModel.register(NFDMConfig, NFDMModel, exist_ok=True)
AutoModelForTextDiffusion.register(NFDMConfig, NFDMForDiffusion, exist_ok=True)

_PRETRAINED_DIR = Path(__file__).parent / "pretrained"


def list_pretrained() -> list[str]:
    """Names of the models bundled with the package."""
    if not _PRETRAINED_DIR.is_dir():
        return []
    return sorted(p.name for p in _PRETRAINED_DIR.iterdir() if (p / "model_index.json").is_file())


def pretrained_path(name: str) -> str:
    """Local path of a pipeline folder shipped inside the package, for `Pipeline.from_pretrained` without network."""
    path = _PRETRAINED_DIR / name
    if not (path / "model_index.json").is_file():
        raise ValueError(f"`name` must be one of the bundled models {list_pretrained()}, got {name!r}.")
    return str(path)


__all__ = [
    "AutoModelForTextDiffusion",
    "AutoPipelineForTextGeneration",
    "CosmosLMAutoencoder",
    "CosmosLMAutoencoderConfig",
    "CosmosLMConfig",
    "CosmosLMForDiffusion",
    "CosmosLMForDistillation",
    "CosmosLMModel",
    "CosmosLMPipeline",
    "DenoiserTransformer",
    "ELFConfig",
    "ELFForDistillation",
    "ELFForFlowMatching",
    "ELFModel",
    "ELFPipeline",
    "ELFPreTrainedModel",
    "EulerMaruyamaVPScheduler",
    "FlowMatchEulerSDEScheduler",
    "LDLMConfig",
    "LDLMDecoder",
    "LDLMDecoderConfig",
    "LDLMForDiffusion",
    "LDLMModel",
    "LDLMPipeline",
    "LatentDiffusionMixin",
    "LatentDiffusionTextPipeline",
    "LearnedGaussianSDEScheduler",
    "NFDMConfig",
    "NFDMForDiffusion",
    "NFDMModel",
    "NFDMPipeline",
    "TextPipelineOutput",
    "get_method",
    "list_methods",
    "list_pretrained",
    "pretrained_path",
]
