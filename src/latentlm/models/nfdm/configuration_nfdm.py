"""Configuration of NFDM for text (Neural Flow Diffusion Models; "Towards Latent Diffusion Suitable For Text",
arXiv 2601.16220)."""

from transformers import PreTrainedConfig

from ..configuration_utils import StrictConfigMixin, check_heads_divide_hidden, check_positive


class NFDMConfig(StrictConfigMixin, PreTrainedConfig):
    r"""
    Configuration of [`NFDMModel`] and [`NFDMForDiffusion`].

    NFDM learns token embeddings (tied to the output head), a Gaussian forward process ``F_phi`` and a volatility
    ``g(t)`` jointly with the denoiser, on a variational bound of the token likelihood. Defaults follow the official
    code (``roc_nfdm_new.yaml``) where it matters for the method (delta 0.1, 100 importance buckets, the stabilised
    predictor, a time embedding of ``1000 t`` in the forward network) at a small size.

    Time: t in [0, 1], t = 0 data, t = 1 noise (as the official code and the rest of latentlm).

    Args:
        vocab_size (`int`, defaults to 30522): the tokenizer's vocabulary.
        latent_dim (`int`, defaults to 128): width of the learned token embeddings (the paper's 128).
        embedding_init_std (`float`, defaults to 1.0): std of the embeddings at initialisation (the prior is N(0, I)).
        hidden_size, num_hidden_layers, num_attention_heads, intermediate_size, bottleneck_dim,
        max_position_embeddings, num_time_tokens, rope_theta, rms_norm_eps, hidden_dropout: the predictor, the shared
            `DenoiserTransformer` (no guidance or mode tokens, no self-conditioning).
        predictor_offset (`float`, defaults to 0.01): the stabilised x-prediction
            ``x_hat = (1 - t) z + (t + predictor_offset) NN(z, t)``.
        learned_forward_process (`bool`, defaults to `True`): learn ``F_phi``; `False` is the fixed process
            ``mean = (1 - t) x``, ``std = delta^(1 - t)`` (the ablation baseline; same code, no network).
        forward_hidden_size, forward_num_layers, forward_num_heads, forward_intermediate_size: the forward network, a
            small transformer with AdaLN-Zero time conditioning (`forward_intermediate_size=None` gives the SwiGLU
            width ``int(8 * forward_hidden_size / 3)``).
        forward_time_scale (`float`, defaults to 1000.0): the forward network embeds ``forward_time_scale * t``.
        forward_log_std_bound (`float`, *optional*): if set, ``log_std_bar`` is ``B tanh(raw / B)`` with this ``B``,
            so the learned std stays within ``exp(+-B t (1 - t))`` of the fixed one. Not in the official code (which
            leaves it unbounded, the default here); on our CPU runs the unbounded std grew to ``exp(39 t (1 - t))``
            and training diverged (see benchmarks/nfdm). Any value keeps the bound a valid bound.
        delta (`float`, defaults to 0.1): the data-end std ``std(x, 0) = delta``.
        volatility_hidden_size (`int`, defaults to 64): width of the 3-hidden-layer MLP of ``g(t) = softplus(MLP(t))``.
        num_time_buckets (`int`, defaults to 100): buckets of the learned importance time sampler; 0 samples t
            uniformly.
        reconstruction_token_fraction (`float`, defaults to 1.0): in training, the reconstruction term's sum over
            tokens is estimated from this random share of the tokens, weighted by its inverse (unbiased, cheaper: the
            tied head over the vocabulary is the costliest matmul of a small model). Evaluation scores every token.
    """

    model_type = "latentlm_nfdm"

    vocab_size: int = 30522
    latent_dim: int = 128
    embedding_init_std: float = 1.0

    hidden_size: int = 256
    num_hidden_layers: int = 6
    num_attention_heads: int = 4
    intermediate_size: int | None = None
    bottleneck_dim: int | None = None
    max_position_embeddings: int = 128
    rope_theta: float = 10000.0
    rms_norm_eps: float = 1e-6
    hidden_dropout: float = 0.0
    num_time_tokens: int = 4
    num_guidance_tokens: int = 0
    num_mode_tokens: int = 0
    self_conditioning: bool = False
    use_long_skips: bool = False
    initializer_range: float = 0.02
    predictor_offset: float = 0.01

    learned_forward_process: bool = True
    forward_hidden_size: int = 128
    forward_num_layers: int = 2
    forward_num_heads: int = 2
    forward_intermediate_size: int | None = None
    forward_time_scale: float = 1000.0
    forward_log_std_bound: float | None = None
    delta: float = 0.1
    volatility_hidden_size: int = 64
    num_time_buckets: int = 100
    reconstruction_token_fraction: float = 1.0

    pad_token_id: int | None = 0
    bos_token_id: int | None = None
    eos_token_id: int | None = None
    tie_word_embeddings: bool = False

    def __post_init__(self, **kwargs):
        if self.intermediate_size is None:
            self.intermediate_size = int(8 * self.hidden_size / 3)
        if self.forward_intermediate_size is None:
            self.forward_intermediate_size = int(8 * self.forward_hidden_size / 3)
        super().__post_init__(**kwargs)
        self._validate()

    def _validate(self):
        check_positive(
            self,
            ("vocab_size", "latent_dim", "embedding_init_std", "hidden_size", "num_hidden_layers",
             "num_attention_heads", "max_position_embeddings", "num_time_tokens", "forward_hidden_size",
             "forward_num_layers", "forward_num_heads", "forward_time_scale", "volatility_hidden_size"),
        )  # fmt: skip
        check_heads_divide_hidden(self)
        if self.forward_hidden_size % self.forward_num_heads:
            raise ValueError(
                f"`forward_hidden_size` ({self.forward_hidden_size}) must be divisible by `forward_num_heads` "
                f"({self.forward_num_heads})."
            )
        if self.forward_log_std_bound is not None and not self.forward_log_std_bound > 0:
            raise ValueError(f"`forward_log_std_bound` must be positive or None, got {self.forward_log_std_bound}.")
        if not 0.0 < self.delta < 1.0:
            raise ValueError(f"`delta` must be in (0, 1), got {self.delta}.")
        if not 0.0 < self.reconstruction_token_fraction <= 1.0:
            raise ValueError(
                f"`reconstruction_token_fraction` must be in (0, 1], got {self.reconstruction_token_fraction}."
            )
        if self.predictor_offset < 0:
            raise ValueError(f"`predictor_offset` must be non-negative, got {self.predictor_offset}.")
        if self.num_time_buckets < 0:
            raise ValueError(f"`num_time_buckets` must be 0 (uniform times) or positive, got {self.num_time_buckets}.")
        for name in ("num_guidance_tokens", "num_mode_tokens", "self_conditioning", "use_long_skips"):
            if getattr(self, name):
                raise ValueError(
                    f"`{name}` is not used by NFDM; leave it at its default, got {getattr(self, name)!r}."
                )


__all__ = ["NFDMConfig"]
