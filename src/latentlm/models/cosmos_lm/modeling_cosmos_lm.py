"""Cosmos: diffusion in a compressed, smooth text latent space (Meshchaninov et al., arXiv 2506.21170).

Two models, trained one after the other (read against `dbal0503/cosmos`, `encoder_trainer.py` and
`diffusion_trainer.py`):

* `CosmosLMAutoencoder` (the codec, `modeling_cosmos_lm_autoencoder.py`): a Perceiver compressor turns a frozen
  encoder's L activations into N latents and a Perceiver decompressor turns them back into L tokens; augmentations
  make the latent space smooth.
* `CosmosLMForDiffusion` (the denoiser): the shared `DenoiserTransformer` with long skips over the autoencoder's
  latents, standardised per latent position and dimension; variance-preserving tan schedule, x0-prediction MSE
  with times U(1e-5, 1), self-conditioning. By default the denoiser is `architecture/score_estimator.py`'s: time
  and self-conditioning added before every block, additive skips, an RMSNorm output, one self-conditioning coin per
  batch (`CosmosLMConfig`; `models/denoiser_conditioning.py`). Sampling integrates the reverse SDE to `t_min`
  (200 steps by default) and decodes once.
"""

from dataclasses import dataclass

import torch
from diffusers.utils.accelerate_utils import apply_forward_hook
from transformers import PreTrainedModel  # noqa: F401  (diffusers' pipeline loader looks the base class up by name)
from transformers.utils import ModelOutput, can_return_tuple

from ...schedulers import EulerMaruyamaVPScheduler
from ..backbone import DenoiserOutput, DenoiserPreTrainedModel, DenoiserTransformer
from ..modeling_utils import ConditionalTrainingMixin, LatentDiffusionMixin, TextCondition, cross_attention_kwargs
from .configuration_cosmos_lm import CosmosLMConfig
from .modeling_cosmos_lm_autoencoder import CosmosLMAutoencoder


@dataclass
class CosmosLMDiffusionOutput(ModelOutput):
    """
    Args:
        loss (`torch.FloatTensor` of shape `()`): x0-prediction MSE on the normalised latents.
        pred_original_sample (`torch.FloatTensor` of shape `(batch, num_latents, latent_dim)`): the prediction.
    """

    loss: torch.FloatTensor | None = None
    pred_original_sample: torch.FloatTensor | None = None


# ----------------------------------------------------------------------------------------------------------------------
# Latent diffusion
# ----------------------------------------------------------------------------------------------------------------------


class CosmosLMPreTrainedModel(DenoiserPreTrainedModel):
    config_class = CosmosLMConfig
    config: CosmosLMConfig


class CosmosLMModel(CosmosLMPreTrainedModel):
    """The bare Cosmos denoiser: `DenoiserTransformer` (with long skips) configured by `CosmosLMConfig`."""

    main_input_name = "hidden_states"

    def __init__(self, config: CosmosLMConfig):
        super().__init__(config)
        self.transformer = DenoiserTransformer(config)
        self.post_init()

    def forward(self, hidden_states, timestep, attention_mask=None, **kwargs) -> DenoiserOutput:
        """See `DenoiserTransformer.forward`."""
        return self.transformer(hidden_states, timestep, attention_mask=attention_mask, **kwargs)


