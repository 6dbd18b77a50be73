"""Sampling from ELF (Embedded Language Flows)."""

import torch
from diffusers.utils import replace_example_docstring

from ..models.elf.modeling_elf import ELFForFlowMatching
from ..schedulers import FlowMatchEulerSDEScheduler
from .pipeline_latent_diffusion import LatentDiffusionTextPipeline


EXAMPLE_DOC_STRING = """
    Examples:
        ```py
        >>> import torch
        >>> import latentlm
        >>> from latentlm import ELFPipeline

        >>> pipe = ELFPipeline.from_pretrained(latentlm.pretrained_path("elf-tiny-prose"))
        >>> out = pipe(batch_size=4, gen_length=64, num_inference_steps=32, generator=torch.Generator().manual_seed(0))
        >>> print(out.texts)
        ```
"""


class ELFPipeline(LatentDiffusionTextPipeline):
    r"""Unconditional generation with ELF: Euler / SDE integration of the learned flow in the encoder's embedding
    space, then one decode pass of the same network.

    The sampler (ODE or SDE with re-injection `gamma`, logit-normal or uniform time grid, last step always ODE) is
    configured on the scheduler, see `FlowMatchEulerSDEScheduler`. `guidance_scale` is the self-conditioning
    guidance omega the model learned at training time (paper default 3.0; 1.0 turns guidance off); it costs no extra
    forward pass.
    """

    def __init__(self, model: ELFForFlowMatching, scheduler: FlowMatchEulerSDEScheduler, tokenizer=None):
        super().__init__(model=model, scheduler=scheduler, tokenizer=tokenizer)

    @torch.no_grad()
    @replace_example_docstring(EXAMPLE_DOC_STRING)
    def __call__(self, *args, guidance_scale: float | None = 3.0, **kwargs):
        r"""Generates text with ELF; arguments as in [`LatentDiffusionTextPipeline.__call__`], with
        `guidance_scale` defaulting to 3.0.

        Examples:
        """
        return super().__call__(*args, guidance_scale=guidance_scale, **kwargs)
