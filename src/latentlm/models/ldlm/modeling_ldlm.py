"""LDLM: a latent diffusion language model trained jointly with its latent space (Meshchaninov et al., arXiv
2605.07933). No official code exists; this follows the paper's abstract and the recipe as described in
`research/papers.md` §5, avoiding the errors of the one public re-implementation (Open-dLLM) noted there.

* The latent space: `h = (LM(tokens)[encoder_layer] - mean) / std` from a frozen pretrained model, standardised per
  dimension with data statistics; a trainable Perceiver **encoder** (`LDLMEncoder`) reads the L states into N latents
  `z`, RMS-normalised per latent vector.
* The decoder side (`LDLMDecoder`, exported on its own for sampling, like Cosmos' autoencoder): a Perceiver **latent
  decoder** maps `z` back to L states `h_hat`, a small **token decoder** maps `h_hat` to token logits. Both codec
  halves live in `modeling_ldlm_codec.py`.
* The **denoiser** (`LDLMModel`): the shared `DenoiserTransformer` over the N latents, x0-prediction on the
  variance-preserving tan schedule (d = 3), self-conditioning half of the time (per example).
* `LDLMForDiffusion` trains all three together with `gamma(s) L_diff + L_h + L_w` and the four-part recipe (see
  `LDLMConfig`). Sampling needs neither the frozen LM nor the encoder: the pipeline holds the denoiser and the decoder.
"""

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from diffusers.utils.accelerate_utils import apply_forward_hook
from transformers import PreTrainedModel  # noqa: F401  (diffusers' pipeline loader looks the base class up by name)
from transformers.utils import ModelOutput, can_return_tuple

from ...schedulers import EulerMaruyamaVPScheduler
from ..backbone import DenoiserOutput, DenoiserPreTrainedModel, DenoiserTransformer
from ..cosmos_lm.modeling_cosmos_lm_autoencoder import _RunningMoments
from ..encoders import FrozenTextEncoderMixin
from ..modeling_utils import ConditionalTrainingMixin, LatentDiffusionMixin, TextCondition, cross_attention_kwargs
from ..perceiver import PerceiverAttention
from .configuration_ldlm import LDLMConfig
from .modeling_ldlm_codec import LDLMDecoder, LDLMEncoder, _init_perceiver_params
from .timestep_sampler import AdaptiveTimestepSampler


@dataclass
class LDLMOutput(ModelOutput):
    """
    Args:
        loss (`torch.FloatTensor` of shape `()`): `L_diff + L_h + L_w` (the warm-up scales a gradient, not a value;
            without `mse_decoder_loss`, `L_diff + L_w`).
        diffusion_loss, hidden_mse_loss, token_ce_loss (`torch.FloatTensor` of shape `()`): `L_diff`, `L_h`, `L_w`,
            differentiable (`hidden_mse_loss` is reported but not trained without `mse_decoder_loss`).
        logits (`torch.FloatTensor` of shape `(batch, seq_len, vocab_size)`): the token decoder's reconstruction.
        latents (`torch.FloatTensor` of shape `(batch, num_latents, latent_dim)`): the encoder's clean latents.
        metrics (`dict[str, torch.FloatTensor]`): token `accuracy` and the warm-up factor `encoder_gamma`.
    """

    loss: torch.FloatTensor | None = None
    diffusion_loss: torch.FloatTensor | None = None
    hidden_mse_loss: torch.FloatTensor | None = None
    token_ce_loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    latents: torch.FloatTensor | None = None
    metrics: dict | None = None


def scale_gradient(tensor: torch.Tensor, scale: float) -> torch.Tensor:
    """`tensor` unchanged in the forward pass; its gradient multiplied by `scale` in the backward pass."""
    if scale == 1.0:
        return tensor
    detached = tensor.detach()
    return detached + scale * (tensor - detached)


def warmup_gamma(step: int, warmup_steps: int, gamma_min: float, k: float = 10.0, c: float = 0.8) -> float:
    """LDLM's diffusion-to-encoder warm-up factor:
    `gamma(s) = gamma_min + (1 - gamma_min) (sig(s) - sig(0)) / (sig(S) - sig(0))`, `sig(s) = sigmoid(k (s / S - c))`,
    for `s` in [0, S]; 1 from `S` on."""
    if step >= warmup_steps:
        return 1.0

    def sig(s: float) -> float:
        return 1.0 / (1.0 + math.exp(-k * (s / warmup_steps - c)))

    return gamma_min + (1 - gamma_min) * (sig(step) - sig(0)) / (sig(warmup_steps) - sig(0))


