"""The sampling interface every diffusion method's model exposes to the one pipeline loop."""

import torch


class LatentDiffusionMixin:
    """What `LatentDiffusionTextPipeline` needs from a model. Method heads (`ELFForFlowMatching`, ...) implement it.

    The pipeline owns the loop and the scheduler integrates; the model only answers four questions:

    * `latent_shape(gen_length)`: the shape of one sample's latents for `gen_length` tokens;
    * `denoise(latents, timestep, ...)`: the clean-latent (x0) prediction at one step;
    * `decode_latents(latents, ...)`: token logits for clean latents;
    * `get_default_scheduler()`: the scheduler matching the path the model was trained on.
    """

    def latent_shape(self, gen_length: int) -> tuple[int, ...]:
        """Shape of one sample's latents, without the batch dimension."""
        raise NotImplementedError

    def denoise(
        self,
        latents: torch.Tensor,
        timestep: torch.Tensor | float,
        *,
        self_condition: torch.Tensor | None = None,
        guidance_scale: float | None = None,
        attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Predicts clean latents `(batch, *latent_shape)` from noisy ones at `timestep` (sigma, 1 = noise)."""
        raise NotImplementedError

    def decode_latents(
        self, latents: torch.Tensor, *, guidance_scale: float | None = None, attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Token logits `(batch, gen_length, vocab_size)` for clean latents."""
        raise NotImplementedError

    def get_default_scheduler(self):
        raise NotImplementedError

    @property
    def max_gen_length(self) -> int:
        """The longest generation the model supports."""
        return self.config.max_position_embeddings
