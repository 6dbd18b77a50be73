"""Sampling from ELF (Embedded Language Flows)."""

from ..models.elf.modeling_elf import ELFForFlowMatching
from ..schedulers import FlowMatchEulerSDEScheduler
from .pipeline_latent_diffusion import LatentDiffusionTextPipeline


class ELFPipeline(LatentDiffusionTextPipeline):
    r"""Generation with ELF: Euler / SDE integration of the learned flow in the encoder's embedding space, then one
    decode pass of the same network.

    The sampler (ODE or SDE with re-injection `gamma`, logit-normal or uniform time grid, last step always ODE) is
    configured on the scheduler, see `FlowMatchEulerSDEScheduler`. Two guidance scales, not to be confused:

    * `sc_guidance_scale`: the self-conditioning guidance omega the model learned at training time (paper default
      3.0, the default here; 1.0 turns it off); it costs no extra forward pass;
    * `guidance_scale`: classifier-free guidance on a `prompt` or `source` (models trained with conditions; 1.0 = off,
      the official conditional configs use 2.0); it doubles the batch.

    A prompt or source is encoded by the frozen encoder named in the model's config (loaded on first use) and sits
    clean before the generated tokens, so prompt and continuation share the model's `max_position_embeddings`.

    Examples:
        ```py
        >>> import torch
        >>> import latentlm
        >>> from latentlm import ELFPipeline

        >>> pipe = ELFPipeline.from_pretrained(latentlm.pretrained_path("elf-tiny-prose"))
        >>> out = pipe(batch_size=4, gen_length=64, num_inference_steps=32, generator=torch.Generator().manual_seed(0))
        >>> print(out.texts)
        >>> out = pipe(prompt=["the government said", "she walked into the room"], num_return_sequences=2,
        ...            max_new_tokens=48, generator=torch.Generator().manual_seed(0))
        ```
    """

    default_sc_guidance_scale = 3.0

    def __init__(self, model: ELFForFlowMatching, scheduler: FlowMatchEulerSDEScheduler, tokenizer=None):
        super().__init__(model=model, scheduler=scheduler, tokenizer=tokenizer)
