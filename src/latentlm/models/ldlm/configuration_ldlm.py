"""Configurations of LDLM (Meshchaninov et al., "How to Train Your Latent Diffusion Language Model Jointly With the
Latent Space", arXiv 2605.07933): the jointly trained model, and the decoder side exported for sampling."""

from transformers import PreTrainedConfig

from ..configuration_utils import (
    StrictConfigMixin,
    check_conditioning,
    check_heads_divide_hidden,
    check_positive,
    check_probability,
)


class LDLMDecoderConfig(StrictConfigMixin, PreTrainedConfig):
    r"""
    Configuration of [`LDLMDecoder`]: N latents -> L hidden states of the frozen LM (standardised) -> L token logits.

    Built from an [`LDLMConfig`] by `LDLMConfig.decoder_config()`; the field meanings are the same (the Perceiver
    width is `hidden_size` here, `codec_hidden_size` there).

    Args:
        vocab_size, max_position_embeddings (L), num_latents (N), latent_dim: the shapes.
        encoder_dim (`int`): width of the frozen LM's hidden states the latent decoder reconstructs.
        hidden_size, num_attention_heads, intermediate_size: width of the Perceiver and token-decoder blocks.
        num_decoder_layers (`int`): depth of the latent decoder (L token slots attending to the N latents).
        num_token_decoder_layers (`int`): depth of the token decoder (self-attention over the L decoded states);
            0 reads the tokens off each state with the factored head alone.
        lm_head_dim (`int`): bottleneck of the factored token head.
        chunk_shortcut (`bool`): each token slot also starts from a linear map of its latent (as Cosmos' codec).
    """

    model_type = "latentlm_ldlm_decoder"

    vocab_size: int = 30522
    max_position_embeddings: int = 128
    num_latents: int = 16
    latent_dim: int = 64
    encoder_dim: int = 384
    hidden_size: int = 256
    num_attention_heads: int = 4
    intermediate_size: int | None = None
    num_decoder_layers: int = 2
    num_token_decoder_layers: int = 1
    lm_head_dim: int = 128
    chunk_shortcut: bool = True
    rms_norm_eps: float = 1e-6
    hidden_dropout: float = 0.0
    initializer_range: float = 0.02

    pad_token_id: int | None = 0
    bos_token_id: int | None = None
    eos_token_id: int | None = None
    tie_word_embeddings: bool = False

    def __post_init__(self, **kwargs):
        if self.intermediate_size is None:
            self.intermediate_size = int(8 * self.hidden_size / 3)
        super().__post_init__(**kwargs)
        check_positive(
            self,
            ("vocab_size", "max_position_embeddings", "num_latents", "latent_dim", "encoder_dim", "hidden_size",
             "num_attention_heads", "num_decoder_layers", "lm_head_dim"),
        )  # fmt: skip
        if self.num_token_decoder_layers < 0:
            raise ValueError(f"`num_token_decoder_layers` must be >= 0, got {self.num_token_decoder_layers}.")
        check_heads_divide_hidden(self)
        _check_chunks(self)


