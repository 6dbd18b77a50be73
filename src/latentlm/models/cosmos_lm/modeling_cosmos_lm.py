"""Cosmos: diffusion in a compressed, smooth text latent space (Meshchaninov et al., arXiv 2506.21170).

Two models, trained one after the other (read against `dbal0503/cosmos`, `encoder_trainer.py` and
`diffusion_trainer.py`):

* `CosmosLMAutoencoder` (the codec): `h = (encoder(tokens) - mean) / std` per dimension, from a frozen pretrained
  encoder; a Perceiver compressor turns the L activations into N latents; a Perceiver decompressor turns the N
  latents back into L token slots, read by a token head (cross-entropy) and an activation head (MSE to `h`, the
  alignment with the frozen encoder). Training perturbs the compressor's input (half of the batch: 30% of the
  activations masked; the other half: `0.7 h + sqrt(1 - 0.7^2) eps`) and drops 40% of the latent elements, so that
  nearby latents decode to the same text: the latent space is smooth.
* `CosmosLMForDiffusion` (the denoiser): the shared `DenoiserTransformer` with long skips over the autoencoder's
  latents, standardised per latent position and dimension; variance-preserving tan schedule, x0-prediction MSE
  with times U(1e-5, 1), self-conditioning. By default the denoiser is `architecture/score_estimator.py`'s: time
  and self-conditioning added before every block, additive skips, an RMSNorm output, one self-conditioning coin per
  batch (`CosmosLMConfig`; `models/denoiser_conditioning.py`). Sampling integrates the reverse SDE to `t_min`
  (200 steps by default) and decodes once.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from diffusers.utils.accelerate_utils import apply_forward_hook
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput, can_return_tuple

from ...schedulers import EulerMaruyamaVPScheduler
from ..backbone import DenoiserOutput, DenoiserPreTrainedModel, DenoiserTransformer
from ..encoders import FrozenTextEncoderMixin
from ..heads import FactoredLMHead
from ..modeling_utils import ConditionalTrainingMixin, LatentDiffusionMixin, TextCondition
from ..perceiver import PerceiverAttention, PerceiverStack, latent_positions, token_positions
from ..pretrained_mixin import LatentLMModelMixin
from .configuration_cosmos_lm import CosmosLMAutoencoderConfig, CosmosLMConfig


@dataclass
class CosmosLMAutoencoderOutput(ModelOutput):
    """
    Args:
        loss (`torch.FloatTensor` of shape `()`): token cross-entropy + activation MSE, each averaged over real tokens.
        logits (`torch.FloatTensor` of shape `(batch, seq_len, vocab_size)`): reconstruction logits.
        latents (`torch.FloatTensor` of shape `(batch, num_latents, latent_dim)`): the latents that were decoded
            (perturbed in training).
        metrics (`dict[str, torch.FloatTensor]`): `ce_loss`, `mse_loss` and token `accuracy`, detached.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    latents: torch.FloatTensor | None = None
    metrics: dict | None = None


@dataclass
class CosmosLMDiffusionOutput(ModelOutput):
    """
    Args:
        loss (`torch.FloatTensor` of shape `()`): x0-prediction MSE on the normalised latents.
        pred_original_sample (`torch.FloatTensor` of shape `(batch, num_latents, latent_dim)`): the prediction.
    """

    loss: torch.FloatTensor | None = None
    pred_original_sample: torch.FloatTensor | None = None