# ----------------------------------------------------------------------------------------------------------------------
# The denoiser and the joint training head
# ----------------------------------------------------------------------------------------------------------------------


class LDLMPreTrainedModel(DenoiserPreTrainedModel):
    config_class = LDLMConfig
    config: LDLMConfig


class LDLMModel(LDLMPreTrainedModel, LatentDiffusionMixin, FrozenTextEncoderMixin):
    """LDLM's denoiser (`DenoiserTransformer` configured by `LDLMConfig`) and the sampling interface of the one pipeline
    loop: it denoises the N latents, and decodes them through the attached `LDLMDecoder` (`set_text_decoder`, not a
    submodule: `LDLMPipeline` holds the decoder as its own component).

    A conditional model (`config.conditional`) cross-attends to its condition's frozen-LM states: it reads them with the
    frozen LM (`FrozenTextEncoderMixin`, loaded by name on first use, never saved) and standardises them with buffers
    `hidden_mean` / `hidden_std` `(encoder_dim,)`, the statistics of the target's states (copied from
    `LDLMForDiffusion` when it fits them). An unconditional model has neither.
    """

    main_input_name = "hidden_states"
    _encoder_width_field = "encoder_dim"
    _encoder_layer_field = "encoder_layer"

    def __init__(self, config: LDLMConfig):
        super().__init__(config)
        self.transformer = DenoiserTransformer(config)
        self.noise_scheduler = self.get_default_scheduler()
        if config.conditional:
            self.register_buffer("hidden_mean", torch.zeros(config.encoder_dim))
            self.register_buffer("hidden_std", torch.zeros(config.encoder_dim))
        self.post_init()

    def forward(self, hidden_states, timestep, attention_mask=None, **kwargs) -> DenoiserOutput:
        """See `DenoiserTransformer.forward`."""
        return self.transformer(hidden_states, timestep, attention_mask=attention_mask, **kwargs)

    @property
    def text_decoder(self) -> LDLMDecoder | None:
        return self.__dict__.get("_text_decoder")

    def set_text_decoder(self, decoder: LDLMDecoder) -> None:
        """Attaches the decoder the latents are decoded with, without registering it as a submodule."""
        for name in ("num_latents", "latent_dim", "vocab_size", "max_position_embeddings"):
            if getattr(decoder.config, name) != getattr(self.config, name):
                raise ValueError(
                    f"`decoder` has `{name}` = {getattr(decoder.config, name)} but the denoiser expects "
                    f"{getattr(self.config, name)}: they come from different LDLM models."
                )
        self.__dict__["_text_decoder"] = decoder

    def get_text_decoder(self) -> LDLMDecoder:
        if self.text_decoder is None:
            raise ValueError(
                "LDLM decodes through its `LDLMDecoder`: load an `LDLMPipeline`, or call `model.set_text_decoder(...)`."
            )
        return self.text_decoder

    def get_default_scheduler(self) -> EulerMaruyamaVPScheduler:
        """Euler–Maruyama on the reverse VP SDE of the tan schedule (d = `schedule_d`), to `t_min`."""
        return EulerMaruyamaVPScheduler(
            schedule_d=self.config.schedule_d, t_min=self.config.t_min, training_t_min=self.config.training_t_min
        )

    def latent_shape(self, gen_length: int) -> tuple[int, int]:
        """Always `(num_latents, latent_dim)`: the latents describe L tokens; shorter texts are the first tokens."""
        return (self.config.num_latents, self.config.latent_dim)

    @apply_forward_hook
    def encode_condition(self, input_ids, attention_mask=None) -> TextCondition:
        """The condition the denoiser cross-attends to: the frozen LM's states of the condition tokens `(batch,
        cond_len)`, standardised like the target's. Loads the frozen LM on first use."""
        if not self.config.conditional:
            raise ValueError("`condition`: this LDLM was trained unconditionally (`conditional=False`).")
        if not bool(self.hidden_std.abs().sum() > 0):
            raise ValueError(
                "The condition's state statistics are not fitted: train the model (`LDLMForDiffusion` copies them) or "
                "call `LDLMForDiffusion.fit_hidden_statistics(batches)`."
            )
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        states = (self.encoder_activations(input_ids, attention_mask) - self.hidden_mean) / self.hidden_std
        mask = attention_mask.bool()
        return TextCondition(states.to(self.dtype) * mask[..., None], mask)

    @apply_forward_hook
    def denoise(self, latents, timestep, *, self_condition=None, sc_guidance_scale=None, condition=None):
        if condition is not None and not self.config.conditional:
            raise ValueError("`condition`: this LDLM was trained unconditionally (`conditional=False`).")
        if not self.config.self_conditioning:
            self_condition = None
        return self.transformer(latents, timestep, self_condition=self_condition, **cross_attention_kwargs(condition)).sample

    @apply_forward_hook
    def decode_latents(self, latents, *, sc_guidance_scale=None, condition=None):
        decoder = self.get_text_decoder()
        return decoder.decode(latents.to(decoder.dtype))

    @apply_forward_hook
    def decode_latents_to_ids(self, latents, *, sc_guidance_scale=None, condition=None):
        decoder = self.get_text_decoder()
        return decoder.decode_to_ids(latents.to(decoder.dtype))


