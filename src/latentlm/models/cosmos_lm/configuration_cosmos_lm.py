"""Configurations of Cosmos (Meshchaninov et al., "Compressed and Smooth Latent Space for Text Diffusion Modeling",
arXiv 2506.21170): the text autoencoder and the latent diffusion model trained on its latents.

The method is named `CosmosLM...` because NVIDIA's Cosmos already has classes in diffusers and transformers.
"""

from transformers import PreTrainedConfig

from ..configuration_utils import (
    StrictConfigMixin,
    check_conditioning,
    check_distillation,
    check_heads_divide_hidden,
    check_positive,
    check_probability,
)
from ..denoiser_conditioning import DenoiserOptions, check_denoiser_options
from ..perceiver import FEED_FORWARDS


# The codec's form per `codec_version`: 1 = latentlm's original codec (every config saved before the field existed),
# 2 = Cosmos as published (`dbal0503/cosmos@7a34a3b`, `architecture/{encoder,decoder,blocks}.py`). A field left at
# None takes its version's value.
CODEC_FORMS = {
    1: dict(
        couple_heads=False, mask_token_slots=False, normalized_latent=False, feed_forward="swiglu",
        decoder_final_norm=True, lm_head="factored", hidden_dropout=0.0,
        locality_bias=True, chunk_shortcut=True, init_lm_head_from_encoder=True,
    ),
    2: dict(
        couple_heads=True, mask_token_slots=True, normalized_latent=True, feed_forward="gelu",
        decoder_final_norm=False, lm_head="linear", hidden_dropout=0.1,
        locality_bias=False, chunk_shortcut=False, init_lm_head_from_encoder=False,
    ),
}  # fmt: skip
LM_HEADS = ("linear", "factored")


