"""ELF: Embedded Language Flows (Hu, Qiu et al. 2026, arXiv 2605.10938).

Flow matching in the contextual embedding space of a frozen pretrained encoder:

* data: `x = (encoder(tokens) - latent_mean) / latent_std`, one vector per token (the encoder is needed for
  training only);
* path (rectified flow, latentlm's sigma = 1 - ELF's t): `z = (1 - sigma) * x + sigma * noise_scale * eps`;
* objective: the network predicts x, the loss is the MSE between the implied velocity and the true one,
  `E || v(x_hat) - v(x) ||^2 = E || x_hat - x ||^2 / max(sigma, sigma_clamp)^2`, with logit-normal times;
* decode: the same network in "decode" mode (mode tokens on, t at the data end) reads per-token corrupted clean
  embeddings and a factored unembedding head gives token logits, trained with cross-entropy on `decoder_prob` of
  the examples;
* self-conditioning and guidance learned at training time (paper App. B.1, Eq. 3): for the self-conditioned
  examples the velocity target is shifted by `(1 - 1 / omega) * (v(z | x_sc) - v(z | 0))` and omega is a model
  input, so one forward pass at inference gives the guided prediction;
* conditions (`config.conditional`, paper §3.5 and the official conditional configs): the condition's tokens are
  encoded by the frozen encoder on their own, normalised like the data and placed clean before the noisy target in
  the same sequence (through the same input projection, `[x_c, x_c]` with self-conditioning); condition dropout
  teaches the unconditional branch and the pipeline applies input classifier-free guidance. The target's latents are
  the encoder's embeddings of the target tokens (for a continuation, of the whole window). Deviation: the official
  code encodes the target with attention to the source in one T5 pass (and blocks it on dropped rows); here the
  condition is encoded alone, which is exactly what sampling sees.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from diffusers.utils.accelerate_utils import apply_forward_hook
from torch import nn
from transformers import PreTrainedModel  # noqa: F401  (diffusers' pipeline loader looks the base class up by name)
from transformers.utils import ModelOutput, can_return_tuple

from ...schedulers import FlowMatchEulerSDEScheduler, sample_training_sigmas
from ..backbone import DenoiserOutput, DenoiserPreTrainedModel, DenoiserTransformer
from ..encoders import FrozenTextEncoderMixin
from ..heads import FactoredLMHead, greedy_token_ids
from ..modeling_utils import ConditionalTrainingMixin, LatentDiffusionMixin, TextCondition, left_align
from .configuration_elf import ELFConfig


@dataclass
class ELFFlowMatchingOutput(ModelOutput):
    """
    Args:
        loss (`torch.FloatTensor` of shape `()`): the combined loss (velocity MSE on denoise rows, cross-entropy on
            decode rows, averaged over all real tokens with one denominator, as in ELF's code).
        logits (`torch.FloatTensor` of shape `(num_decode_rows, seq_len, vocab_size)`): decode-head logits of the
            examples trained in decode mode (the head is not run on the others).
        metrics (`dict[str, torch.FloatTensor]`): `denoise_loss` (per-token velocity MSE on denoise rows) and
            `decode_loss` (per-token cross-entropy on decode rows), detached, for logging; NaN when the batch has
            no rows of that kind.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    metrics: dict | None = None


class ELFPreTrainedModel(DenoiserPreTrainedModel):
    config_class = ELFConfig
    config: ELFConfig


class ELFModel(ELFPreTrainedModel):
    """The bare ELF denoiser: `DenoiserTransformer` configured by `ELFConfig` (diffusers argument names)."""

    main_input_name = "hidden_states"

    def __init__(self, config: ELFConfig):
        super().__init__(config)
        self.transformer = DenoiserTransformer(config)
        self.post_init()

    def forward(self, hidden_states, timestep, attention_mask=None, **kwargs) -> DenoiserOutput:
        """See `DenoiserTransformer.forward`."""
        return self.transformer(hidden_states, timestep, attention_mask=attention_mask, **kwargs)


class ELFForFlowMatching(ELFPreTrainedModel, FrozenTextEncoderMixin, LatentDiffusionMixin, ConditionalTrainingMixin):
    """ELF with its training objective and the sampling interface of `LatentDiffusionMixin`.

    The frozen encoder is attached for training only (`prepare_for_training`, `load_text_encoder` or
    `set_text_encoder`, see `FrozenTextEncoderMixin`) and is kept out of the state dict: a saved ELF model is the denoiser and its decode head, nothing else.
    """

    def __init__(self, config: ELFConfig):
        super().__init__(config)
        self.model = ELFModel(config)
        self.lm_head = FactoredLMHead(config.hidden_size, config.decoder_head_dim, config.vocab_size)
        self.noise_scheduler = self.get_default_scheduler()
        self.post_init()

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head.unembed

    # ----------------------------------------------------------------------------------------------------------
    # The frozen encoder and the data statistics
    # ----------------------------------------------------------------------------------------------------------

    def encode_text(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        encoder_activations: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Normalised contextual embeddings `(batch, seq_len, latent_dim)`: ELF's data points.

        `encoder_activations` are the encoder's raw hidden states when precomputed (the training loop's cache).
        """
        if self.config.latent_std is None:
            raise ValueError("`latent_mean` / `latent_std` are not fitted: call `model.fit_latent_statistics` first.")
        if encoder_activations is None:
            encoder_activations = self.encoder_activations(input_ids, attention_mask)
        return (encoder_activations.float() - self.config.latent_mean) / self.config.latent_std

    @torch.no_grad()
    def fit_latent_statistics(self, batches) -> tuple[float, float]:
        """Sets `config.latent_mean` / `latent_std` to the mean and std of the embeddings of real tokens in `batches`."""
        total, total_sq, count = 0.0, 0.0, 0
        for batch in batches:
            mask = batch.get("attention_mask")
            hidden = batch.get("encoder_activations")
            if hidden is None:
                hidden = self.encoder_activations(batch["input_ids"], mask)
            hidden = hidden.double()
            valid = hidden if mask is None else hidden[mask.bool()]
            total += valid.sum().item()
            total_sq += valid.pow(2).sum().item()
            count += valid.numel()
        if count == 0:
            raise ValueError("`batches` held no real tokens to fit the latent statistics on.")
        mean = total / count
        self.config.latent_mean = mean
        self.config.latent_std = max(total_sq / count - mean**2, 1e-12) ** 0.5
        return self.config.latent_mean, self.config.latent_std

    def prepare_for_training(self, dataloader, num_batches: int = 16) -> None:
        """Training-loop hook: loads the frozen encoder and fits the latent statistics if they are not set."""
        self.load_text_encoder()
        fit_projections = self.config.init_denoiser_fit_projections and getattr(
            self.model.transformer, "_warm_started_from", None
        )
        if self.config.latent_std is None or fit_projections:
            # One pass over the loader for both fits: the training data order is the same with and without them.
            batches = [batch for _, batch in zip(range(num_batches), dataloader)]
        if self.config.latent_std is None:
            self.fit_latent_statistics(batches)
        if fit_projections:
            self.fit_warm_start_projections(batches)

    @torch.no_grad()
    def fit_warm_start_projections(self, batches) -> None:
        """Fits the warm-started denoiser's input projection on ``batches`` so that clean latents enter as the
        pretrained encoder's word embeddings of their tokens (`latentlm.models.warm_start.fit_input_projection`).
        The output head stays zero-initialised: an untrained denoiser still predicts zeros."""
        from ..warm_start import fit_input_projection, pretrained_word_embeddings

        table = pretrained_word_embeddings(self.config.init_denoiser_from, self.config.vocab_size).to(self.device)
        latents, embeddings = [], []
        for batch in batches:
            input_ids = batch["input_ids"].to(self.device)
            mask = batch.get("attention_mask")
            mask = torch.ones_like(input_ids) if mask is None else mask.to(self.device)
            x0 = self.encode_text(input_ids, mask, batch.get("encoder_activations"))
            latents.append(x0.to(self.device)[mask.bool()])
            embeddings.append(table[input_ids[mask.bool()]])
        fit_input_projection(self.model.transformer, torch.cat(latents), torch.cat(embeddings))

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
    ) -> ELFFlowMatchingOutput:
        """ELF's training loss for one batch.

        Args:
            input_ids: `(batch, seq_len)` tokens of the encoder's tokenizer (the target, for paired data).
            attention_mask: `(batch, seq_len)`, 0 on padding (excluded from attention and from the loss).
            labels: `(batch, seq_len)` decode-mode targets; defaults to `input_ids`; -100 is ignored.
            latents: `(batch, seq_len, latent_dim)` precomputed normalised embeddings (skips the encoder).
            encoder_activations: `(batch, seq_len, latent_dim)` precomputed raw encoder hidden states (skips the
                encoder; the training loop passes them with `cache_encoder_activations`).
            condition_input_ids, condition_attention_mask: `(batch, cond_len)` right-padded source tokens of paired
                data (conditional models only). Without them a conditional model trains prompt continuation on
                `config.prompt_prob` of the batches (`ConditionalTrainingMixin`).
            token_type_ids: accepted so that `model(**tokenizer(texts))` works, and ignored (one text per row).
        """
        cfg = self.config
        self.check_condition_inputs(condition_input_ids)
        x0 = self.encode_text(input_ids, attention_mask, encoder_activations) if latents is None else latents
        x0 = x0.to(self.dtype)
        labels = input_ids if labels is None else labels
        condition = None
        if condition_input_ids is not None:
            condition = self.encode_condition(condition_input_ids, condition_attention_mask)
        elif split := self.sample_prompt_split(input_ids, attention_mask):
            prefix_mask = None if attention_mask is None else attention_mask[:, :split]
            condition = self.encode_condition(input_ids[:, :split], prefix_mask)
            x0, labels = x0[:, split:], labels[:, split:]
            attention_mask = None if attention_mask is None else attention_mask[:, split:]
        if condition is not None:
            condition = self.drop_conditions(condition)
        batch, seq_len, _ = x0.shape
        device = x0.device
        token_mask = labels != -100
        if attention_mask is not None:
            token_mask = token_mask & attention_mask.bool()
        token_mask = token_mask.to(x0.dtype)

        # 1. The denoise path at logit-normal times.
        sigma = sample_training_sigmas(batch, mean=cfg.time_mean, std=cfg.time_std, device=device)
        sigma = sigma.to(x0.dtype)
        z = self.noise_scheduler.scale_noise(x0, sigma, torch.randn_like(x0))

        # 2. The decode rows: per-token corruption of the clean embeddings, read at the data end (sigma = 0).
        decode_rows = (torch.rand(batch, device=device) < cfg.decoder_prob).to(x0.dtype)
        keep = torch.sigmoid(
            cfg.decoder_time_mean + cfg.decoder_time_std * torch.randn(batch, seq_len, 1, device=device)
        )
        z_decode = keep * x0 + (1 - keep) * cfg.decoder_noise_scale * torch.randn_like(x0)
        rows = decode_rows[:, None, None]
        model_input = rows * z_decode + (1 - rows) * z
        model_sigma = (1 - decode_rows) * sigma

        # 3. Self-conditioning and guidance targets, computed without gradients.
        omega = self._sample_guidance_scales(batch, device).to(x0.dtype) if cfg.num_guidance_tokens else None
        condition_kwargs = _condition_kwargs(condition)
        velocity_target, self_condition = self._velocity_target_and_self_condition(
            x0, z, sigma, omega, attention_mask, condition_kwargs
        )
        if self_condition is not None:
            self_condition = self_condition * (1 - rows)

        # 4. One forward for both branches.
        out = self.model(
            model_input,
            model_sigma,
            attention_mask=attention_mask,
            self_condition=self_condition,
            guidance_scale=omega,
            mode=decode_rows if cfg.num_mode_tokens else None,
            **condition_kwargs,
        )
        velocity = self.noise_scheduler.get_velocity(out.sample, z, sigma)
        denoise_per_token = (velocity.float() - velocity_target.float()).pow(2).mean(dim=-1)
        denoise_mask = token_mask * (1 - decode_rows[:, None])

        # The vocabulary projection is the costliest matmul of a small model: run it on the decode rows only.
        is_decode = decode_rows.bool()
        logits = self.lm_head(out.last_hidden_state[is_decode])
        decode_labels = labels[is_decode]
        decode_per_token = F.cross_entropy(
            logits.float().flatten(0, 1),
            decode_labels.masked_fill(decode_labels == -100, 0).flatten(),
            reduction="none",
        ).view_as(decode_labels)
        decode_mask = token_mask[is_decode]

        decode_sum, denoise_sum = (decode_per_token * decode_mask).sum(), (denoise_per_token * denoise_mask).sum()
        loss = (decode_sum + denoise_sum) / token_mask.sum().clamp(min=1)
        metrics = {
            # NaN (0 / 0) when the batch has no rows of that kind: the trainer's running mean then skips it.
            "denoise_loss": (denoise_sum / denoise_mask.sum()).detach(),
            "decode_loss": (decode_sum / decode_mask.sum()).detach(),
        }
        return ELFFlowMatchingOutput(loss=loss, logits=logits, metrics=metrics)

    def _sample_guidance_scales(self, batch: int, device: torch.device) -> torch.Tensor:
        """omega with `1 + omega` log-uniform on `[1 + guidance_min, 1 + guidance_max]` (biased to small scales)."""
        low, high = 1.0 + self.config.guidance_min, 1.0 + self.config.guidance_max
        return low * (high / low) ** torch.rand(batch, device=device) - 1.0

    @torch.no_grad()
    def _velocity_target_and_self_condition(self, x0, z, sigma, omega, attention_mask, condition_kwargs):
        """The (guided) velocity target and the self-conditioning input of each example (zeros where unused)."""
        target = self.noise_scheduler.get_velocity(x0, z, sigma)
        if not self.config.self_conditioning:
            return target, None
        common = dict(attention_mask=attention_mask, guidance_scale=omega, **condition_kwargs)
        unconditional = self.model(z, sigma, **common).sample
        use_sc = (torch.rand(x0.shape[0], device=x0.device) < self.config.self_cond_prob).to(x0.dtype)[:, None, None]
        if omega is not None and use_sc.any():
            conditional = self.model(z, sigma, self_condition=unconditional, **common).sample
            guidance = self.noise_scheduler.get_velocity(conditional, z, sigma) - self.noise_scheduler.get_velocity(
                unconditional, z, sigma
            )
            target = target + use_sc * (1 - 1 / omega[:, None, None]) * guidance
        return target, unconditional * use_sc

    # ----------------------------------------------------------------------------------------------------------
    # Sampling interface (LatentDiffusionMixin)
    # ----------------------------------------------------------------------------------------------------------

    def get_default_scheduler(self) -> FlowMatchEulerSDEScheduler:
        """The sampler matching this model's path: Euler ODE on ELF's logit-normal grid (a distilled student's
        `distill_steps` steps by default, as the official few-step sampler).

        The paper samples its 105M+ models with the SDE (`gamma=1.5`); the small models we train collapse to
        repetitive, low-entropy text under it (benchmarks/RESULTS.md), so the ODE is the default and the SDE one
        config change away: `FlowMatchEulerSDEScheduler.from_config(pipe.scheduler.config, gamma=1.5)`.
        """
        return FlowMatchEulerSDEScheduler(
            noise_scale=self.config.noise_scale,
            sigma_clamp=self.config.sigma_clamp,
            prediction_type="sample",
            gamma=0.0,
            time_grid_mean=self.config.time_mean,
            time_grid_std=self.config.time_std,
            default_num_inference_steps=getattr(self.config, "distill_steps", None),
        )

    def latent_shape(self, gen_length: int) -> tuple[int, int]:
        return (gen_length, self.config.latent_dim)

    def _sc_guidance(self, sc_guidance_scale: float | None) -> float | None:
        if not self.config.num_guidance_tokens:
            return None
        return 1.0 if sc_guidance_scale is None else sc_guidance_scale

    def max_condition_length(self, gen_length: int) -> int:
        """Condition and target share the denoiser's sequence of `max_position_embeddings` positions."""
        return self.config.max_position_embeddings - gen_length

    def default_gen_length(self, condition_length: int = 0) -> int:
        """The rest of the sequence after the condition."""
        return max(self.config.max_position_embeddings - condition_length, 1)

    @apply_forward_hook
    def encode_condition(self, input_ids, attention_mask=None) -> TextCondition:
        """The condition's clean latents: the frozen encoder's embeddings of the condition alone, normalised like
        the data, left-aligned. Loads the frozen encoder on first use (sampling with a condition needs it)."""
        self.load_text_encoder()
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        latents = self.encode_text(input_ids, attention_mask).to(self.dtype)
        return TextCondition(*left_align(latents, attention_mask))

    @apply_forward_hook
    def denoise(self, latents, timestep, *, self_condition=None, sc_guidance_scale=None, condition=None):
        if not self.config.self_conditioning:
            self_condition = None
        out = self.model(
            latents,
            timestep,
            self_condition=self_condition,
            guidance_scale=self._sc_guidance(sc_guidance_scale),
            **_condition_kwargs(condition),
        )
        return out.sample

    @apply_forward_hook
    def decode_latents(self, latents, *, sc_guidance_scale=None, condition=None):
        return self.lm_head(self._decoder_hidden_states(latents, sc_guidance_scale, condition))

    @apply_forward_hook
    def decode_latents_to_ids(self, latents, *, sc_guidance_scale=None, condition=None):
        return greedy_token_ids(self._decoder_hidden_states(latents, sc_guidance_scale, condition), self.lm_head)

    def _decoder_hidden_states(self, latents, sc_guidance_scale, condition) -> torch.Tensor:
        """The network's last hidden states in decode mode (sigma 0), the input of the token head."""
        out = self.model(
            latents,
            0.0,
            guidance_scale=self._sc_guidance(sc_guidance_scale),
            mode=1.0 if self.config.num_mode_tokens else None,
            **_condition_kwargs(condition),
        )
        return out.last_hidden_state


def _condition_kwargs(condition: TextCondition | None) -> dict:
    """The backbone's in-sequence condition arguments."""
    if condition is None:
        return {}
    return {"condition_hidden_states": condition.hidden_states, "condition_attention_mask": condition.attention_mask}


__all__ = ["ELFPreTrainedModel", "ELFModel", "ELFForFlowMatching", "ELFFlowMatchingOutput"]
