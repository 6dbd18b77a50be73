"""LDLM's codec: the trainable encoder that reads a frozen LM's standardised hidden states into N latents (training
only), and the decoder side that maps latents back to those states and to tokens (`LDLMDecoder`, exported on its own
for sampling, like Cosmos' autoencoder). `modeling_ldlm.py` trains them jointly with the denoiser."""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput, can_return_tuple

from ..heads import FactoredLMHead, greedy_token_ids
from ..perceiver import PerceiverAttention, PerceiverStack, latent_positions, token_positions
from ..pretrained_mixin import LatentLMModelMixin
from .configuration_ldlm import LDLMConfig, LDLMDecoderConfig


@dataclass
class LDLMDecoderOutput(ModelOutput):
    """
    Args:
        logits (`torch.FloatTensor` of shape `(batch, max_position_embeddings, vocab_size)`): the decoded tokens.
    """

    logits: torch.FloatTensor | None = None


def _init_perceiver_params(module: nn.Module, std: float, names: tuple[str, ...]) -> None:
    for name in names:
        init.normal_(getattr(module, name), mean=0.0, std=std)




class LDLMEncoder(nn.Module):
    """Standardised LM states `(batch, seq_len <= L, encoder_dim)` -> latents `(batch, N, latent_dim)`: N learned
    queries (plus, with `chunk_shortcut`, a linear map of their own L / N tokens) attend to the states (Perceiver);
    the output is RMS-normalised per latent vector."""

    def __init__(self, config: LDLMConfig):
        super().__init__()
        self.config = config
        hidden = config.codec_hidden_size
        self.input_proj = nn.Linear(config.encoder_dim, hidden)
        self.token_positions = nn.Parameter(torch.zeros(1, config.max_position_embeddings, hidden))
        self.latent_queries = nn.Parameter(torch.zeros(1, config.num_latents, hidden))
        chunk = config.max_position_embeddings // config.num_latents
        self.chunk_proj = nn.Linear(chunk * config.encoder_dim, hidden) if config.chunk_shortcut else None
        self.perceiver = PerceiverStack(
            config.num_encoder_layers, hidden, config.codec_num_attention_heads, config.codec_intermediate_size,
            config.rms_norm_eps, config.hidden_dropout,
        )  # fmt: skip
        self.to_latents = nn.Linear(hidden, config.latent_dim)

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        cfg = self.config
        batch, seq_len, _ = hidden_states.shape
        if seq_len > cfg.max_position_embeddings:
            raise ValueError(
                f"The input has {seq_len} tokens but LDLM takes at most {cfg.max_position_embeddings} "
                "(`max_position_embeddings`)."
            )
        tokens = self.input_proj(hidden_states) + self.token_positions[:, :seq_len]
        queries = self.latent_queries.expand(batch, -1, -1)
        if self.chunk_proj is not None:
            if attention_mask is not None:
                hidden_states = hidden_states * attention_mask[..., None].to(hidden_states.dtype)
            padded = F.pad(hidden_states, (0, 0, 0, cfg.max_position_embeddings - seq_len))
            queries = queries + self.chunk_proj(padded.reshape(batch, cfg.num_latents, -1))
        device = hidden_states.device
        out = self.perceiver(
            queries,
            tokens,
            latent_positions(cfg.num_latents, device),
            token_positions(seq_len, cfg.max_position_embeddings, cfg.num_latents, device),
            attention_mask,
        )
        return F.rms_norm(self.to_latents(out), (cfg.latent_dim,))