class CosmosLMAutoencoderConfig(StrictConfigMixin, PreTrainedConfig):
    r"""
    Configuration of [`CosmosLMAutoencoder`]: `max_position_embeddings` (L) tokens <-> `num_latents` (N) latents.

    The compressor reads the frozen encoder's activations, standardised per dimension with data statistics, and
    N learned latent queries attend to them (Perceiver); the decompressor's L token slots attend to the latents and
    predict the tokens (cross-entropy) and the normalised encoder activations (MSE, the alignment with the frozen
    encoder). Cosmos' defaults: N = 16 for L = 128 (8x), and three augmentations that make the latent space smooth.

    New configs are Cosmos as published (`codec_version=2`); a saved config without `codec_version` loads as
    `codec_version=1`, latentlm's original codec, unchanged. Each field below marked "(v1 / v2)" defaults to its
    version's value and can be set on its own.

    Args:
        codec_version (`int`, defaults to 2): the defaults of the form fields below, 1 (latentlm's original codec) or
            2 (as published).
        vocab_size (`int`, defaults to 30522): the encoder tokenizer's vocabulary.
        encoder_name_or_path (`str`, *optional*): the frozen `AutoModel` encoder (`None` = the offline
            all-MiniLM-L6-v2). Needed to encode text; decoding never needs it.
        encoder_dim (`int`, defaults to 384): the encoder's hidden size.
        max_position_embeddings (`int`, defaults to 128): L, the text length the decompressor produces.
        num_latents (`int`, defaults to 16): N, the number of latent vectors.
        latent_dim (`int`, defaults to 384): width of each latent vector (Cosmos: the encoder's width).
        hidden_size, num_attention_heads, intermediate_size: width of the Perceiver blocks
            (`intermediate_size=None` gives `4 * hidden_size` for the GELU feed-forward, `int(8 * hidden_size / 3)`
            for SwiGLU).
        num_compressor_layers, num_decompressor_layers (`int`, defaults to 2 each): depth of the two stacks.
        hidden_dropout (`float`, 0.0 / 0.1): dropout inside the feed-forwards (Cosmos: 0.1).
        activation_mask_fraction (`float`, defaults to 0.5): share of each training batch whose encoder activations
            are masked: `activation_mask_prob` (0.3) of their tokens are hidden from the compressor.
        activation_noise_fraction (`float`, defaults to 0.5): share of each training batch (after the masked rows)
            whose normalised activations are mixed with noise, `delta * h + sqrt(1 - delta^2) * eps`, with
            `activation_noise_delta` (0.7).
        latent_dropout (`float`, defaults to 0.4): each latent element is zeroed with this probability before
            decoding, in training (Cosmos does not rescale the kept ones).
        Set the two fractions and `latent_dropout` to 0 to train without the augmentations.

        Cosmos as published (each `True` / the first value is the published form):
        couple_heads (`bool`, False / True): the decoder's output `h_hat` (in the encoder's width: the final hidden
            state, through `Linear(hidden_size -> encoder_dim)` when the widths differ) is both what the MSE matches
            to the encoder's activations and what the token head reads, so the alignment shapes what tokens are
            decoded from. `False`: the token head reads the hidden state and a side `Linear` takes the MSE.
        mask_token_slots (`bool`, False / True): the L token slots are the frozen encoder's `[MASK]` word embedding
            (id `mask_token_id`, stored with the weights) through a GELU feed-forward, plus learned positions.
            `False`: learned slots.
        normalized_latent (`bool`, False / True): the latent is the compressor's final RMSNorm output itself
            (a `Linear` before that norm only when `latent_dim != hidden_size`), the learned queries are RMSNorm'd
            before the first block, and both stacks read their context (encoder activations, latents) at its own
            width. `False`: a `Linear` after the norm gives the latent, and `Linear`s project the contexts.
        feed_forward (`str`, "swiglu" / "gelu"): "gelu" is Cosmos' block: LayerNorm, Linear to `intermediate_size`,
            GELU, dropout, Linear, and attention without biases; "swiglu": RMSNorm + SwiGLU, attention biases.
        decoder_final_norm (`bool`, True / False): an RMSNorm after the decompressor's last block (Cosmos: none).
        lm_head (`str`, "factored" / "linear"): "linear" is Cosmos' `Linear(width -> vocab, bias=False)`;
            "factored" is `width -> lm_head_dim -> vocab` with a GELU (`FactoredLMHead`).
        lm_head_dim (`int`, defaults to 128): bottleneck of the factored token head.
        mask_token_id (`int`, *optional*): the encoder tokenizer's `[MASK]`; the training loop sets it from the
            tokenizer, and `prepare_for_training` from the encoder's own tokenizer when it is unset.

        latentlm's additions (off in the published form; each a CPU-budget speed-up, see `perceiver.py`):
        locality_bias (`bool`, True / False): the ALiBi-style locality bias of the Perceiver attention.
        chunk_shortcut (`bool`, True / False): start each latent query from a linear map of its own L / N
            tokens' activations, and each token slot from a linear map of its latent (patchify / unpatchify, added
            to the queries and slots). With only learned queries the codec stayed at unigram accuracy for hundreds
            of steps at CPU budgets. Needs `max_position_embeddings` divisible by `num_latents`.
        init_lm_head_from_encoder (`bool`, True / False): before training from scratch, initialise the token
            head's output matrix from the frozen encoder's word embeddings: the embeddings themselves when the head
            reads the encoder's coordinates (`couple_heads` with a linear head), else their top principal
            components (a random 30k-way head is what a CPU-budget codec spends most steps learning).
    """

    model_type = "latentlm_cosmos_autoencoder"

    codec_version: int = 2
    vocab_size: int = 30522
    encoder_name_or_path: str | None = None
    encoder_dim: int = 384
    max_position_embeddings: int = 128
    num_latents: int = 16
    latent_dim: int = 384
    hidden_size: int = 256
    num_attention_heads: int = 4
    intermediate_size: int | None = None
    num_compressor_layers: int = 2
    num_decompressor_layers: int = 2
    lm_head_dim: int = 128
    rms_norm_eps: float = 1e-6
    hidden_dropout: float | None = None
    initializer_range: float = 0.02

    activation_mask_fraction: float = 0.5
    activation_mask_prob: float = 0.3
    activation_noise_fraction: float = 0.5
    activation_noise_delta: float = 0.7
    latent_dropout: float = 0.4

    couple_heads: bool | None = None
    mask_token_slots: bool | None = None
    normalized_latent: bool | None = None
    feed_forward: str | None = None
    decoder_final_norm: bool | None = None
    lm_head: str | None = None
    locality_bias: bool | None = None
    chunk_shortcut: bool | None = None
    init_lm_head_from_encoder: bool | None = None

    pad_token_id: int | None = 0
    bos_token_id: int | None = None
    eos_token_id: int | None = None
    mask_token_id: int | None = None
    tie_word_embeddings: bool = False

    # A saved config from before `codec_version` existed is latentlm's original codec: version 1, whose defaults fill
    # the form fields it lacks (`StrictConfigMixin.from_dict`).
    _absent_key_defaults = {"codec_version": 1}

    def __post_init__(self, **kwargs):
        if self.codec_version not in CODEC_FORMS:
            raise ValueError(f"`codec_version` must be one of {sorted(CODEC_FORMS)}, got {self.codec_version!r}.")
        for name, value in CODEC_FORMS[self.codec_version].items():
            if getattr(self, name) is None:
                setattr(self, name, value)
        if self.feed_forward not in FEED_FORWARDS:
            raise ValueError(f"`feed_forward` must be one of {FEED_FORWARDS}, got {self.feed_forward!r}.")
        if self.lm_head not in LM_HEADS:
            raise ValueError(f"`lm_head` must be one of {LM_HEADS}, got {self.lm_head!r}.")
        if self.intermediate_size is None:
            gelu = self.feed_forward == "gelu"
            self.intermediate_size = 4 * self.hidden_size if gelu else int(8 * self.hidden_size / 3)
        super().__post_init__(**kwargs)
        check_positive(
            self,
            ("vocab_size", "encoder_dim", "max_position_embeddings", "num_latents", "latent_dim", "hidden_size",
             "num_attention_heads", "num_compressor_layers", "num_decompressor_layers", "lm_head_dim"),
        )  # fmt: skip
        check_heads_divide_hidden(self)
        check_probability(
            self, ("activation_mask_fraction", "activation_mask_prob", "activation_noise_fraction", "latent_dropout")
        )
        if self.activation_mask_fraction + self.activation_noise_fraction > 1.0:
            raise ValueError(
                "`activation_mask_fraction` + `activation_noise_fraction` must be at most 1 (they split one batch), "
                f"got {self.activation_mask_fraction} + {self.activation_noise_fraction}."
            )
        if self.chunk_shortcut and self.max_position_embeddings % self.num_latents:
            raise ValueError(
                f"`chunk_shortcut` needs `max_position_embeddings` ({self.max_position_embeddings}) divisible by "
                f"`num_latents` ({self.num_latents}); set `chunk_shortcut=False` otherwise."
            )
        if not 0.0 <= self.activation_noise_delta <= 1.0:
            raise ValueError(f"`activation_noise_delta` must be in [0, 1], got {self.activation_noise_delta}.")
        if self.mask_token_id is not None and not (
            isinstance(self.mask_token_id, int) and 0 <= self.mask_token_id < self.vocab_size
        ):
            raise ValueError(
                f"`mask_token_id` must be in [0, vocab_size = {self.vocab_size}), got {self.mask_token_id!r}."
            )

    @property
    def compression_ratio(self) -> float:
        """Tokens per latent vector, L / N (Cosmos' headline: 128 / 16 = 8x)."""
        return self.max_position_embeddings / self.num_latents