class CosmosLMForDiffusion(CosmosLMPreTrainedModel, LatentDiffusionMixin, ConditionalTrainingMixin):
    """Cosmos' latent diffusion: x0-prediction MSE on the normalised latents of a frozen `CosmosLMAutoencoder`.

    The autoencoder is attached (`prepare_for_training`, `set_autoencoder`) and kept out of the state dict: a saved
    model is the denoiser only; `CosmosLMPipeline` saves the autoencoder beside it as its own component.
    """

    def __init__(self, config: CosmosLMConfig):
        super().__init__(config)
        self.model = CosmosLMModel(config)
        self.noise_scheduler = self.get_default_scheduler()
        self.post_init()

    # ----------------------------------------------------------------------------------------------------------
    # The frozen autoencoder
    # ----------------------------------------------------------------------------------------------------------

    @property
    def autoencoder(self) -> CosmosLMAutoencoder | None:
        return self.__dict__.get("_autoencoder")

    def set_autoencoder(self, autoencoder: CosmosLMAutoencoder) -> None:
        """Attaches a trained autoencoder, frozen, without registering it as a submodule."""
        ae, cfg = autoencoder.config, self.config
        for name, expected in (
            ("num_latents", cfg.num_latents),
            ("latent_dim", cfg.latent_dim),
            ("vocab_size", cfg.vocab_size),
            ("max_position_embeddings", cfg.max_position_embeddings),
            *((("encoder_dim", cfg.cross_attention_dim),) if cfg.conditional else ()),
        ):
            if getattr(ae, name) != expected:
                raise ValueError(
                    f"`autoencoder` has `{name}` = {getattr(ae, name)} but the diffusion model expects {expected}: "
                    "build the diffusion config from the autoencoder's (the training loop does)."
                )
        autoencoder.eval().requires_grad_(False)
        self.__dict__["_autoencoder"] = autoencoder

    def get_autoencoder(self) -> CosmosLMAutoencoder:
        """The attached autoencoder; a `ValueError` that says how to attach one if there is none."""
        if self.autoencoder is None:
            raise ValueError(
                "Cosmos diffusion needs its trained autoencoder: pass `--autoencoder PATH` to `latentlm train`, or "
                "call `model.prepare_for_training(dataloader)` or `model.set_autoencoder(...)`."
            )
        return self.autoencoder

    def load_autoencoder(self) -> CosmosLMAutoencoder:
        """Loads `config.autoencoder_name_or_path` unless an autoencoder is attached."""
        if self.autoencoder is None:
            if self.config.autoencoder_name_or_path is None:
                self.get_autoencoder()
            self.set_autoencoder(CosmosLMAutoencoder.from_pretrained(self.config.autoencoder_name_or_path))
        return self.autoencoder

    def load_text_encoder(self) -> torch.nn.Module:
        """The autoencoder's frozen text encoder, loaded if needed (the training loop's activation cache uses it)."""
        return self.load_autoencoder().load_text_encoder()

    def encoder_activations(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """The autoencoder's frozen-encoder activations `(batch, seq_len, encoder_dim)` (see `FrozenTextEncoderMixin`)."""
        return self.get_autoencoder().encoder_activations(input_ids, attention_mask)

    def prepare_for_training(self, dataloader, num_batches: int = 16) -> None:
        """Training-loop hook: loads the autoencoder and its encoder, fits its latent statistics if unset."""
        autoencoder = self.load_autoencoder()
        autoencoder.to(self.device).load_text_encoder()
        if not autoencoder.has_latent_statistics:
            autoencoder.fit_latent_statistics(
                {key: value.to(self.device) for key, value in batch.items()}
                for _, batch in zip(range(num_batches), dataloader)
            )

    # ----------------------------------------------------------------------------------------------------------
    # Training objective
    # ----------------------------------------------------------------------------------------------------------

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        latents: torch.Tensor | None = None,
        encoder_activations: torch.Tensor | None = None,
        condition_input_ids: torch.LongTensor | None = None,
        condition_attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
    ) -> CosmosLMDiffusionOutput:
        """Cosmos' diffusion loss for one batch.

        Args:
            input_ids, attention_mask: `(batch, seq_len)` text (the target, for paired data), encoded by the frozen
                autoencoder.
            labels: unused (the objective is in latent space); accepted for the training loop's batches.
            latents: `(batch, num_latents, latent_dim)` precomputed normalised latents (skips the autoencoder).
            encoder_activations: `(batch, seq_len, encoder_dim)` precomputed raw encoder activations.
            condition_input_ids, condition_attention_mask: `(batch, cond_len)` right-padded source tokens of paired
                data (conditional models only). Without them a conditional model trains prompt continuation on
                `config.prompt_prob` of the batches (`ConditionalTrainingMixin`).
            token_type_ids: accepted so that `model(**tokenizer(texts))` works, and ignored (one text per row).
        """
        self.check_condition_inputs(condition_input_ids)
        condition = None
        if condition_input_ids is not None:
            condition = self.encode_condition(condition_input_ids, condition_attention_mask)
        elif latents is None and (split := self.sample_prompt_split(input_ids, attention_mask)):
            prompt_ids, prompt_mask, input_ids, attention_mask = self.split_window(input_ids, attention_mask, split)
            condition = self.encode_condition(prompt_ids, prompt_mask)
            encoder_activations = None  # the target is re-encoded from its first token
        if condition is not None:
            condition = self.drop_conditions(condition)
        if latents is None:
            latents = self.clean_latents(input_ids, attention_mask, encoder_activations)
        x0 = latents.to(self.dtype)
        batch = x0.shape[0]
        # Cosmos' one coin per batch is drawn first: how much randomness the noise below uses depends on its dtype.
        batch_coin = None
        if self.config.self_conditioning and self.config.self_cond_per_batch:
            batch_coin = bool(torch.rand((), device=x0.device) < self.config.self_cond_prob)
        t = self.noise_scheduler.sample_training_timesteps(batch, device=x0.device).to(x0.dtype)
        # float32 noise whatever the model's dtype: a step draws the same noise in float32, float64 or bfloat16.
        noisy = self.noise_scheduler.add_noise(x0, torch.randn(x0.shape, device=x0.device).to(x0.dtype), t)

        condition_kwargs = cross_attention_kwargs(condition)
        self_condition = None
        if self.config.self_conditioning:
            self_condition = self._training_self_condition(noisy, t, condition_kwargs, batch_coin)
        prediction = self.model(noisy, t, self_condition=self_condition, **condition_kwargs).sample
        loss = (prediction.float() - x0.float()).pow(2).mean()
        return CosmosLMDiffusionOutput(loss=loss, pred_original_sample=prediction)

    @torch.no_grad()
    def clean_latents(self, input_ids, attention_mask=None, encoder_activations=None) -> torch.Tensor:
        """The training target x0: the frozen autoencoder's normalised latents `(batch, num_latents, latent_dim)` of the
        text (from its cached `encoder_activations` when given)."""
        autoencoder = self.get_autoencoder()
        return autoencoder.normalize_latents(
            autoencoder.encode(input_ids, attention_mask, encoder_activations=encoder_activations)
        )

    def _training_self_condition(self, noisy, t, condition_kwargs: dict, batch_coin: bool | None) -> torch.Tensor:
        """The self-conditioning input of a training step: a no-grad x0 estimate on `self_cond_prob` of the batch
        (``batch_coin`` for the whole batch with `self_cond_per_batch`, as Cosmos' trainer, else one coin per
        example), zeros elsewhere. A failed batch coin skips the estimating pass."""
        if batch_coin is not None:
            if not batch_coin:
                return torch.zeros_like(noisy)
            with torch.no_grad():
                return self.model(noisy, t, **condition_kwargs).sample
        with torch.no_grad():
            estimate = self.model(noisy, t, **condition_kwargs).sample
        use = (torch.rand(noisy.shape[0], device=noisy.device) < self.config.self_cond_prob).to(noisy.dtype)
        return estimate * use[:, None, None]

    # ----------------------------------------------------------------------------------------------------------
    # Sampling interface (LatentDiffusionMixin)
    # ----------------------------------------------------------------------------------------------------------

    def get_default_scheduler(self) -> EulerMaruyamaVPScheduler:
        """Cosmos' sampler: Euler–Maruyama on the reverse VP SDE of the tan schedule, to `t_min`. A distilled student
        (`config.distill_steps`) samples the DDIM steps it was distilled for."""
        distill_steps = getattr(self.config, "distill_steps", None)
        return EulerMaruyamaVPScheduler(
            schedule_d=self.config.schedule_d,
            t_min=self.config.t_min,
            training_t_min=self.config.training_t_min,
            solver="euler_maruyama" if distill_steps is None else "ddim",
            default_num_inference_steps=distill_steps,
        )

    def latent_shape(self, gen_length: int) -> tuple[int, int]:
        """Always `(num_latents, latent_dim)`: the latents describe L tokens; shorter texts are the first tokens."""
        return (self.config.num_latents, self.config.latent_dim)

    @apply_forward_hook
    def encode_condition(self, input_ids, attention_mask=None) -> TextCondition:
        """The condition the denoiser cross-attends to: the autoencoder's frozen-encoder activations of the condition
        tokens, normalised like the autoencoder's input. Loads the frozen encoder on first use."""
        autoencoder = self.get_autoencoder()
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        autoencoder.load_text_encoder()
        states = autoencoder.normalize_activations(autoencoder.encoder_activations(input_ids, attention_mask))
        mask = attention_mask.bool()
        return TextCondition(states.to(self.dtype) * mask[..., None], mask)

    @apply_forward_hook
    def denoise(self, latents, timestep, *, self_condition=None, sc_guidance_scale=None, condition=None):
        if not self.config.self_conditioning:
            self_condition = None
        return self.model(latents, timestep, self_condition=self_condition, **cross_attention_kwargs(condition)).sample

    @apply_forward_hook
    def decode_latents(self, latents, *, sc_guidance_scale=None, condition=None):
        autoencoder = self.get_autoencoder()
        return autoencoder.decode(autoencoder.denormalize_latents(latents.to(autoencoder.dtype)))

    @apply_forward_hook
    def decode_latents_to_ids(self, latents, *, sc_guidance_scale=None, condition=None):
        autoencoder = self.get_autoencoder()
        return autoencoder.decode_to_ids(autoencoder.denormalize_latents(latents.to(autoencoder.dtype)))


__all__ = [
    "CosmosLMDiffusionOutput",
    "CosmosLMForDiffusion",
    "CosmosLMModel",
    "CosmosLMPreTrainedModel",
]