class LDLMConfig(StrictConfigMixin, PreTrainedConfig):
    r"""
    Configuration of [`LDLMForDiffusion`] (the jointly trained model) and [`LDLMModel`] (its denoiser).

    The latent space: hidden states of layer `encoder_layer` of a frozen pretrained `AutoModel`, standardised per
    dimension with data statistics, read by a trainable Perceiver encoder into N latents; a Perceiver latent decoder
    maps the latents back to the L hidden states and a small token decoder reads tokens off them. The denoiser is the
    shared `DenoiserTransformer` over the N latents, on the variance-preserving tan schedule with d = 3
    (`EulerMaruyamaVPScheduler`), x0-prediction with self-conditioning. Everything except the frozen LM trains jointly.

    The loss is `gamma(s) * L_diff + L_h + L_w` (see `LDLMForDiffusion.forward`). The paper's four-part recipe is
    four switches; all four `False` is "naive joint" training:

    * `mse_decoder_loss`: the encoder is shaped by `L_h`, the MSE of the decoded hidden states to the frozen LM's,
      and the token cross-entropy `L_w` reads a stop-gradient copy of them. Off: no `L_h`, and `L_w`'s gradient
      flows through the latent decoder into the encoder (a cross-entropy autoencoder).
    * `encoder_warmup`: the gradient `L_diff` sends into the encoder is scaled by
      `gamma(s) = gamma_min + (1 - gamma_min) (sig(s) - sig(0)) / (sig(S_wu) - sig(0))`,
      `sig(s) = sigmoid(k (s / S_wu - c))`, and is 1 after `S_wu`. Off: `gamma = 1`. The denoiser always gets its full
      gradient.
    * `adaptive_timesteps`: training times follow the loss curve (CDCD time warping), see `AdaptiveTimestepSampler`.
      Off: `t ~ U(training_t_min, 1)`.
    * `decoder_input_noise`: Gaussian noise of std `decoder_noise_std` is added to the latents the decoder reads in
      training (never at evaluation or sampling). Off: no noise.

    Args:
        encoder_name_or_path (`str`, *optional*): the frozen `AutoModel` (`None` = the offline all-MiniLM-L6-v2; the
            paper: GPT-2 small). Needed to train only.
        encoder_layer (`int`, defaults to -1): which hidden state to read (`hidden_states[encoder_layer]`, -1 = the
            last; the paper reads GPT-2's -3).
        encoder_dim (`int`, defaults to 384): the frozen LM's hidden size.
        num_latents (`int`, defaults to 16), latent_dim (`int`, defaults to 64): N and the width of each latent. The
            encoder's output is RMS-normalised per latent vector (our choice, not stated by the paper): diffusion
            and the decoder noise then act at a fixed scale the encoder cannot shrink or inflate.
        codec_hidden_size, codec_num_attention_heads, codec_intermediate_size: Perceiver width of the encoder, the
            latent decoder and the token decoder.
        num_encoder_layers, num_decoder_layers, num_token_decoder_layers, lm_head_dim: depths and head bottleneck.
        chunk_shortcut (`bool`, defaults to `True`): latent j also starts from a linear map of its own L / N tokens'
            states, token slot i from its latent (patchify / unpatchify, as our Cosmos codec). Needs L divisible by N.
        hidden_size, num_hidden_layers, num_attention_heads, intermediate_size, num_time_tokens, use_long_skips:
            the denoiser.
        self_conditioning (`bool`) and self_cond_prob (`float`, defaults to 0.5): per example.
        schedule_d (`float`, defaults to 3.0): d of the tan schedule. t_min (`float`, defaults to 0.05): where the
            sampler stops and decodes. training_t_min (`float`, defaults to 1e-5).
        mse_decoder_loss, encoder_warmup, adaptive_timesteps, decoder_input_noise (`bool`, all `True`): the recipe.
        decoder_noise_std (`float`, defaults to 3.0): sigma_dec (paper: 3.0, on a latent scale it does not state). The
            latents here have unit RMS per dimension, so a dimension carries at most 0.5 log2(1 + 1 / sigma_dec^2)
            bits through the noise (0.076 at 3.0): the codec needs many latent dimensions per token (the paper's
            reading: one 768-d latent per token). `benchmarks/ldlm-ablation`: with 4 dimensions per token every
            sigma_dec blocks the codec; with 256, 1.0 and 0.5 learn and smooth the latent space, 3.0 still blocks
            within 1,500 steps.
        encoder_warmup_steps (`int`, defaults to 1000): S_wu, in training forward passes (micro-batches).
        encoder_warmup_gamma_min (`float`, defaults to 1e-3; not in the paper, as Open-dLLM),
            encoder_warmup_k (10.0), encoder_warmup_c (0.8): the warm-up curve.
        num_timestep_bins (`int`, defaults to 100), timestep_loss_ema_decay (`float`, defaults to 0.95; ours):
            the adaptive sampler.
        conditional, prompt_prob, max_prompt_fraction, condition_dropout: conditioning as in [`CosmosLMConfig`]
            (what is known of the paper describes none; this is latentlm's one condition path): the denoiser
            cross-attends to the condition's frozen-LM states (layer `encoder_layer`, standardised like the target's),
            and a continuation's target is the rest of the window, encoded from its first token.
        cross_attention_dim (`int`, *optional*): width of the condition states, `encoder_dim` for a conditional
            model (the default); `None` otherwise.
    """

    model_type = "latentlm_ldlm"
    # A layer index counts from the end when negative; a decoder noise std of 0 switches the noise off.
    _signed_fields = ("encoder_layer", "decoder_noise_std")

    vocab_size: int = 30522
    encoder_name_or_path: str | None = None
    encoder_layer: int = -1
    encoder_dim: int = 384
    max_position_embeddings: int = 128
    num_latents: int = 16
    latent_dim: int = 64

    codec_hidden_size: int = 256
    codec_num_attention_heads: int = 4
    codec_intermediate_size: int | None = None
    num_encoder_layers: int = 2
    num_decoder_layers: int = 2
    num_token_decoder_layers: int = 1
    lm_head_dim: int = 128
    chunk_shortcut: bool = True

    hidden_size: int = 256
    num_hidden_layers: int = 6
    num_attention_heads: int = 4
    intermediate_size: int | None = None
    bottleneck_dim: int | None = None
    rope_theta: float = 10000.0
    rms_norm_eps: float = 1e-6
    hidden_dropout: float = 0.0
    initializer_range: float = 0.02
    num_time_tokens: int = 4
    num_guidance_tokens: int = 0
    num_mode_tokens: int = 0
    self_conditioning: bool = True
    self_cond_prob: float = 0.5
    use_long_skips: bool = True

    schedule_d: float = 3.0
    t_min: float = 0.05
    training_t_min: float = 1e-5

    mse_decoder_loss: bool = True
    encoder_warmup: bool = True
    adaptive_timesteps: bool = True
    decoder_input_noise: bool = True
    decoder_noise_std: float = 3.0
    encoder_warmup_steps: int = 1000
    encoder_warmup_gamma_min: float = 1e-3
    encoder_warmup_k: float = 10.0
    encoder_warmup_c: float = 0.8
    num_timestep_bins: int = 100
    timestep_loss_ema_decay: float = 0.95
    conditional: bool = False
    prompt_prob: float = 0.0
    max_prompt_fraction: float = 0.5
    condition_dropout: float = 0.1
    cross_attention_dim: int | None = None

    pad_token_id: int | None = 0
    bos_token_id: int | None = None
    eos_token_id: int | None = None
    tie_word_embeddings: bool = False

    def __post_init__(self, **kwargs):
        if self.intermediate_size is None:
            self.intermediate_size = int(8 * self.hidden_size / 3)
        if self.codec_intermediate_size is None:
            self.codec_intermediate_size = int(8 * self.codec_hidden_size / 3)
        super().__post_init__(**kwargs)
        check_positive(
            self,
            ("vocab_size", "encoder_dim", "max_position_embeddings", "num_latents", "latent_dim", "codec_hidden_size",
             "codec_num_attention_heads", "num_encoder_layers", "num_decoder_layers", "lm_head_dim", "hidden_size",
             "num_hidden_layers", "num_attention_heads", "num_time_tokens", "schedule_d", "encoder_warmup_steps",
             "encoder_warmup_k", "num_timestep_bins"),
        )  # fmt: skip
        check_heads_divide_hidden(self)
        if self.codec_hidden_size % self.codec_num_attention_heads:
            raise ValueError(
                f"`codec_hidden_size` ({self.codec_hidden_size}) must be divisible by `codec_num_attention_heads` "
                f"({self.codec_num_attention_heads})."
            )
        if self.num_guidance_tokens or self.num_mode_tokens:
            raise ValueError(
                "LDLM has no guidance or mode tokens: `num_guidance_tokens` and `num_mode_tokens` must be 0."
            )
        check_probability(self, ("self_cond_prob", "encoder_warmup_gamma_min", "encoder_warmup_c"))
        if not 0.0 <= self.timestep_loss_ema_decay < 1.0:
            raise ValueError(f"`timestep_loss_ema_decay` must be in [0, 1), got {self.timestep_loss_ema_decay}.")
        if self.decoder_noise_std < 0:
            raise ValueError(f"`decoder_noise_std` must be >= 0, got {self.decoder_noise_std}.")
        if not 0.0 < self.t_min < 1.0:
            raise ValueError(f"`t_min` must be in (0, 1), got {self.t_min}.")
        if self.num_token_decoder_layers < 0:
            raise ValueError(f"`num_token_decoder_layers` must be >= 0, got {self.num_token_decoder_layers}.")
        _check_chunks(self)
        check_conditioning(self)
        if self.conditional and self.cross_attention_dim is None:
            self.cross_attention_dim = self.encoder_dim
        if self.conditional and self.cross_attention_dim != self.encoder_dim:
            raise ValueError(
                f"`cross_attention_dim` ({self.cross_attention_dim}) must equal `encoder_dim` ({self.encoder_dim}): "
                "the denoiser reads the condition's frozen-LM states."
            )

    @property
    def compression_ratio(self) -> float:
        """Tokens per latent vector, L / N."""
        return self.max_position_embeddings / self.num_latents

    def decoder_config(self) -> LDLMDecoderConfig:
        """The config of the decoder side (`LDLMDecoder`), the part sampling needs."""
        return LDLMDecoderConfig(
            vocab_size=self.vocab_size,
            max_position_embeddings=self.max_position_embeddings,
            num_latents=self.num_latents,
            latent_dim=self.latent_dim,
            encoder_dim=self.encoder_dim,
            hidden_size=self.codec_hidden_size,
            num_attention_heads=self.codec_num_attention_heads,
            intermediate_size=self.codec_intermediate_size,
            num_decoder_layers=self.num_decoder_layers,
            num_token_decoder_layers=self.num_token_decoder_layers,
            lm_head_dim=self.lm_head_dim,
            chunk_shortcut=self.chunk_shortcut,
            rms_norm_eps=self.rms_norm_eps,
            initializer_range=self.initializer_range,
            pad_token_id=self.pad_token_id,
            bos_token_id=self.bos_token_id,
            eos_token_id=self.eos_token_id,
        )


def _check_chunks(config) -> None:
    if config.chunk_shortcut and config.max_position_embeddings % config.num_latents:
        raise ValueError(
            f"`chunk_shortcut` needs `max_position_embeddings` ({config.max_position_embeddings}) divisible by "
            f"`num_latents` ({config.num_latents}); set `chunk_shortcut=False` otherwise."
        )


__all__ = ["LDLMConfig", "LDLMDecoderConfig"]