class CosmosLMConfig(StrictConfigMixin, PreTrainedConfig):
    r"""
    Configuration of [`CosmosLMModel`] and [`CosmosLMForDiffusion`]: the denoiser of Cosmos' latent diffusion.

    The denoiser is latentlm's shared `DenoiserTransformer` over the N latents of a trained (then frozen)
    [`CosmosLMAutoencoder`], with Cosmos' U-Net long skips and self-conditioning, trained with x0-prediction MSE on
    the variance-preserving tan schedule (`EulerMaruyamaVPScheduler`, t = 0 data, t = 1 noise).

    By default the denoiser is Cosmos' as published (`architecture/score_estimator.py`, `diffusion_trainer.py`): time
    and self-conditioning added to the residual stream before every block, the time sinusoid's max period 10,
    additive long skips, an RMSNorm output, one self-conditioning coin per batch. A config saved before these fields
    existed loads with latentlm's first form (time tokens, max period 10000, self-conditioning concatenated at the
    input, concat + Linear skips, RMSNorm + zero-initialised Linear output, a coin per example), so old models behave
    as they did; `_absent_key_defaults` lists those values.

    Args:
        autoencoder_name_or_path (`str`, *optional*): the trained autoencoder (a `CosmosLMAutoencoder` folder); the
            CLI's `--autoencoder` sets it. Needed to train; a saved pipeline carries the autoencoder itself.
        vocab_size (`int`): the tokenizer's vocabulary (checked against the autoencoder's).
        num_latents, latent_dim (`int`, defaults to 16, 384): the autoencoder's latent shape.
        max_position_embeddings (`int`, defaults to 128): L, the text length (the autoencoder's); the denoiser sees
            only `num_latents` positions.
        hidden_size, num_hidden_layers, num_attention_heads, intermediate_size, rope_theta, rms_norm_eps,
            hidden_dropout, initializer_range: denoiser sizes (`intermediate_size=None`: `int(8 * hidden_size / 3)`).
        time_injection (`str`, defaults to `"per_layer"`): `"per_layer"` adds an MLP embedding of the time to the
            residual stream before every block (Cosmos); `"tokens"` uses `num_time_tokens` in-context time tokens.
        num_time_tokens (`int`, *optional*): in-context time tokens; defaults to 4 with `time_injection="tokens"`,
            0 (and must be 0) with `"per_layer"`.
        time_embedding_max_period (`float`, defaults to 10.0): the time sinusoid's longest period (Cosmos: 10;
            diffusers' and latentlm's first form: 10000).
        self_conditioning (`bool`, defaults to `True`) and self_cond_prob (`float`, defaults to 0.5).
        self_conditioning_injection (`str`, defaults to `"per_layer"`): `"per_layer"` adds the estimate through its
            own Linear before every block (Cosmos); `"input"` concatenates it to the noisy latents at the input.
        self_cond_per_batch (`bool`, defaults to `True`): one self-conditioning coin per training batch, as Cosmos'
            trainer (the estimating pass is skipped when it fails); `False` draws one per example.
        use_long_skips (`bool`, defaults to `True`): U-Net skips from the first to the second half of the blocks.
        long_skip_merge (`str`, defaults to `"add"`): `"add"` (Cosmos) or `"concat_linear"`.
        output_head (`str`, defaults to `"norm"`): `"norm"` (Cosmos: the prediction is an RMSNorm output, after a
            Linear to `latent_dim` when `hidden_size` differs) or `"norm_linear"` (RMSNorm, zero-initialised Linear).
        See `models/denoiser_conditioning.py` for the exact forms.
        schedule_d (`float`, defaults to 5.0): d of the tan schedule (Cosmos: 5 for 16/32 latents, 7 for 64).
        t_min (`float`, defaults to 0.05): the sampler stops here and decodes.
        training_t_min (`float`, defaults to 1e-5): training times are U(training_t_min, 1).
        conditional, prompt_prob, max_prompt_fraction, condition_dropout: conditioning as in [`ELFConfig`], except
            that the condition is read by cross-attention, as Cosmos' conditional models do: the condition's tokens
            go through the autoencoder's frozen encoder (normalised like its input; Cosmos trains a 12-layer
            condition encoder instead) and every denoiser block cross-attends to them. For a continuation the
            target is the rest of the window, re-encoded by the autoencoder from its first token.
        cross_attention_dim (`int`, *optional*): width of the condition states, the autoencoder's `encoder_dim`
            (the training loop sets it from `--autoencoder`; checked when the autoencoder is attached). Conditional
            models built without it default to `latent_dim`, which is the encoder's width in Cosmos' own codecs.
        distill_steps (`int`, *optional*): set on a few-step student (`method: cosmos-distill`, see
            `CosmosLMForDistillation`): the DDIM steps it was distilled for, each spanning `(1 - t_min) / distill_steps`
            of time; its pipeline samples them with DDIM by default.
        distill_teacher (`str`, *optional*): the frozen Cosmos model a student is distilled from (a pipeline or model
            folder, a Hub id); used in training only.
        distill_teacher_steps (`int`, defaults to 4): DDIM sub-steps of the teacher inside one student step (the
            teacher's resolution is `distill_steps * distill_teacher_steps`).
    """

    model_type = "latentlm_cosmos"

    autoencoder_name_or_path: str | None = None
    vocab_size: int = 30522
    num_latents: int = 16
    latent_dim: int = 384
    max_position_embeddings: int = 128

    hidden_size: int = 256
    num_hidden_layers: int = 6
    num_attention_heads: int = 4
    intermediate_size: int | None = None
    bottleneck_dim: int | None = None
    rope_theta: float = 10000.0
    rms_norm_eps: float = 1e-6
    hidden_dropout: float = 0.0
    initializer_range: float = 0.02
    time_injection: str = "per_layer"
    num_time_tokens: int | None = None
    time_embedding_max_period: float = 10.0
    num_guidance_tokens: int = 0
    num_mode_tokens: int = 0
    self_conditioning: bool = True
    self_cond_prob: float = 0.5
    self_conditioning_injection: str = "per_layer"
    self_cond_per_batch: bool = True
    use_long_skips: bool = True
    long_skip_merge: str = "add"
    output_head: str = "norm"

    schedule_d: float = 5.0
    t_min: float = 0.05
    training_t_min: float = 1e-5
    conditional: bool = False
    prompt_prob: float = 0.0
    max_prompt_fraction: float = 0.5
    condition_dropout: float = 0.1
    cross_attention_dim: int | None = None
    distill_steps: int | None = None
    distill_teacher: str | None = None
    distill_teacher_steps: int = 4

    pad_token_id: int | None = 0
    bos_token_id: int | None = None
    eos_token_id: int | None = None
    tie_word_embeddings: bool = False

    # Configs saved before the published denoiser became the default keep latentlm's first form.
    _absent_key_defaults = {**DenoiserOptions().to_dict(), "self_cond_per_batch": False}

    def __post_init__(self, **kwargs):
        if self.intermediate_size is None:
            self.intermediate_size = int(8 * self.hidden_size / 3)
        if self.num_time_tokens is None:
            self.num_time_tokens = 4 if self.time_injection == "tokens" else 0
        super().__post_init__(**kwargs)
        check_positive(
            self,
            ("vocab_size", "num_latents", "latent_dim", "max_position_embeddings", "hidden_size",
             "num_hidden_layers", "num_attention_heads", "schedule_d"),
        )  # fmt: skip
        check_heads_divide_hidden(self)
        check_denoiser_options(self)
        if self.num_guidance_tokens or self.num_mode_tokens:
            raise ValueError(
                "Cosmos has no guidance or mode tokens: `num_guidance_tokens` and `num_mode_tokens` must be 0."
            )
        check_probability(self, ("self_cond_prob",))
        check_conditioning(self)
        check_distillation(self)
        if self.conditional and self.cross_attention_dim is None:
            self.cross_attention_dim = self.latent_dim
        if not 0.0 < self.t_min < 1.0:
            raise ValueError(f"`t_min` must be in (0, 1), got {self.t_min}.")


__all__ = ["CosmosLMAutoencoderConfig", "CosmosLMConfig"]
