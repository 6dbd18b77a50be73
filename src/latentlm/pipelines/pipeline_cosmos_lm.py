"""Sampling from Cosmos: diffusion in the latent space of a trained text autoencoder."""

from ..models.cosmos_lm.modeling_cosmos_lm import CosmosLMAutoencoder, CosmosLMForDiffusion
from ..schedulers import EulerMaruyamaVPScheduler
from .pipeline_latent_diffusion import LatentDiffusionTextPipeline


class CosmosLMPipeline(LatentDiffusionTextPipeline):
    r"""Generation with Cosmos: the reverse SDE over the N latents, then one pass of the autoencoder's decompressor
    for all L tokens.

    The loop is latentlm's one loop (`LatentDiffusionTextPipeline`); the autoencoder is a registered component, saved
    and loaded with the pipeline, and the model decodes through it. The sampler lives in the scheduler's config
    (`EulerMaruyamaVPScheduler`: `solver` "euler_maruyama" as Cosmos, "probability_flow" or "ddim"). It takes 200
    steps unless told otherwise, as Cosmos samples (`conf/diffusion/default.yaml`, `dynamic.N`); the steps/quality
    table in `benchmarks/cosmos-denoiser/` measures what fewer cost. `gen_length` may be shorter than the
    autoencoder's L: the text is its first tokens.

    Conditional models (`config.conditional`) read a `prompt` or `source` by cross-attention (the autoencoder's frozen
    encoder, loaded on first use, encodes it); the generated text follows the prompt and has up to L tokens of its
    own. `guidance_scale` is classifier-free guidance on that condition; Cosmos learns no other guidance.

    Args:
        model: the denoiser (`CosmosLMForDiffusion`).
        autoencoder: the trained `CosmosLMAutoencoder` whose latents the model denoises (with fitted latent
            statistics).
        scheduler: the sampler.
        tokenizer: the autoencoder's tokenizer; needed for prompts, sources and `output_type="text"`.

    Examples:
        ```py
        >>> import torch
        >>> from latentlm import CosmosLMPipeline

        >>> pipe = CosmosLMPipeline.from_pretrained("runs/cosmos")
        >>> out = pipe(batch_size=4, generator=torch.Generator().manual_seed(0))  # 200 steps
        >>> print(out.texts)
        ```
    """

    model_cpu_offload_seq = "model->autoencoder"
    _default_num_inference_steps = 200

    def __init__(
        self,
        model: CosmosLMForDiffusion,
        autoencoder: CosmosLMAutoencoder,
        scheduler: EulerMaruyamaVPScheduler,
        tokenizer=None,
    ):
        super().__init__(model=model, scheduler=scheduler, tokenizer=tokenizer)
        self.register_modules(autoencoder=autoencoder)
        model.set_autoencoder(autoencoder)

    def __setattr__(self, name, value):
        # The model decodes through the autoencoder it holds: keep the two in step when a component is replaced
        # (`pipe.autoencoder = other`, `pipe.model = other`), as registering them in `__init__` does.
        super().__setattr__(name, value)
        if name == "autoencoder" and value is not None and getattr(self, "model", None) is not None:
            self.model.set_autoencoder(value)
        elif name == "model" and value is not None and getattr(self, "autoencoder", None) is not None:
            value.set_autoencoder(self.autoencoder)

    @classmethod
    def from_model(cls, model: CosmosLMForDiffusion, tokenizer=None, scheduler=None):
        """Builds the pipeline around a trained model and the autoencoder attached to it."""
        return cls(
            model=model,
            autoencoder=model.get_autoencoder(),
            scheduler=scheduler or model.get_default_scheduler(),
            tokenizer=tokenizer,
        )