class CosmosLMAutoencoder(LatentLMModelMixin, PreTrainedModel, FrozenTextEncoderMixin):
    """Cosmos' text autoencoder: `encode` L tokens into N latents, `decode` N latents into L token logits.

    Like diffusers' `AutoencoderKL`, it is trained on its own and frozen afterwards; the diffusion pipeline holds it
    as a component. The frozen pretrained encoder is attached for encoding only (see `FrozenTextEncoderMixin`) and is
    never saved. Data statistics are buffers saved with the weights: `activation_mean` / `activation_std`
    `(encoder_dim,)` normalise the encoder's activations (fitted before training by `prepare_for_training`), and
    `latent_mean` / `latent_std` `(num_latents, latent_dim)` normalise the latents for diffusion (fitted by the
    diffusion stage, or `fit_latent_statistics`). Unfitted statistics are zeros.
    """

    config_class = CosmosLMAutoencoderConfig
    config: CosmosLMAutoencoderConfig
    base_model_prefix = "autoencoder"
    main_input_name = "input_ids"
    _no_split_modules = ["PerceiverBlock"]
    _supports_sdpa = True
    supports_gradient_checkpointing = True
    _encoder_width_field = "encoder_dim"

    def __init__(self, config: CosmosLMAutoencoderConfig):
        super().__init__(config)
        hidden = config.hidden_size
        stack = dict(
            hidden_size=hidden,
            num_heads=config.num_attention_heads,
            intermediate_size=config.intermediate_size,
            eps=config.rms_norm_eps,
            dropout=config.hidden_dropout,
        )
        # Compressor: N latent queries over the L (position-tagged) encoder activations.
        self.activation_proj = nn.Linear(config.encoder_dim, hidden)
        self.token_positions = nn.Parameter(torch.zeros(1, config.max_position_embeddings, hidden))
        self.latent_queries = nn.Parameter(torch.zeros(1, config.num_latents, hidden))
        chunk = config.max_position_embeddings // config.num_latents
        self.chunk_proj = nn.Linear(chunk * config.encoder_dim, hidden) if config.chunk_shortcut else None
        self.compressor = PerceiverStack(config.num_compressor_layers, **stack)
        self.to_latents = nn.Linear(hidden, config.latent_dim)
        # Decompressor: L token slots over the N (position-tagged) latents.
        self.from_latents = nn.Linear(config.latent_dim, hidden)
        self.latent_positions = nn.Parameter(torch.zeros(1, config.num_latents, hidden))
        self.token_slots = nn.Parameter(torch.zeros(1, config.max_position_embeddings, hidden))
        self.unchunk_proj = nn.Linear(config.latent_dim, chunk * hidden) if config.chunk_shortcut else None
        self.decompressor = PerceiverStack(config.num_decompressor_layers, **stack)
        self.lm_head = FactoredLMHead(hidden, config.lm_head_dim, config.vocab_size)
        self.activation_head = nn.Linear(hidden, config.encoder_dim)

        self.register_buffer("activation_mean", torch.zeros(config.encoder_dim))
        self.register_buffer("activation_std", torch.zeros(config.encoder_dim))
        self.register_buffer("latent_mean", torch.zeros(config.num_latents, config.latent_dim))
        self.register_buffer("latent_std", torch.zeros(config.num_latents, config.latent_dim))
        self.post_init()

    @torch.no_grad()
    def _init_weights(self, module):
        super()._init_weights(module)
        if isinstance(module, PerceiverAttention):
            module.reset_locality()
        if module is self:
            std = self.config.initializer_range
            for param in (self.token_positions, self.latent_queries, self.latent_positions, self.token_slots):
                nn.init.normal_(param, std=std)
            # Unfitted statistics are zeros (`has_*_statistics` is False), also after a partial or mismatched load.
            for buffer in (self.activation_mean, self.activation_std, self.latent_mean, self.latent_std):
                init.zeros_(buffer)

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head.unembed

    # ----------------------------------------------------------------------------------------------------------
    # Data statistics
    # ----------------------------------------------------------------------------------------------------------

    @property
    def has_activation_statistics(self) -> bool:
        return bool(self.activation_std.abs().sum() > 0)

    @property
    def has_latent_statistics(self) -> bool:
        return bool(self.latent_std.abs().sum() > 0)

    def normalize_activations(self, activations: torch.Tensor) -> torch.Tensor:
        """Raw encoder activations `(batch, seq_len, encoder_dim)` -> standardised per dimension."""
        if not self.has_activation_statistics:
            raise ValueError("The activation statistics are not fitted: call `fit_activation_statistics` first.")
        return (activations.float() - self.activation_mean) / self.activation_std

    def normalize_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents `(batch, num_latents, latent_dim)` -> standardised per position and dimension (diffusion space)."""
        if not self.has_latent_statistics:
            raise ValueError("The latent statistics are not fitted: call `fit_latent_statistics` first.")
        return (latents - self.latent_mean) / self.latent_std

    def denormalize_latents(self, latents: torch.Tensor) -> torch.Tensor:
        """Inverse of `normalize_latents`."""
        if not self.has_latent_statistics:
            raise ValueError("The latent statistics are not fitted: call `fit_latent_statistics` first.")
        return latents * self.latent_std + self.latent_mean

    def _batch_activations(self, batch: dict) -> torch.Tensor:
        activations = batch.get("encoder_activations")
        if activations is None:
            activations = self.encoder_activations(batch["input_ids"], batch.get("attention_mask"))
        return activations.float()

    @torch.no_grad()
    def fit_activation_statistics(self, batches) -> None:
        """Per-dimension mean and std of the encoder activations of the real tokens in `batches`."""
        stats = _RunningMoments()
        for batch in batches:
            activations = self._batch_activations(batch)
            mask = batch.get("attention_mask")
            stats.add(activations[mask.bool()] if mask is not None else activations.flatten(0, -2))
        mean, std = stats.mean_std(what="`batches`")
        self.activation_mean.copy_(mean)
        self.activation_std.copy_(std)

    @torch.no_grad()
    def fit_latent_statistics(self, batches) -> None:
        """Mean and std of the clean latents of `batches`, per latent position and dimension (Cosmos)."""
        stats = _RunningMoments()
        for batch in batches:
            latents = self.encode(
                batch["input_ids"], batch.get("attention_mask"), encoder_activations=batch.get("encoder_activations")
            )
            stats.add(latents)
        mean, std = stats.mean_std(what="`batches`", min_variance=1e-4)
        self.latent_mean.copy_(mean)
        self.latent_std.copy_(std)

    def prepare_for_training(self, dataloader, num_batches: int = 16) -> None:
        """Training-loop hook: loads the frozen encoder; for a model that has never been trained (no activation
        statistics yet), fits the statistics and initialises the token head from the encoder's word embeddings."""
        encoder = self.load_text_encoder()
        if not self.has_activation_statistics:
            self.fit_activation_statistics(batch for _, batch in zip(range(num_batches), dataloader))
            if self.config.init_lm_head_from_encoder:
                self.init_lm_head_from_embeddings(encoder.get_input_embeddings().weight)

    @torch.no_grad()
    def init_lm_head_from_embeddings(self, embeddings: torch.Tensor) -> None:
        """Sets the token head's output matrix `(vocab_size, lm_head_dim)` to the top `lm_head_dim` principal
        components of `embeddings` `(vocab_size, width)` (deterministic SVD), scaled to std 0.1, and its bias to 0:
        tokens start out distinguishable by what the encoder knows of them."""
        vocab, head_dim = self.config.vocab_size, self.config.lm_head_dim
        if embeddings.shape[0] != vocab or embeddings.shape[1] < head_dim:
            raise ValueError(
                f"`embeddings` must have shape ({vocab}, >= {head_dim}) (`vocab_size`, `lm_head_dim`), got "
                f"{tuple(embeddings.shape)}."
            )
        centered = embeddings.detach().float().cpu()
        centered = centered - centered.mean(dim=0)
        _, _, components = torch.linalg.svd(centered, full_matrices=False)
        projected = centered @ components[:head_dim].T
        self.lm_head.unembed.weight.copy_(projected / projected.std() * 0.1)
        self.lm_head.unembed.bias.zero_()

    # ----------------------------------------------------------------------------------------------------------
    # Encode / decode
    # ----------------------------------------------------------------------------------------------------------

    def compress(self, activations: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Normalised activations `(batch, seq_len, encoder_dim)` -> latents `(batch, num_latents, latent_dim)`."""
        batch, seq_len, _ = activations.shape
        if seq_len > self.config.max_position_embeddings:
            raise ValueError(
                f"The input has {seq_len} tokens but the autoencoder takes at most "
                f"{self.config.max_position_embeddings} (`max_position_embeddings`)."
            )
        activations = activations.to(self.dtype)
        tokens = self.activation_proj(activations) + self.token_positions[:, :seq_len]
        queries = self.latent_queries.expand(batch, -1, -1)
        if self.chunk_proj is not None:  # latent j starts from its own tokens (j L/N ... (j+1) L/N - 1)
            if attention_mask is not None:
                activations = activations * attention_mask[..., None].to(activations.dtype)
            padded = F.pad(activations, (0, 0, 0, self.config.max_position_embeddings - seq_len))
            queries = queries + self.chunk_proj(padded.reshape(batch, self.config.num_latents, -1))
        positions = self._positions(seq_len, activations.device)
        return self.to_latents(
            self.compressor(queries, tokens, positions["latents"], positions["tokens"], attention_mask)
        )

    def decompress(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents `(batch, num_latents, latent_dim)` -> token-slot hidden states `(batch, L, hidden_size)`."""
        expected = (self.config.num_latents, self.config.latent_dim)
        if latents.ndim != 3 or tuple(latents.shape[1:]) != expected:
            raise ValueError(
                f"`latents` must have shape (batch, {expected[0]}, {expected[1]}), got {tuple(latents.shape)}."
            )
        context = self.from_latents(latents.to(self.dtype)) + self.latent_positions
        slots = self.token_slots.expand(latents.shape[0], -1, -1)
        if self.unchunk_proj is not None:  # slot i starts from its latent, i N / L
            slots = slots + self.unchunk_proj(latents.to(self.dtype)).reshape(slots.shape)
        positions = self._positions(self.config.max_position_embeddings, latents.device)
        return self.decompressor(slots, context, positions["tokens"], positions["latents"])

    def _positions(self, seq_len: int, device) -> dict[str, torch.Tensor]:
        """Positions of the latents and of the first `seq_len` tokens on the Perceiver's shared axis."""
        cfg = self.config
        return {
            "latents": latent_positions(cfg.num_latents, device),
            "tokens": token_positions(seq_len, cfg.max_position_embeddings, cfg.num_latents, device),
        }

    @apply_forward_hook
    def encode(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.Tensor | None = None,
        encoder_activations: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Tokens `(batch, seq_len <= L)` -> latents `(batch, num_latents, latent_dim)`, without perturbation.

        `encoder_activations` `(batch, seq_len, encoder_dim)`, the frozen encoder's raw output when precomputed,
        skips the encoder.
        """
        if encoder_activations is None:
            encoder_activations = self.encoder_activations(input_ids, attention_mask)
        return self.compress(self.normalize_activations(encoder_activations), attention_mask)

    @apply_forward_hook
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents `(batch, num_latents, latent_dim)` -> token logits `(batch, L, vocab_size)`."""
        return self.lm_head(self.decompress(latents))

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
        token_type_ids: torch.Tensor | None = None,
    ) -> CosmosLMAutoencoderOutput:
        """Reconstruction loss of one batch; the augmentations act in training mode only.

        Args:
            input_ids: `(batch, seq_len)` tokens, `seq_len <= max_position_embeddings`.
            attention_mask: `(batch, seq_len)`, 0 on padding (not read by the compressor, not in the loss).
            labels: `(batch, seq_len)` token targets; defaults to `input_ids`; -100 is ignored.
            encoder_activations: `(batch, seq_len, encoder_dim)` precomputed raw activations (skips the encoder).
            token_type_ids: accepted so that `model(**tokenizer(texts))` works, and ignored (one text per row).
        """
        if encoder_activations is None:
            encoder_activations = self.encoder_activations(input_ids, attention_mask)
        target = self.normalize_activations(encoder_activations)
        batch, seq_len, _ = target.shape
        real = torch.ones_like(input_ids, dtype=torch.bool) if attention_mask is None else attention_mask.bool()

        compressor_input, compressor_mask = target, real
        if self.training:
            compressor_input, compressor_mask = self._perturb_activations(target, real)
        latents = self.compress(compressor_input, compressor_mask)
        if self.training and self.config.latent_dropout > 0:
            latents = latents * (torch.rand_like(latents) >= self.config.latent_dropout)

        hidden = self.decompress(latents)[:, :seq_len]
        logits = self.lm_head(hidden)
        labels = input_ids if labels is None else labels
        token_mask = (labels != -100) & real
        # Flattened rows: cross-entropy over a transposed (batch, vocab, seq) view would copy the logits.
        ce = F.cross_entropy(
            logits.float().flatten(0, 1), labels.masked_fill(~token_mask, 0).flatten(), reduction="none"
        ).view_as(labels)
        mse = (self.activation_head(hidden).float() - target).pow(2).mean(dim=-1)
        count = token_mask.sum().clamp(min=1)
        ce_loss, mse_loss = (ce * token_mask).sum() / count, (mse * real).sum() / real.sum().clamp(min=1)
        accuracy = ((logits.argmax(dim=-1) == labels) & token_mask).sum() / count
        metrics = {"ce_loss": ce_loss.detach(), "mse_loss": mse_loss.detach(), "accuracy": accuracy.detach().float()}
        return CosmosLMAutoencoderOutput(loss=ce_loss + mse_loss, logits=logits, latents=latents, metrics=metrics)

    def _perturb_activations(self, activations: torch.Tensor, mask: torch.Tensor):
        """Cosmos' input augmentations: the first rows of the batch lose a share of their tokens (masked out of the
        compressor's attention), the next rows are mixed with Gaussian noise. Returns `(activations, mask)`."""
        cfg, batch = self.config, activations.shape[0]
        num_masked = int(cfg.activation_mask_fraction * batch)
        num_noised = int(cfg.activation_noise_fraction * batch)
        rows = torch.arange(batch, device=activations.device)[:, None]
        drop = (rows < num_masked) & (torch.rand(mask.shape, device=mask.device) < cfg.activation_mask_prob)
        noised = ((rows >= num_masked) & (rows < num_masked + num_noised))[..., None]
        delta = cfg.activation_noise_delta
        mixed = delta * activations + (1 - delta**2) ** 0.5 * torch.randn_like(activations)
        return torch.where(noised, mixed, activations), mask & ~drop


class _RunningMoments:
    """Streaming mean and std over the leading dimension of the tensors added (in float64)."""

    def __init__(self):
        self.total = self.total_sq = None
        self.count = 0

    def add(self, values: torch.Tensor) -> None:
        values = values.double()
        total, total_sq = values.sum(dim=0), values.pow(2).sum(dim=0)
        self.total = total if self.total is None else self.total + total
        self.total_sq = total_sq if self.total_sq is None else self.total_sq + total_sq
        self.count += values.shape[0]

    def mean_std(self, what: str, min_variance: float = 1e-12) -> tuple[torch.Tensor, torch.Tensor]:
        if self.count == 0:
            raise ValueError(f"{what} held no real tokens to fit the statistics on.")
        mean = self.total / self.count
        variance = (self.total_sq / self.count - mean.pow(2)).clamp(min=min_variance)
        return mean.float(), variance.sqrt().float()


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
            mask = torch.ones_like(input_ids) if attention_mask is None else attention_mask
            condition = self.encode_condition(input_ids[:, :split], mask[:, :split])
            # The target is the rest of the window, re-encoded from its first token (right-padded to L).
            input_ids = F.pad(input_ids[:, split:], (0, split), value=self.config.pad_token_id or 0)
            attention_mask = F.pad(mask[:, split:], (0, split), value=0)
            encoder_activations = None
        if condition is not None:
            condition = self.drop_conditions(condition)
        if latents is None:
            autoencoder = self.get_autoencoder()
            with torch.no_grad():
                latents = autoencoder.normalize_latents(
                    autoencoder.encode(input_ids, attention_mask, encoder_activations=encoder_activations)
                )
        x0 = latents.to(self.dtype)
        batch = x0.shape[0]
        # Cosmos' one coin per batch is drawn first: how much randomness the noise below uses depends on its dtype.
        batch_coin = None
        if self.config.self_conditioning and self.config.self_cond_per_batch:
            batch_coin = bool(torch.rand((), device=x0.device) < self.config.self_cond_prob)
        t = self.noise_scheduler.sample_training_timesteps(batch, device=x0.device).to(x0.dtype)
        # float32 noise whatever the model's dtype: a step draws the same noise in float32, float64 or bfloat16.
        noisy = self.noise_scheduler.add_noise(x0, torch.randn(x0.shape, device=x0.device).to(x0.dtype), t)

        condition_kwargs = _condition_kwargs(condition)
        self_condition = None
        if self.config.self_conditioning:
            self_condition = self._training_self_condition(noisy, t, condition_kwargs, batch_coin)
        prediction = self.model(noisy, t, self_condition=self_condition, **condition_kwargs).sample
        loss = (prediction.float() - x0.float()).pow(2).mean()
        return CosmosLMDiffusionOutput(loss=loss, pred_original_sample=prediction)

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
        """Cosmos' sampler: Euler–Maruyama on the reverse VP SDE of the tan schedule, to `t_min`."""
        return EulerMaruyamaVPScheduler(
            schedule_d=self.config.schedule_d, t_min=self.config.t_min, training_t_min=self.config.training_t_min
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
        return self.model(latents, timestep, self_condition=self_condition, **_condition_kwargs(condition)).sample

    @apply_forward_hook
    def decode_latents(self, latents, *, sc_guidance_scale=None, condition=None):
        autoencoder = self.get_autoencoder()
        return autoencoder.decode(autoencoder.denormalize_latents(latents.to(autoencoder.dtype)))


def _condition_kwargs(condition: TextCondition | None) -> dict:
    """The backbone's cross-attention arguments."""
    if condition is None:
        return {}
    return {"encoder_hidden_states": condition.hidden_states, "encoder_attention_mask": condition.attention_mask}


__all__ = [
    "CosmosLMAutoencoder",
    "CosmosLMAutoencoderOutput",
    "CosmosLMDiffusionOutput",
    "CosmosLMForDiffusion",
    "CosmosLMModel",
    "CosmosLMPreTrainedModel",
]
