"""Sampling from NFDM (a learned Gaussian forward process, arXiv 2601.16220)."""

from ..models.nfdm.modeling_nfdm import NFDMForDiffusion
from ..schedulers import LearnedGaussianSDEScheduler
from .pipeline_latent_diffusion import LatentDiffusionTextPipeline


class NFDMPipeline(LatentDiffusionTextPipeline):
    r"""Unconditional generation with NFDM through the shared loop: the model hands the scheduler ``x_hat``, its
    learned forward process at ``(x_hat, t)`` with time derivatives, and ``g(t)``; the scheduler integrates the reverse
    SDE, the probability-flow ODE or the ancestral sampler (``solver`` in its config); the tied head rounds the final
    latents to tokens. NFDM has no guidance and no condition (yet): ``guidance_scale`` stays 1.

    What `denoise` returns (and `callback_on_step_end` sees as ``pred_original_sample``) is the packed
    `(batch, gen_length, latent_dim, 6)` tensor of `LearnedGaussianSDEScheduler.pack_model_output`; its channel 0 is
    the clean-latent estimate ``x_hat``.

    Examples:
        ```py
        >>> import torch
        >>> from latentlm import LearnedGaussianSDEScheduler, NFDMPipeline

        >>> pipe = NFDMPipeline.from_pretrained("runs/nfdm")
        >>> out = pipe(batch_size=4, gen_length=64, num_inference_steps=64, generator=torch.Generator().manual_seed(0))
        >>> # The probability-flow ODE or the ancestral sampler instead of the reverse SDE:
        >>> pipe.scheduler = LearnedGaussianSDEScheduler.from_config(pipe.scheduler.config, solver="ancestral")
        ```
    """

    def __init__(self, model: NFDMForDiffusion, scheduler: LearnedGaussianSDEScheduler, tokenizer=None):
        super().__init__(model=model, scheduler=scheduler, tokenizer=tokenizer)
