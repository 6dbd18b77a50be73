"""Sampling from LDLM: diffusion in a latent space trained jointly with the denoiser, decoded by its own decoder."""

from ..models.ldlm.modeling_ldlm import LDLMForDiffusion, LDLMModel
from ..models.ldlm.modeling_ldlm_codec import LDLMDecoder
from ..schedulers import EulerMaruyamaVPScheduler
from .pipeline_latent_diffusion import LatentDiffusionTextPipeline


class LDLMPipeline(LatentDiffusionTextPipeline):
    r"""Generation with LDLM: the reverse SDE (or DDIM / probability-flow ODE) over the N latents, then one pass of the
    decoder (latent decoder, token decoder) for all L tokens.

    The loop is latentlm's one loop (`LatentDiffusionTextPipeline`). Unconditional sampling needs neither the frozen LM
    nor the encoder:
    the pipeline holds the denoiser (`LDLMModel`) and the decoder side (`LDLMDecoder`) as two components, saved and
    loaded with it. The sampler lives in the scheduler's config (`EulerMaruyamaVPScheduler`, `solver`
    "euler_maruyama", "probability_flow" or "ddim"); the paper samples in 4-10 steps.

    A model trained with conditions (`conditional`: paired data or prompt continuation) takes `prompt` or `source`:
    the denoiser cross-attends to the condition's frozen-LM states, so the frozen LM is loaded (by name) for those
    calls only; input classifier-free guidance through `guidance_scale`.

    Args:
        model: the denoiser (`LDLMModel`).
        decoder: the `LDLMDecoder` trained with it.
        scheduler: the sampler.
        tokenizer: the model's tokenizer; needed for `output_type="text"` only.

    Examples:
        ```py
        >>> import torch
        >>> from latentlm import LDLMPipeline

        >>> pipe = LDLMPipeline.from_pretrained("runs/ldlm")
        >>> out = pipe(batch_size=4, num_inference_steps=8, generator=torch.Generator().manual_seed(0))
        >>> print(out.texts)
        ```
    """

    model_cpu_offload_seq = "model->decoder"

    def __init__(self, model: LDLMModel, decoder: LDLMDecoder, scheduler: EulerMaruyamaVPScheduler, tokenizer=None):
        super().__init__(model=model, scheduler=scheduler, tokenizer=tokenizer)
        self.register_modules(decoder=decoder)
        model.set_text_decoder(decoder)

    @classmethod
    def from_model(cls, model: LDLMForDiffusion | LDLMModel, tokenizer=None, scheduler=None):
        """Builds the pipeline from a trained `LDLMForDiffusion` (its denoiser and decoder; the encoder is left out),
        or from an `LDLMModel` with its decoder attached."""
        if isinstance(model, LDLMForDiffusion):
            denoiser, decoder = model.model, model.decoder
        else:
            denoiser, decoder = model, model.get_text_decoder()
        return cls(model=denoiser, decoder=decoder, scheduler=scheduler or denoiser.get_default_scheduler(),
                   tokenizer=tokenizer)  # fmt: skip