class LDLMDecoder(LatentLMModelMixin, PreTrainedModel):
    """LDLM's decoder side: latents `(batch, N, latent_dim)` -> standardised LM states `(batch, L, encoder_dim)` (the
    latent decoder, a Perceiver of L token slots over the N latents) -> token logits `(batch, L, vocab_size)` (the
    token decoder: self-attention blocks over the states, then a factored head).

    Like diffusers' `AutoencoderKL` in a pipeline, it is the codec component `LDLMPipeline` saves and loads; it is
    trained inside `LDLMForDiffusion`.
    """

    config_class = LDLMDecoderConfig
    config: LDLMDecoderConfig
    base_model_prefix = "decoder"
    main_input_name = "latents"
    _no_split_modules = ["PerceiverBlock"]
    _supports_sdpa = True
    supports_gradient_checkpointing = True

    def __init__(self, config: LDLMDecoderConfig):
        super().__init__(config)
        hidden = config.hidden_size
        stack = dict(hidden_size=hidden, num_heads=config.num_attention_heads,
                     intermediate_size=config.intermediate_size, eps=config.rms_norm_eps, dropout=config.hidden_dropout)  # fmt: skip
        self.from_latents = nn.Linear(config.latent_dim, hidden)
        self.latent_positions = nn.Parameter(torch.zeros(1, config.num_latents, hidden))
        self.token_slots = nn.Parameter(torch.zeros(1, config.max_position_embeddings, hidden))
        chunk = config.max_position_embeddings // config.num_latents
        self.unchunk_proj = nn.Linear(config.latent_dim, chunk * hidden) if config.chunk_shortcut else None
        self.latent_decoder = PerceiverStack(config.num_decoder_layers, **stack)
        self.hidden_head = nn.Linear(hidden, config.encoder_dim)

        self.token_proj = nn.Linear(config.encoder_dim, hidden)
        self.token_decoder = (
            PerceiverStack(config.num_token_decoder_layers, **stack) if config.num_token_decoder_layers else None
        )
        self.lm_head = FactoredLMHead(hidden, config.lm_head_dim, config.vocab_size)
        self.post_init()

    @torch.no_grad()
    def _init_weights(self, module):
        super()._init_weights(module)
        if isinstance(module, PerceiverAttention):
            module.reset_locality()
        if module is self:
            _init_perceiver_params(self, self.config.initializer_range, ("latent_positions", "token_slots"))

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head.unembed

    def decode_hidden_states(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents `(batch, N, latent_dim)` -> the standardised LM states `(batch, L, encoder_dim)` they describe."""
        cfg = self.config
        if latents.ndim != 3 or tuple(latents.shape[1:]) != (cfg.num_latents, cfg.latent_dim):
            raise ValueError(
                f"`latents` must have shape (batch, {cfg.num_latents}, {cfg.latent_dim}), got {tuple(latents.shape)}."
            )
        latents = latents.to(self.dtype)
        context = self.from_latents(latents) + self.latent_positions
        slots = self.token_slots.expand(latents.shape[0], -1, -1)
        if self.unchunk_proj is not None:  # slot i starts from its latent, i N / L
            slots = slots + self.unchunk_proj(latents).reshape(slots.shape)
        device = latents.device
        out = self.latent_decoder(
            slots,
            context,
            token_positions(cfg.max_position_embeddings, cfg.max_position_embeddings, cfg.num_latents, device),
            latent_positions(cfg.num_latents, device),
        )
        return self.hidden_head(out)

    def token_logits(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """Standardised LM states `(batch, seq_len <= L, encoder_dim)` -> token logits `(batch, seq_len, vocab_size)`."""
        return self.lm_head(self._token_states(hidden_states))

    def _token_states(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """The token decoder's output, the input of `lm_head`."""
        cfg = self.config
        tokens = self.token_proj(hidden_states.to(self.dtype))
        if self.token_decoder is not None:  # self-attention: the queries attend to themselves, no other context
            positions = token_positions(tokens.shape[1], cfg.max_position_embeddings, cfg.num_latents, tokens.device)
            tokens = self.token_decoder(tokens, tokens[:, :0], positions, positions[:0])
        return tokens

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents `(batch, N, latent_dim)` -> token logits `(batch, L, vocab_size)`."""
        return self.token_logits(self.decode_hidden_states(latents))

    def decode_to_ids(self, latents: torch.Tensor) -> torch.LongTensor:
        """Latents `(batch, N, latent_dim)` -> greedy tokens `(batch, L)`: `decode(latents).argmax(-1)` without the
        float32 logits (`greedy_token_ids`)."""
        return greedy_token_ids(self._token_states(self.decode_hidden_states(latents)), self.lm_head)

    @can_return_tuple
    def forward(self, latents: torch.Tensor) -> LDLMDecoderOutput:
        """`decode` as a model output: latents `(batch, N, latent_dim)` -> `logits` `(batch, L, vocab_size)`."""
        return LDLMDecoderOutput(logits=self.decode(latents))


__all__ = ["LDLMDecoder", "LDLMDecoderOutput", "LDLMEncoder"]
