"""Cosmos' text autoencoder (Meshchaninov et al., arXiv 2506.21170), read against `dbal0503/cosmos@7a34a3b`
(`architecture/encoder.py`, `decoder.py`, `blocks.py`, `latent_attention.py`, `encoder_trainer.py`).

`h = (encoder(tokens) - mean) / std` per dimension, from a frozen pretrained encoder; a Perceiver compressor turns the
L activations into N latents; a Perceiver decompressor turns the N latents back into L token slots, whose output
`h_hat` is matched to `h` (MSE, the alignment with the frozen encoder) and read by the token head (cross-entropy).
Training perturbs the compressor's input (half of the batch: 30% of the activations masked; the other half:
`0.7 h + sqrt(1 - 0.7^2) eps`) and drops 40% of the latent elements, so that nearby latents decode to the same text:
the latent space is smooth.

The form is set by the config (`codec_version` 2 = as published, 1 = latentlm's original codec, see
`CosmosLMAutoencoderConfig`). Where latentlm's widths differ from each other (Cosmos uses 768 everywhere), the
published form adds a `Linear` only where one is unavoidable: `hidden -> latent_dim` before the latent's RMSNorm and
`hidden -> encoder_dim` for `h_hat`. Not reproduced: Cosmos' `ScaleMask` gains (with every decoder slot a `[MASK]`
they are learned scalars on each residual branch, absorbed by the linear layer before them) and its absolute-position
initialisation scale (positions here start at `initializer_range`).
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from diffusers.utils.accelerate_utils import apply_forward_hook
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput, can_return_tuple

from ..encoders import FrozenTextEncoderMixin, resolve_encoder_path
from ..heads import FactoredLMHead, greedy_token_ids
from ..perceiver import GELUFeedForward, PerceiverAttention, PerceiverStack, latent_positions, token_positions
from ..pretrained_mixin import LatentLMModelMixin
from .configuration_cosmos_lm import CosmosLMAutoencoderConfig


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


class CosmosLMAutoencoder(LatentLMModelMixin, PreTrainedModel, FrozenTextEncoderMixin):
    """Cosmos' text autoencoder: `encode` L tokens into N latents, `decode` N latents into L token logits.

    Like diffusers' `AutoencoderKL`, it is trained on its own and frozen afterwards; the diffusion pipeline holds it
    as a component. The frozen pretrained encoder is attached for encoding only (see `FrozenTextEncoderMixin`) and is
    never saved. Data are buffers saved with the weights: `activation_mean` / `activation_std` `(encoder_dim,)`
    normalise the encoder's activations (fitted before training by `prepare_for_training`), `latent_mean` /
    `latent_std` `(num_latents, latent_dim)` normalise the latents for diffusion (fitted by the diffusion stage, or
    `fit_latent_statistics`), and with `mask_token_slots` `mask_embedding` `(encoder_dim,)` is the encoder's `[MASK]`
    word embedding the token slots are built from (so decoding never needs the encoder). Unfitted buffers are zeros.
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
        # Registration order is the original codec's (`codec_version=1`), so that its random initialisation is too.
        hidden, enc, latent_dim = config.hidden_size, config.encoder_dim, config.latent_dim
        projected = not config.normalized_latent  # the original codec's Linear input/output projections
        stack = dict(
            hidden_size=hidden,
            num_heads=config.num_attention_heads,
            intermediate_size=config.intermediate_size,
            eps=config.rms_norm_eps,
            dropout=config.hidden_dropout,
            feed_forward=config.feed_forward,
            locality_bias=config.locality_bias,
        )
        # Compressor: N latent queries over the L (position-tagged) encoder activations.
        self.activation_proj = nn.Linear(enc, hidden) if projected else None
        self.token_positions = nn.Parameter(
            torch.zeros(1, config.max_position_embeddings, hidden if projected else enc)
        )
        self.latent_queries = nn.Parameter(torch.zeros(1, config.num_latents, hidden))
        self.query_norm = None if projected else nn.RMSNorm(hidden, eps=config.rms_norm_eps)
        chunk = config.max_position_embeddings // config.num_latents
        self.chunk_proj = nn.Linear(chunk * enc, hidden) if config.chunk_shortcut else None
        self.compressor = PerceiverStack(
            config.num_compressor_layers, **stack, context_size=None if projected else enc, final_norm=projected
        )
        if projected:  # latent = Linear(RMSNorm(queries))
            self.to_latents, self.latent_norm = nn.Linear(hidden, latent_dim), None
        else:  # latent = RMSNorm(queries), through a Linear first only when the widths differ
            self.to_latents = nn.Linear(hidden, latent_dim, bias=False) if latent_dim != hidden else None
            self.latent_norm = nn.RMSNorm(latent_dim, eps=config.rms_norm_eps)
        # Decompressor: L token slots over the N (position-tagged) latents.
        self.from_latents = nn.Linear(latent_dim, hidden) if projected else None
        self.latent_positions = nn.Parameter(torch.zeros(1, config.num_latents, hidden if projected else latent_dim))
        # Learned slots, or the positions added to the slots built from the [MASK] embedding.
        self.token_slots = nn.Parameter(torch.zeros(1, config.max_position_embeddings, hidden))
        self.slot_mlp = (
            GELUFeedForward(enc, config.intermediate_size, hidden, config.hidden_dropout)
            if config.mask_token_slots
            else None
        )
        self.unchunk_proj = nn.Linear(latent_dim, chunk * hidden) if config.chunk_shortcut else None
        self.decompressor = PerceiverStack(
            config.num_decompressor_layers,
            **stack,
            context_size=None if projected else latent_dim,
            final_norm=config.decoder_final_norm,
        )
        # h_hat (the MSE's prediction) and the token head; coupled, the head reads h_hat.
        head_width = enc if config.couple_heads else hidden
        if config.lm_head == "factored":
            self.lm_head = FactoredLMHead(head_width, config.lm_head_dim, config.vocab_size)
        else:
            self.lm_head = nn.Linear(head_width, config.vocab_size, bias=False)
        self.activation_head = nn.Linear(hidden, enc) if hidden != enc or not config.couple_heads else None

        self.register_buffer("activation_mean", torch.zeros(enc))
        self.register_buffer("activation_std", torch.zeros(enc))
        self.register_buffer("latent_mean", torch.zeros(config.num_latents, latent_dim))
        self.register_buffer("latent_std", torch.zeros(config.num_latents, latent_dim))
        if config.mask_token_slots:
            self.register_buffer("mask_embedding", torch.zeros(enc))
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
            # Unfitted data are zeros (`has_*_statistics` is False), also after a partial or mismatched load.
            for buffer in (self.activation_mean, self.activation_std, self.latent_mean, self.latent_std):
                init.zeros_(buffer)
            if self.config.mask_token_slots:
                init.zeros_(self.mask_embedding)

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head.unembed if isinstance(self.lm_head, FactoredLMHead) else self.lm_head

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
        statistics yet), fits the statistics, stores the `[MASK]` embedding (`mask_token_slots`) and initialises the
        token head from the encoder's word embeddings (`init_lm_head_from_encoder`)."""
        encoder = self.load_text_encoder()
        if not self.has_activation_statistics:
            self.fit_activation_statistics(batch for _, batch in zip(range(num_batches), dataloader))
            embeddings = encoder.get_input_embeddings().weight
            if self.config.mask_token_slots:
                if self.config.mask_token_id is None:
                    self.config.mask_token_id = encoder_mask_token_id(self.config.encoder_name_or_path)
                self.set_mask_embedding(embeddings)
            if self.config.init_lm_head_from_encoder:
                self.init_lm_head_from_embeddings(embeddings)

    @torch.no_grad()
    def set_mask_embedding(self, embeddings: torch.Tensor) -> None:
        """Stores row `mask_token_id` of the encoder's word embeddings `(vocab_size, encoder_dim)`: the vector the
        token slots are built from (Cosmos' decoder embeds `[MASK]` tokens with the frozen encoder's embeddings)."""
        if self.config.mask_token_id is None:
            raise ValueError("`mask_token_id` is not set: give the encoder tokenizer's `[MASK]` id in the config.")
        expected = (self.config.vocab_size, self.config.encoder_dim)
        if tuple(embeddings.shape) != expected:
            raise ValueError(
                f"`embeddings` must have shape {expected} (`vocab_size`, `encoder_dim`), got {tuple(embeddings.shape)}."
            )
        self.mask_embedding.copy_(embeddings[self.config.mask_token_id].float())

    @torch.no_grad()
    def init_lm_head_from_embeddings(self, embeddings: torch.Tensor) -> None:
        """Sets the token head's output matrix `(vocab_size, head_dim)` from `embeddings` `(vocab_size, width)`,
        centred and scaled to std 0.1, and its bias (if any) to 0: tokens start out distinguishable by what the
        encoder knows of them. A head that reads the encoder's own coordinates (linear and `couple_heads`, embeddings
        as wide as the encoder) gets the embeddings themselves; any other head, their top `head_dim` principal
        components (deterministic SVD)."""
        unembed = self.get_output_embeddings()
        vocab, head_dim = unembed.weight.shape
        reads_encoder_space = isinstance(self.lm_head, nn.Linear) and self.config.couple_heads
        if embeddings.shape[0] != vocab or embeddings.shape[1] < head_dim:
            raise ValueError(
                f"`embeddings` must have shape ({vocab}, >= {head_dim}) (`vocab_size`, the token head's input "
                f"width), got {tuple(embeddings.shape)}."
            )
        centered = embeddings.detach().float().cpu()
        centered = centered - centered.mean(dim=0)
        if reads_encoder_space and embeddings.shape[1] == head_dim:
            projected = centered
        else:
            _, _, components = torch.linalg.svd(centered, full_matrices=False)
            projected = centered @ components[:head_dim].T
        unembed.weight.copy_(projected / projected.std() * 0.1)
        if unembed.bias is not None:
            unembed.bias.zero_()

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
        tokens = activations if self.activation_proj is None else self.activation_proj(activations)
        tokens = tokens + self.token_positions[:, :seq_len]
        queries = self.latent_queries.expand(batch, -1, -1)
        if self.query_norm is not None:
            queries = self.query_norm(queries)
        if self.chunk_proj is not None:  # latent j starts from its own tokens (j L/N ... (j+1) L/N - 1)
            if attention_mask is not None:
                activations = activations * attention_mask[..., None].to(activations.dtype)
            padded = F.pad(activations, (0, 0, 0, self.config.max_position_embeddings - seq_len))
            queries = queries + self.chunk_proj(padded.reshape(batch, self.config.num_latents, -1))
        positions = self._positions(seq_len, activations.device)
        latents = self.compressor(queries, tokens, positions["latents"], positions["tokens"], attention_mask)
        if self.to_latents is not None:
            latents = self.to_latents(latents)
        return latents if self.latent_norm is None else self.latent_norm(latents)

    def decompress(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents `(batch, num_latents, latent_dim)` -> token-slot hidden states `(batch, L, hidden_size)` (the
        decompressor's final hidden state)."""
        expected = (self.config.num_latents, self.config.latent_dim)
        if latents.ndim != 3 or tuple(latents.shape[1:]) != expected:
            raise ValueError(
                f"`latents` must have shape (batch, {expected[0]}, {expected[1]}), got {tuple(latents.shape)}."
            )
        latents = latents.to(self.dtype)
        context = (latents if self.from_latents is None else self.from_latents(latents)) + self.latent_positions
        slots = self.token_slots.expand(latents.shape[0], -1, -1)
        if self.slot_mlp is not None:  # every slot is the [MASK] embedding through the MLP, plus its position
            slots = slots + self.slot_mlp(self.mask_embedding.to(self.dtype))
        if self.unchunk_proj is not None:  # slot i starts from its latent, i N / L
            slots = slots + self.unchunk_proj(latents).reshape(slots.shape)
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

    def predict_activations(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """Decompressor states `(..., hidden_size)` -> `h_hat` `(..., encoder_dim)`, the prediction of the normalised
        encoder activations (the MSE's input; with `couple_heads`, also the token head's)."""
        return hidden_states if self.activation_head is None else self.activation_head(hidden_states)

    def token_logits(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """Decompressor states `(..., hidden_size)` -> logits `(..., vocab_size)`: through `h_hat` when coupled."""
        return self.lm_head(self._token_head_input(hidden_states))

    def _token_head_input(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.predict_activations(hidden_states) if self.config.couple_heads else hidden_states

    @apply_forward_hook
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents `(batch, num_latents, latent_dim)` -> token logits `(batch, L, vocab_size)`."""
        return self.token_logits(self.decompress(latents))

    @apply_forward_hook
    def decode_to_ids(self, latents: torch.Tensor) -> torch.LongTensor:
        """Latents `(batch, num_latents, latent_dim)` -> greedy tokens `(batch, L)`: `decode(latents).argmax(-1)`
        without the float32 logits (`greedy_token_ids`)."""
        return greedy_token_ids(self._token_head_input(self.decompress(latents)), self.lm_head)

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
        predicted = self.predict_activations(hidden)
        logits = self.lm_head(predicted if self.config.couple_heads else hidden)
        labels = input_ids if labels is None else labels
        token_mask = (labels != -100) & real
        # Flattened rows: cross-entropy over a transposed (batch, vocab, seq) view would copy the logits.
        ce = F.cross_entropy(
            logits.float().flatten(0, 1), labels.masked_fill(~token_mask, 0).flatten(), reduction="none"
        ).view_as(labels)
        mse = (predicted.float() - target).pow(2).mean(dim=-1)
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


def encoder_mask_token_id(encoder_name_or_path: str | None) -> int:
    """The `[MASK]` id of a frozen encoder's own tokenizer (`None` = the offline default encoder)."""
    from transformers import AutoTokenizer

    mask_token_id = AutoTokenizer.from_pretrained(resolve_encoder_path(encoder_name_or_path)).mask_token_id
    if mask_token_id is None:
        raise ValueError(
            f"The tokenizer of {encoder_name_or_path!r} has no mask token: set `mask_token_id` in the config, or "
            "`mask_token_slots=False`."
        )
    return mask_token_id


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


__all__ = ["CosmosLMAutoencoder", "CosmosLMAutoencoderOutput"]
