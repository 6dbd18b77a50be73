"""Configuration of ELF (Embedded Language Flows, Hu et al. 2026, arXiv 2605.10938)."""

from transformers import PreTrainedConfig

from ..configuration_utils import (
    StrictConfigMixin,
    check_conditioning,
    check_distillation,
    check_heads_divide_hidden,
    check_positive,
    check_probability,
)
from ..warm_start import check_block_config


DISTILL_TIME_SCHEDULES = ("logit_normal", "uniform")
# The student's start times may also sit on the sampler's own grid, the teacher's sub-steps then on its finer grid.
DISTILL_STUDENT_TIME_SCHEDULES = (*DISTILL_TIME_SCHEDULES, "sampling_grid")


class ELFConfig(StrictConfigMixin, PreTrainedConfig):
    r"""
    Configuration of [`ELFModel`] and [`ELFForFlowMatching`].

    ELF runs rectified-flow matching in the contextual embedding space of a frozen pretrained encoder; the same
    network, switched to "decode" mode, maps clean embeddings to tokens. Defaults follow the paper's recipe (Table 4,
    `train_owt_ELF-B.yml`) at a small size, with all-MiniLM-L6-v2 (384-d, uncased WordPiece) as the encoder.

    Time convention: latentlm uses sigma in [0, 1] with sigma = 1 pure noise. ELF's paper uses t = 1 - sigma
    (t = 1 data). The logit-normal parameters below are given in the paper's t so they read as in the paper.

    Args:
        vocab_size (`int`, defaults to 30522): the encoder tokenizer's vocabulary.
        latent_dim (`int`, defaults to 384): width of the encoder's hidden states.
        encoder_name_or_path (`str`, *optional*): the frozen `AutoModel` encoder used for training (`None` = the
            offline all-MiniLM-L6-v2). Sampling never needs it.
        latent_mean, latent_std (`float`, *optional*): data statistics normalising the embeddings,
            `x = (h - latent_mean) / latent_std`; fitted on training data before training when `None`.
        hidden_size, num_hidden_layers, num_attention_heads, intermediate_size: denoiser transformer sizes
            (`intermediate_size=None` gives ELF's SwiGLU width, `int(8 * hidden_size / 3)`).
        bottleneck_dim (`int`, defaults to 128): the low-dimensional input bottleneck (`latent_dim -> 128 -> hidden`).
        decoder_head_dim (`int`, *optional*): width of the factored unembedding `hidden -> decoder_head_dim -> vocab`;
            `None` uses `latent_dim` as ELF does.
        max_position_embeddings (`int`, defaults to 128): longest sequence (condition + generation).
        condition_position_offset (`int`, *optional*): where a condition's tokens sit. `None` (ELF's layout): right
            before the target, the last at position -1. M: the condition's first token at -M, whatever its length,
            so source token j and target token j are always M positions apart (a copy becomes a lookup at a fixed
            distance; an option of latentlm, not of the paper). M must be at least the longest condition.
        num_time_tokens, num_guidance_tokens, num_mode_tokens (`int`, defaults to 4 each): in-context control tokens.
        self_conditioning (`bool`, defaults to `True`): feed the previous x0 estimate back as input.
        noise_scale (`float`, defaults to 2.0): s_n, the noise end of the path is `noise_scale * eps`.
        sigma_clamp (`float`, defaults to 0.05): ELF's `t_eps`, clamps the `1 / sigma` of the velocity.
        time_mean, time_std (`float`, defaults to -1.5, 0.8): logit-normal training times, `t = sigmoid(N(mean, std))`.
        decoder_prob (`float`, defaults to 0.2): share of examples trained in decode mode (cross-entropy).
        decoder_noise_scale (`float`, defaults to 5.0): s_d of the decode-mode corruption.
        decoder_time_mean, decoder_time_std (`float`, defaults to 0.8, 0.8): per-token decode-mode corruption level
            `p = sigmoid(N(mean, std))`, `z = p * x + (1 - p) * s_d * eps`.
        self_cond_prob (`float`, defaults to 0.5): share of denoise examples trained with self-conditioning.
        guidance_min, guidance_max (`float`, defaults to 0.5, 5.0): range of the self-conditioning guidance scale
            omega sampled in training (log-uniform in `1 + omega`) and fed to the model.
        hidden_dropout (`float`, defaults to 0.0): dropout in the middle half of the blocks.
        block_type (`str`, defaults to `"default"`): the backbone's blocks, `"default"` (pre-norm RMSNorm, SwiGLU,
            RoPE, qk-norm) or `"bert"` (a BERT encoder layer exactly, with absolute positions; reads `hidden_act` and
            `layer_norm_eps`). See `latentlm.models.warm_start`.
        hidden_act (`str`, defaults to `"gelu"`), layer_norm_eps (`float`, defaults to 1e-12): the `"bert"` blocks'
            MLP activation and LayerNorm eps.
        init_denoiser_from (`str`, *optional*): an `AutoModel` encoder (BERT, RoBERTa, XLM-R, CamemBERT, ELECTRA,
            DistilBERT; all-MiniLM-L6-v2 is a BERT) whose layers are copied into the denoiser when the model is built
            for training; needs `block_type="bert"` and the encoder's sizes, which
            `latentlm.models.warm_start.pretrained_block_kwargs(path)` returns (`latentlm train` fills them in). A
            saved model holds the copied weights and loads without it.
        init_denoiser_fit_projections (`bool`, defaults to `False`): with `init_denoiser_from`, fit the fresh input
            projection (latents -> the pretrained word embeddings of their tokens, least squares) on the first
            training batches instead of initialising it randomly; the pretrained encoder must share the model's
            tokenizer.
        conditional (`bool`, defaults to `False`): the model is trained with conditions (sources of paired data, or
            prompts to continue) and its pipeline accepts `prompt=` / `source=`. Condition tokens are encoded by the
            frozen encoder and sit clean before the target in the denoiser's sequence (ELF's conditional path), so
            sampling with a condition needs the encoder. Set by `prompt_prob > 0` and by training on paired data.
        prompt_prob (`float`, defaults to 0.0): share of unconditional-corpus batches trained as prompt
            continuations (the batch is split at a random point; the prefix is the condition).
        max_prompt_fraction (`float`, defaults to 0.5): the longest prompt of a continuation batch, as a share of
            the sequence.
        condition_dropout (`float`, defaults to 0.1): each conditioned example loses its condition with this
            probability in training (ELF's `label_drop_prob`): the unconditional branch of classifier-free guidance.
        distill_steps (`int`, *optional*): set on a few-step student (`method: elf-distill`, see
            `ELFForDistillation`): the number of sampling steps it was distilled for, each spanning `1 / distill_steps`
            of time. The exported pipeline's scheduler samples with this many steps by default. `None` (every model
            that is not a student) keeps the usual default of 32.
        distill_teacher (`str`, *optional*): the frozen teacher a student is distilled from (a pipeline or model
            folder, a Hub id or `pretrained:<bundled name>`, as `init_from`); recorded with the student.
        distill_teacher_steps (`int`, defaults to 4): Euler sub-steps of the teacher inside one student step (the
            official `pd_teacher_steps`; the teacher's resolution is `distill_steps * distill_teacher_steps`).
        distill_time_schedule, distill_teacher_time_schedule (`str`, default `"logit_normal"`): how the student's
            start times and the teacher's interior sub-step times are drawn: ELF's logit-normal law (`time_mean`,
            `time_std`) or `"uniform"` (the official `pd_student_schedule` / `pd_teacher_schedule`). The official
            student learns every span of `1 / distill_steps`, yet samples on the logit-normal grid, whose spans
            differ. `distill_time_schedule: "sampling_grid"` trains on the sampler's grid instead (Salimans & Ho):
            the student starts on one of the `distill_steps` intervals of the exported scheduler's grid, and the
            teacher takes the `distill_teacher_steps` steps of its grid at `distill_steps * distill_teacher_steps`
            steps inside that interval (the logit-normal quantile grids nest). The teacher's schedule is not read
            then. Such a student is trained for its `distill_steps` steps only.
    """

    model_type = "latentlm_elf"

    vocab_size: int = 30522
    latent_dim: int = 384
    encoder_name_or_path: str | None = None
    latent_mean: float | None = None
    latent_std: float | None = None

    hidden_size: int = 256
    num_hidden_layers: int = 6
    num_attention_heads: int = 4
    intermediate_size: int | None = None
    bottleneck_dim: int | None = 128
    decoder_head_dim: int | None = None
    max_position_embeddings: int = 128
    condition_position_offset: int | None = None
    rope_theta: float = 10000.0
    rms_norm_eps: float = 1e-6
    hidden_dropout: float = 0.0
    num_time_tokens: int = 4
    num_guidance_tokens: int = 4
    num_mode_tokens: int = 4
    self_conditioning: bool = True
    use_long_skips: bool = False
    initializer_range: float = 0.02
    block_type: str = "default"
    hidden_act: str = "gelu"
    layer_norm_eps: float = 1e-12
    init_denoiser_from: str | None = None
    init_denoiser_fit_projections: bool = False

    noise_scale: float = 2.0
    sigma_clamp: float = 0.05
    time_mean: float = -1.5
    time_std: float = 0.8
    decoder_prob: float = 0.2
    decoder_noise_scale: float = 5.0
    decoder_time_mean: float = 0.8
    decoder_time_std: float = 0.8
    self_cond_prob: float = 0.5
    guidance_min: float = 0.5
    guidance_max: float = 5.0
    conditional: bool = False
    prompt_prob: float = 0.0
    max_prompt_fraction: float = 0.5
    condition_dropout: float = 0.1
    distill_steps: int | None = None
    distill_teacher: str | None = None
    distill_teacher_steps: int = 4
    distill_time_schedule: str = "logit_normal"
    distill_teacher_time_schedule: str = "logit_normal"

    pad_token_id: int | None = 0
    bos_token_id: int | None = None
    eos_token_id: int | None = None
    tie_word_embeddings: bool = False

    def __post_init__(self, **kwargs):
        if self.intermediate_size is None:
            self.intermediate_size = int(8 * self.hidden_size / 3)
        if self.decoder_head_dim is None:
            self.decoder_head_dim = self.latent_dim
        super().__post_init__(**kwargs)
        self._validate()

    def _validate(self):
        check_positive(
            self,
            ("vocab_size", "latent_dim", "hidden_size", "num_hidden_layers", "num_attention_heads",
             "max_position_embeddings", "num_time_tokens", "noise_scale", "decoder_noise_scale"),
        )  # fmt: skip
        check_heads_divide_hidden(self)
        check_probability(self, ("decoder_prob", "self_cond_prob"))
        check_conditioning(self)
        check_block_config(self)
        if not 0.0 < self.guidance_min <= self.guidance_max:
            raise ValueError(
                f"`guidance_min` and `guidance_max` must satisfy 0 < min <= max, got {self.guidance_min}, "
                f"{self.guidance_max}."
            )
        check_distillation(self)
        for name, allowed in (
            ("distill_time_schedule", DISTILL_STUDENT_TIME_SCHEDULES),
            ("distill_teacher_time_schedule", DISTILL_TIME_SCHEDULES),
        ):
            if getattr(self, name) not in allowed:
                raise ValueError(f"`{name}` must be one of {allowed}, got {getattr(self, name)!r}.")
        offset = self.condition_position_offset
        if offset is not None and (
            isinstance(offset, bool) or not isinstance(offset, int) or not 0 < offset < self.max_position_embeddings
        ):
            raise ValueError(
                f"`condition_position_offset` must be None or an integer in [1, max_position_embeddings - 1 = "
                f"{self.max_position_embeddings - 1}], got {offset!r}."
            )
        if offset is not None and self.block_type == "bert":
            raise ValueError(
                "`condition_position_offset` moves rotary positions; `block_type='bert'` has absolute ones."
            )
        if self.latent_std is not None and self.latent_std <= 0:
            raise ValueError(f"`latent_std` must be positive, got {self.latent_std}.")


__all__ = ["ELFConfig"]