class LDLMForDiffusion(LDLMPreTrainedModel, FrozenTextEncoderMixin, ConditionalTrainingMixin):
    """LDLM trained jointly: encoder, latent decoder, token decoder and denoiser, over a frozen LM's hidden states.

    Submodules: `encoder` (`LDLMEncoder`), `decoder` (`LDLMDecoder`), `model` (`LDLMModel`, the denoiser) and
    `timestep_sampler` (`AdaptiveTimestepSampler`, whose moving averages are buffers). Buffers `hidden_mean` /
    `hidden_std` `(encoder_dim,)` standardise the LM states (fitted by `prepare_for_training`; zeros until then) and
    `encoder_warmup_step` counts training forward passes for the warm-up. All are saved with the weights, so a
    checkpoint resumes exactly. The frozen LM is attached for training only (`FrozenTextEncoderMixin`); a conditional
    model shares it, and the state statistics, with its denoiser, which encodes the conditions.
    """

    _encoder_width_field = "encoder_dim"
    _encoder_layer_field = "encoder_layer"
    _no_split_modules = ["DenoiserBlock", "PerceiverBlock"]

    def __init__(self, config: LDLMConfig):
        super().__init__(config)
        self.encoder = LDLMEncoder(config)
        self.decoder = LDLMDecoder(config.decoder_config())
        self.model = LDLMModel(config)
        self.timestep_sampler = AdaptiveTimestepSampler(
            config.num_timestep_bins, config.timestep_loss_ema_decay, t_min=config.training_t_min
        )
        self.register_buffer("hidden_mean", torch.zeros(config.encoder_dim))
        self.register_buffer("hidden_std", torch.zeros(config.encoder_dim))
        self.register_buffer("encoder_warmup_step", torch.zeros((), dtype=torch.long))
        self.post_init()

    @torch.no_grad()
    def _init_weights(self, module):
        super()._init_weights(module)
        if isinstance(module, PerceiverAttention):
            module.reset_locality()
        elif isinstance(module, LDLMEncoder):
            _init_perceiver_params(module, self.config.initializer_range, ("token_positions", "latent_queries"))

    # ----------------------------------------------------------------------------------------------------------
    # Frozen LM statistics
    # ----------------------------------------------------------------------------------------------------------

    @property
    def has_hidden_statistics(self) -> bool:
        return bool(self.hidden_std.abs().sum() > 0)

    def normalize_hidden_states(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """Raw LM states `(batch, seq_len, encoder_dim)` -> standardised per dimension (float32)."""
        if not self.has_hidden_statistics:
            raise ValueError(
                "The LM hidden-state statistics are not fitted: call `model.prepare_for_training(dataloader)` or "
                "`model.fit_hidden_statistics(batches)` first."
            )
        return (hidden_states.float() - self.hidden_mean) / self.hidden_std

    @torch.no_grad()
    def fit_hidden_statistics(self, batches) -> None:
        """Per-dimension mean and std of the frozen LM's states over the real tokens of `batches`."""
        stats = _RunningMoments()
        for batch in batches:
            states = batch.get("encoder_activations")
            if states is None:
                states = self.encoder_activations(batch["input_ids"], batch.get("attention_mask"))
            mask = batch.get("attention_mask")
            states = states.float()
            stats.add(states[mask.bool()] if mask is not None else states.flatten(0, -2))
        mean, std = stats.mean_std(what="`batches`")
        self.hidden_mean.copy_(mean)
        self.hidden_std.copy_(std)
        if self.config.conditional:  # the denoiser standardises its conditions' states the same way
            self.model.hidden_mean.copy_(mean)
            self.model.hidden_std.copy_(std)

    def set_text_encoder(self, encoder: torch.nn.Module) -> None:
        """Attaches the frozen LM (to the denoiser too, which reads conditions with it)."""
        super().set_text_encoder(encoder)
        if self.config.conditional:
            self.model.set_text_encoder(encoder)

    def prepare_for_training(self, dataloader, num_batches: int = 16) -> None:
        """Training-loop hook: loads the frozen LM and, for a model never trained, fits the state statistics."""
        self.load_text_encoder()
        if not self.has_hidden_statistics:
            self.fit_hidden_statistics(
                {key: value.to(self.device) for key, value in batch.items()}
                for _, batch in zip(range(num_batches), dataloader)
            )

    # ----------------------------------------------------------------------------------------------------------
    # The codec, as `CosmosLMAutoencoder` exposes it (what `latentlm reconstruct` measures)
    # ----------------------------------------------------------------------------------------------------------

    def encode(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.Tensor | None = None,
        encoder_activations: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Tokens `(batch, seq_len <= L)` -> latents `(batch, num_latents, latent_dim)`: the RMS-normalised vectors
        the denoiser diffuses. `encoder_activations` `(batch, seq_len, encoder_dim)`, the frozen LM's raw states when
        precomputed, skips the LM."""
        if encoder_activations is None:
            encoder_activations = self.encoder_activations(input_ids, attention_mask)
        real = None if attention_mask is None else attention_mask.bool()
        return self.encoder(self.normalize_hidden_states(encoder_activations).to(self.dtype), real)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents `(batch, num_latents, latent_dim)` -> token logits `(batch, L, vocab_size)` (the exported decoder)."""
        return self.decoder.decode(latents)

    @property
    def has_latent_statistics(self) -> bool:
        """LDLM diffuses its latents as encoded (no latent statistics); encoding needs the LM's state statistics."""
        return self.has_hidden_statistics

    def fit_latent_statistics(self, batches) -> None:
        """Fits what encoding needs: the frozen LM's state statistics (`fit_hidden_statistics`)."""
        self.fit_hidden_statistics(batches)

    def normalize_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """The identity: the encoder's RMS-normalised latents are already the diffusion space."""
        return latents

    def denormalize_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """The identity (see `normalize_latents`)."""
        return latents

    # ----------------------------------------------------------------------------------------------------------
    # The recipe
    # ----------------------------------------------------------------------------------------------------------

    def encoder_gamma(self) -> float:
        """The factor on the gradient `L_diff` sends into the encoder at the current step (1 without warm-up)."""
        cfg = self.config
        if not cfg.encoder_warmup:
            return 1.0
        return warmup_gamma(
            int(self.encoder_warmup_step), cfg.encoder_warmup_steps, cfg.encoder_warmup_gamma_min,
            cfg.encoder_warmup_k, cfg.encoder_warmup_c,
        )  # fmt: skip

    def sample_training_timesteps(self, batch_size: int, device) -> torch.Tensor:
        """Adaptive times in training with `adaptive_timesteps`; otherwise (and always in eval) `U(training_t_min, 1)`,
        so evaluation losses stay comparable across steps and recipes."""
        if self.training and self.config.adaptive_timesteps:
            return self.timestep_sampler.sample(batch_size, device=device)
        return self.model.noise_scheduler.sample_training_timesteps(batch_size, device=device)

    # ----------------------------------------------------------------------------------------------------------
    # Training objective
    # ----------------------------------------------------------------------------------------------------------

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        encoder_activations: torch.Tensor | None = None,
        condition_input_ids: torch.LongTensor | None = None,
        condition_attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
    ) -> LDLMOutput:
        """`L_diff + L_h + L_w` for one batch, with the recipe of `config` (its training-only parts act in `train()`
        mode only).

        * `L_h`: MSE of `decoder(z + sigma_dec eps)` to the standardised LM states `h` (noise in training only);
        * `L_w`: token cross-entropy of the token decoder on `stop_grad(h_hat)` (on `h_hat` itself when
          `mse_decoder_loss` is off, and then there is no `L_h`);
        * `L_diff`: x0-MSE of the denoiser on `z`, self-conditioned for half of the examples; the warm-up scales the
          gradient it sends into the encoder by `gamma(s)` and leaves the denoiser's untouched.

        Args:
            input_ids, attention_mask: `(batch, seq_len)` text (`seq_len <= max_position_embeddings`), 0 on padding.
            labels: `(batch, seq_len)` token targets; defaults to `input_ids`; -100 is ignored.
            encoder_activations: `(batch, seq_len, encoder_dim)` the frozen LM's raw states (skips running it).
            condition_input_ids, condition_attention_mask: `(batch, cond_len)` right-padded source tokens of paired
                data (conditional models only). Without them a conditional model trains prompt continuation on
                `config.prompt_prob` of the batches (`ConditionalTrainingMixin`); the codec's losses then read the
                continuation, encoded from its first token.
            token_type_ids: accepted so that `model(**tokenizer(texts))` works, and ignored (one text per row).
        """
        cfg = self.config
        self.check_condition_inputs(condition_input_ids)
        condition = None
        if condition_input_ids is not None:
            condition = self.model.encode_condition(condition_input_ids, condition_attention_mask)
        elif split := self.sample_prompt_split(input_ids, attention_mask):
            prompt_ids, prompt_mask, input_ids, attention_mask = self.split_window(input_ids, attention_mask, split)
            condition = self.model.encode_condition(prompt_ids, prompt_mask)
            labels = None if labels is None else F.pad(labels[:, split:], (0, split), value=-100)
            encoder_activations = None  # the target is re-encoded from its first token
        condition_kwargs = {} if condition is None else cross_attention_kwargs(self.drop_conditions(condition))
        if encoder_activations is None:
            encoder_activations = self.encoder_activations(input_ids, attention_mask)
        target = self.normalize_hidden_states(encoder_activations)
        batch, seq_len, _ = target.shape
        real = torch.ones_like(input_ids, dtype=torch.bool) if attention_mask is None else attention_mask.bool()
        latents = self.encoder(target.to(self.dtype), real)  # `encode`, on the states normalised once above

        # Decoder: L_h on noisy latents, L_w on (stop-gradient) decoded states.
        decoder_input = latents
        if self.training and cfg.decoder_input_noise and cfg.decoder_noise_std > 0:
            decoder_input = latents + cfg.decoder_noise_std * torch.randn_like(latents)
        decoded = self.decoder.decode_hidden_states(decoder_input)[:, :seq_len]
        num_real = real.sum().clamp(min=1)
        hidden_mse = ((decoded.float() - target).pow(2).mean(dim=-1) * real).sum() / num_real
        logits = self.decoder.token_logits(decoded.detach() if cfg.mse_decoder_loss else decoded)
        labels = input_ids if labels is None else labels
        token_mask = (labels != -100) & real
        ce = F.cross_entropy(
            logits.float().flatten(0, 1), labels.masked_fill(~token_mask, 0).flatten(), reduction="none"
        ).view_as(labels)
        num_tokens = token_mask.sum().clamp(min=1)
        token_ce = (ce * token_mask).sum() / num_tokens
        accuracy = ((logits.argmax(dim=-1) == labels) & token_mask).sum() / num_tokens

        # Diffusion on the latents; the warm-up scales only the encoder's share of its gradient.
        gamma = self.encoder_gamma()
        x0 = scale_gradient(latents, gamma)
        t = self.sample_training_timesteps(batch, x0.device).to(x0.dtype)
        noisy = self.model.noise_scheduler.add_noise(x0, torch.randn_like(x0), t)
        self_condition = None
        if cfg.self_conditioning:
            with torch.no_grad():
                estimate = self.model(noisy, t, **condition_kwargs).sample
            use = (torch.rand(batch, device=x0.device) < cfg.self_cond_prob).to(x0.dtype)
            self_condition = estimate * use[:, None, None]
        prediction = self.model(noisy, t, self_condition=self_condition, **condition_kwargs).sample
        per_example = (prediction.float() - x0.float()).pow(2).mean(dim=(1, 2))
        diffusion_loss = per_example.mean()
        if self.training:
            if cfg.adaptive_timesteps:
                self.timestep_sampler.update(t, per_example)
            self.encoder_warmup_step.add_(1)

        loss = diffusion_loss + token_ce + (hidden_mse if cfg.mse_decoder_loss else 0.0)
        metrics = {"accuracy": accuracy.detach().float(), "encoder_gamma": torch.tensor(gamma)}
        return LDLMOutput(
            loss=loss, diffusion_loss=diffusion_loss, hidden_mse_loss=hidden_mse, token_ce_loss=token_ce,
            logits=logits, latents=latents, metrics=metrics,
        )  # fmt: skip


__all__ = [
    "LDLMForDiffusion",
    "LDLMModel",
    "LDLMOutput",
    "LDLMPreTrainedModel",
    "scale_gradient",
    "warmup_gamma",
]
