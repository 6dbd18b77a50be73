"""The one sampling loop of latentlm, shared by every continuous diffusion method."""

import math
import warnings
from collections.abc import Callable
from typing import Any

import torch
from diffusers import DiffusionPipeline
from diffusers.utils.torch_utils import randn_tensor

from ..hub import PushToHubMixin
from ..models.modeling_utils import TextCondition
from ..schedulers.scheduling_utils import check_generator
from .lora import LatentLMLoraLoaderMixin
from .pipeline_output import TextPipelineOutput


OUTPUT_TYPES = ("text", "seq", "latent")


class LatentDiffusionTextPipeline(PushToHubMixin, LatentLMLoraLoaderMixin, DiffusionPipeline):
    r"""Text generation by denoising continuous latents: unconditional, continuing prompts, or from sources.

    The model implements `latentlm.models.LatentDiffusionMixin` (latent shape, one denoising prediction, decoding
    latents to logits, encoding a condition); the scheduler integrates. Algorithm knobs (sampler type, gamma, time
    grid) live in the scheduler's config: swap them with
    `pipe.scheduler = FlowMatchEulerSDEScheduler.from_config(pipe.scheduler.config, gamma=0.0)`.

    A condition enters every method the same way (DESIGN.md §5): the pipeline tokenises it (no special tokens, as
    training data), `model.encode_condition` turns it into what the denoiser reads, and every step uses it.
    Classifier-free guidance (`guidance_scale != 1`) runs the conditional and unconditional halves in one batched
    forward; the unconditional half drops the condition, or reads `negative_prompt` when one is given.

    Args:
        model: the diffusion model (e.g. `ELFForFlowMatching`).
        scheduler: a scheduler with `set_timesteps(num_inference_steps, device, generator)`,
            `scale_model_input(sample, t, generator)` and `step(model_output, t, sample, generator)`.
        tokenizer: the model's tokenizer; needed for prompts, sources and `output_type="text"`.
    """

    model_cpu_offload_seq = "model"
    _optional_components = ["tokenizer"]
    _callback_tensor_inputs = ["latents", "pred_original_sample"]
    # The self-conditioning guidance a pipeline uses when `sc_guidance_scale` is not given (ELF: 3.0).
    default_sc_guidance_scale: float | None = None
    # The steps a call takes when neither it nor the scheduler's config (a distilled student's) gives them (Cosmos:
    # 200, its paper's). Read through `default_num_inference_steps`.
    _default_num_inference_steps: int = 32

    def __init__(self, model, scheduler, tokenizer=None):
        super().__init__()
        self.register_modules(model=model, scheduler=scheduler, tokenizer=tokenizer)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        """`DiffusionPipeline.from_pretrained`, in float32 unless `dtype` says otherwise (weights may be stored in
        float16 to keep checkpoints small; diffusers' rule is float32 on CPU unless asked)."""
        if kwargs.get("dtype") is None and kwargs.get("torch_dtype") is None:
            kwargs["dtype"] = torch.float32
        return super().from_pretrained(pretrained_model_name_or_path, **kwargs)

    @classmethod
    def from_model(cls, model, tokenizer=None, scheduler=None):
        """Builds the pipeline around a trained model, with the scheduler matching its training path by default."""
        return cls(model=model, scheduler=scheduler or model.get_default_scheduler(), tokenizer=tokenizer)

    @property
    def interrupt(self) -> bool:
        return getattr(self, "_interrupt", False)

    @property
    def guidance_scale(self) -> float:
        """The input classifier-free guidance scale of the current call (1 = no guidance)."""
        return getattr(self, "_guidance_scale", 1.0)

    @property
    def do_classifier_free_guidance(self) -> bool:
        return getattr(self, "_do_classifier_free_guidance", False)

    @property
    def default_num_inference_steps(self) -> int:
        """The steps of a call that gives none: the scheduler's `default_num_inference_steps` (a distilled student's
        steps, saved with it), else the pipeline's own default (32; Cosmos 200)."""
        scheduler_steps = getattr(self.scheduler.config, "default_num_inference_steps", None)
        return scheduler_steps or self._default_num_inference_steps

    @property
    def num_timesteps(self) -> int:
        """Denoising steps of the current (or last) call."""
        return getattr(self, "_num_timesteps", 0)

    # ------------------------------------------------------------------------------------------------------------
    # Inputs
    # ------------------------------------------------------------------------------------------------------------

    def check_inputs(
        self,
        prompt: list[str] | None,
        source: list[str] | None,
        negative_prompt: list[str] | None,
        batch_size: int,
        num_return_sequences: int,
        gen_length: int,
        num_inference_steps: int,
        guidance_scale: float,
        sc_guidance_scale: float | None,
        generator,
        latents: torch.Tensor | None,
        output_type: str,
        callback_on_step_end,
        callback_on_step_end_tensor_inputs: list[str],
    ) -> None:
        """Raises `ValueError` naming the first argument that is not what the pipeline expects.

        `prompt`, `source` and `negative_prompt` arrive as lists (see `_text_list`), `batch_size` and `gen_length`
        resolved.
        """
        for name, value in (
            ("batch_size", batch_size),
            ("num_return_sequences", num_return_sequences),
            ("gen_length", gen_length),
            ("num_inference_steps", num_inference_steps),
        ):
            _check_positive_int(name, value)
        if gen_length > self.model.max_gen_length:
            raise ValueError(
                f"`gen_length` ({gen_length}) is longer than the model supports ({self.model.max_gen_length})."
            )
        if prompt is not None and source is not None:
            raise ValueError("Give `prompt` (text to continue) or `source` (text to transform), not both.")
        condition = prompt if prompt is not None else source
        if condition is not None:
            if not self.model.is_conditional:
                name = "prompt" if prompt is not None else "source"
                raise ValueError(
                    f"`{name}` needs a model trained with conditions, but {type(self.model).__name__} was trained "
                    "unconditionally (`config.conditional` is False): train it with `prompt_prob > 0` (prompt "
                    "continuation) or on paired data (`source_column`)."
                )
            if self.tokenizer is None:
                raise ValueError("`prompt` and `source` need the pipeline's tokenizer, and it has none.")
        _check_number("guidance_scale", guidance_scale, minimum=0.0)
        if guidance_scale != 1.0 and condition is None:
            hint = (
                " The model's learned self-conditioning guidance is `sc_guidance_scale`."
                if self.default_sc_guidance_scale is not None
                else ""
            )
            raise ValueError(
                f"`guidance_scale` ({guidance_scale}) is classifier-free guidance on a `prompt` or `source`, and none "
                f"was given.{hint}"
            )
        if negative_prompt is not None:
            if condition is None:
                raise ValueError("`negative_prompt` needs a `prompt` or `source` to guide away from.")
            if len(negative_prompt) not in (1, len(condition)):
                raise ValueError(
                    f"`negative_prompt` has {len(negative_prompt)} texts; give one, or one per prompt/source "
                    f"({len(condition)})."
                )
        if sc_guidance_scale is not None:
            _check_number("sc_guidance_scale", sc_guidance_scale, minimum=0.0)
            low, high = (getattr(self.model.config, name, None) for name in ("guidance_min", "guidance_max"))
            if low is not None and high is not None and not low <= sc_guidance_scale <= high:
                warnings.warn(
                    f"`sc_guidance_scale={sc_guidance_scale}` is outside the range the model was trained on "
                    f"[{low}, {high}].",
                    stacklevel=3,
                )
        if output_type not in OUTPUT_TYPES:
            raise ValueError(f"`output_type` must be one of {OUTPUT_TYPES}, got {output_type!r}.")
        if output_type == "text":
            if self.tokenizer is None:
                raise ValueError("`output_type='text'` needs a tokenizer; use `output_type='seq'` or add one.")
            if len(self.tokenizer) != self.model.config.vocab_size:
                raise ValueError(
                    f"`tokenizer` has {len(self.tokenizer)} tokens but the model's vocabulary has "
                    f"{self.model.config.vocab_size}: it is not the tokenizer the model was trained with."
                )
        check_generator(generator)
        if isinstance(generator, list) and len(generator) != batch_size:
            raise ValueError(
                f"`generator` is a list of {len(generator)} generators but {batch_size} sequences are generated."
            )
        if latents is not None:
            expected = (batch_size, *self.model.latent_shape(gen_length))
            if not isinstance(latents, torch.Tensor) or tuple(latents.shape) != expected:
                shape = tuple(latents.shape) if isinstance(latents, torch.Tensor) else type(latents).__name__
                raise ValueError(f"`latents` must be a tensor of shape {expected}, got {shape}.")
            if not torch.isfinite(latents).all():
                raise ValueError("`latents` hold NaN or infinite values.")
        if callback_on_step_end is not None and not callable(callback_on_step_end):
            raise ValueError(f"`callback_on_step_end` must be callable, got {type(callback_on_step_end).__name__}.")
        unknown = set(callback_on_step_end_tensor_inputs) - set(self._callback_tensor_inputs)
        if unknown:
            raise ValueError(
                f"`callback_on_step_end_tensor_inputs` may only name {self._callback_tensor_inputs}, got {sorted(unknown)}."
            )

    def resolve_gen_length(self, gen_length, max_new_tokens, latents) -> int | None:
        """Tokens to generate: `max_new_tokens` and `gen_length` are one thing under two names (transformers' and
        ours); from `latents` when their shape depends on the length; else `None` (the model's longest)."""
        for name, value in (("gen_length", gen_length), ("max_new_tokens", max_new_tokens)):
            if value is not None:
                _check_positive_int(name, value)
        if gen_length is not None and max_new_tokens is not None and gen_length != max_new_tokens:
            raise ValueError(
                f"`gen_length` ({gen_length}) and `max_new_tokens` ({max_new_tokens}) name the same length; give one."
            )
        length = gen_length if gen_length is not None else max_new_tokens
        if length is None and isinstance(latents, torch.Tensor) and latents.ndim >= 2:
            shape = self.model.latent_shape
            if tuple(shape(1)) != tuple(shape(2)):  # the latent sequence is the token sequence (ELF)
                length = latents.shape[1]
        return length

    def tokenize(self, texts: list[str], name: str) -> tuple[torch.LongTensor, torch.LongTensor]:
        """Right-padded token ids and mask `(len(texts), longest)` of `texts`, without special tokens (as the
        training data)."""
        encoded = self.tokenizer(
            texts, add_special_tokens=False, padding="longest", return_tensors="pt", padding_side="right"
        )
        for i, length in enumerate(encoded["attention_mask"].sum(dim=1).tolist()):
            if length == 0:
                raise ValueError(f"`{name}` [{i}] {texts[i]!r} has no tokens.")
        return encoded["input_ids"], encoded["attention_mask"]

    def fit_condition(self, ids, mask, name: str, gen_length: int) -> tuple[torch.LongTensor, torch.LongTensor]:
        """Checks that the tokenised condition fits beside `gen_length` generated tokens: sources (and negative
        prompts) are truncated to what the model reads, a prompt that does not fit raises."""
        max_length = self.model.max_condition_length(gen_length)
        if max_length < 1:
            raise ValueError(
                f"`max_new_tokens` ({gen_length}) leaves no room for a `{name}` in the model's "
                f"{self.model.max_gen_length} positions."
            )
        lengths = mask.sum(dim=1)
        if name == "prompt" and int(lengths.max()) > max_length:
            i = int(lengths.argmax())
            raise ValueError(
                f"`prompt` [{i}] has {int(lengths[i])} tokens, but with {gen_length} tokens to generate the model "
                f"reads at most {max_length}: shorten it or lower `max_new_tokens`."
            )
        return ids[:, :max_length], mask[:, :max_length]

    def encode_condition(self, ids, mask, negative_texts, num_return_sequences, gen_length, device):
        """`(condition, unconditional)`: what the model reads for the conditional half and, with classifier-free
        guidance, the unconditional half (the condition dropped, or the negative prompt), one row per sample."""
        condition = self.model.encode_condition(ids.to(device), mask.to(device))
        unconditional = None
        if self.do_classifier_free_guidance:
            if negative_texts is None:
                unconditional = condition.dropped()
            else:
                if len(negative_texts) == 1:
                    negative_texts = negative_texts * len(ids)
                neg_ids, neg_mask = self.tokenize(negative_texts, "negative_prompt")
                neg_ids, neg_mask = self.fit_condition(neg_ids, neg_mask, "negative_prompt", gen_length)
                unconditional = self.model.encode_condition(neg_ids.to(device), neg_mask.to(device))
            unconditional = unconditional.repeat_interleave(num_return_sequences)
        return condition.repeat_interleave(num_return_sequences), unconditional

    def prepare_latents(self, batch_size, gen_length, dtype, device, generator, latents=None) -> torch.Tensor:
        """Pure noise `(batch_size, *latent_shape)` scaled by `scheduler.init_noise_sigma`, or the given latents."""
        if latents is not None:
            return latents.to(device=device, dtype=dtype)
        shape = (batch_size, *self.model.latent_shape(gen_length))
        noise_sigma = getattr(self.scheduler, "init_noise_sigma", 1.0)
        return randn_tensor(shape, generator=generator, device=device, dtype=dtype) * noise_sigma

    # ------------------------------------------------------------------------------------------------------------
    # Denoising and outputs
    # ------------------------------------------------------------------------------------------------------------

    def enable_batch_slicing(self, slice_size: int = 16) -> None:
        """Runs the model on at most `slice_size` sequences at a time: the denoiser at every step (both halves of a
        classifier-free-guidance batch included) and the final decode. Samples are the same as without slicing.

        On CPUs it can make large batches faster: each forward's activations stay small enough (tens of MB) for
        the memory allocator to reuse them, where a whole batch-64 forward asks the OS for fresh pages every time
        (glibc maps every block over 32 MB anew). Measured on a 2-core CPU (`benchmarks/speed-cpu`): 32 ELF steps
        at batch 64 are 1.17-1.19x faster in slices of 16; Cosmos, whose denoiser sees 16 latents per sequence,
        gains nothing beyond run-to-run noise. On GPUs it lowers peak memory at some cost in speed.
        """
        _check_positive_int("slice_size", slice_size)
        self._batch_slice_size = slice_size

    def disable_batch_slicing(self) -> None:
        """Runs the model on the whole batch at once again (the default)."""
        self._batch_slice_size = None

    def _in_slices(self, call, latents, self_condition=None, condition=None) -> torch.Tensor:
        """`call(latents, self_condition, condition)` on at most `enable_batch_slicing`'s rows at a time."""
        size = getattr(self, "_batch_slice_size", None)
        if size is None or latents.shape[0] <= size:
            return call(latents, self_condition, condition)
        outputs = []
        for start in range(0, latents.shape[0], size):
            rows = slice(start, start + size)
            outputs.append(
                call(
                    latents[rows],
                    None if self_condition is None else self_condition[rows],
                    None if condition is None else condition[rows],
                )
            )
        return torch.cat(outputs)

    def predict_original_sample(self, latents, t, self_condition, sc_guidance_scale, condition, unconditional):
        """The model's x0 prediction; with classifier-free guidance, `u + w (c - u)` from one batched forward (or
        its slices, `enable_batch_slicing`)."""

        def denoise(latents, self_condition, condition):
            return self.model.denoise(
                latents, t, self_condition=self_condition, sc_guidance_scale=sc_guidance_scale, condition=condition
            )

        if not self.do_classifier_free_guidance:
            return self._in_slices(denoise, latents, self_condition, condition)
        both = self._in_slices(
            denoise,
            torch.cat([latents, latents]),
            None if self_condition is None else torch.cat([self_condition, self_condition]),
            TextCondition.cat([condition, unconditional]),
        )
        conditional, unconditional_pred = both.chunk(2)
        return unconditional_pred + self.guidance_scale * (conditional - unconditional_pred)

    def decode_to_ids(self, latents, sc_guidance_scale, condition) -> torch.LongTensor:
        """Greedy token ids `(batch, length)` of clean latents (`model.decode_latents_to_ids`)."""

        def decode(latents, _, condition):
            return self.model.decode_latents_to_ids(latents, sc_guidance_scale=sc_guidance_scale, condition=condition)

        return self._in_slices(decode, latents, condition=condition)

    def cut_at_eos(self, sequences: torch.LongTensor) -> torch.LongTensor:
        """Replaces the first end-of-sequence token and everything after it with the pad id."""
        eos, pad = self.model.config.eos_token_id, self.model.config.pad_token_id
        if eos is None:
            return sequences
        after_eos = (sequences == eos).long().cumsum(dim=1) > 0
        return sequences.masked_fill(after_eos, pad if pad is not None else eos)

    def with_prompts(self, generated, prompt_ids, prompt_mask, num_return_sequences) -> torch.LongTensor:
        """`(batch, prompt_len + gen_length)`: each prompt's real tokens, unchanged, then its generated tokens;
        rows of shorter prompts are right-padded with the pad id."""
        pad = self.model.config.pad_token_id or 0
        rows = []
        for i, row in enumerate(generated):
            prompt = prompt_ids[i // num_return_sequences][prompt_mask[i // num_return_sequences].bool()]
            rows.append(torch.cat([prompt.to(row.device), row]))
        width = max(len(row) for row in rows)
        return torch.stack([torch.nn.functional.pad(row, (0, width - len(row)), value=pad) for row in rows])

    def decode_to_text(self, sequences: torch.LongTensor, prompt_lengths: list[int] | None = None) -> list[str]:
        """Strings of `sequences` up to their first end-of-sequence token. With `prompt_lengths`, each text starts
        with its prompt exactly as the tokenizer round-trips it."""
        eos = self.model.config.eos_token_id
        texts = []
        for i, row in enumerate(sequences.tolist()):
            start = 0 if prompt_lengths is None else prompt_lengths[i]
            generated = row[start:]
            generated = generated[: generated.index(eos)] if eos is not None and eos in generated else generated
            text = self.tokenizer.decode(row[:start] + generated, skip_special_tokens=True).strip()
            if start:
                prompt = self.tokenizer.decode(row[:start], skip_special_tokens=True).strip()
                if not text.startswith(prompt):  # the round trip merged across the boundary: keep the prompt intact
                    text = f"{prompt} {self.tokenizer.decode(generated, skip_special_tokens=True).strip()}".strip()
            texts.append(text)
        return texts

    @torch.no_grad()
    def __call__(
        self,
        prompt: str | list[str] | None = None,
        source: str | list[str] | None = None,
        negative_prompt: str | list[str] | None = None,
        batch_size: int | None = None,
        num_return_sequences: int = 1,
        max_new_tokens: int | None = None,
        gen_length: int | None = None,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = 1.0,
        sc_guidance_scale: float | None = None,
        generator: torch.Generator | list[torch.Generator] | None = None,
        latents: torch.Tensor | None = None,
        output_type: str = "text",
        return_dict: bool = True,
        callback_on_step_end: Callable[[Any, int, torch.Tensor, dict], dict] | None = None,
        callback_on_step_end_tensor_inputs: list[str] | None = None,
    ) -> TextPipelineOutput | tuple:
        r"""Generates text: unconditionally, as continuations of `prompt`, or as targets for `source`.

        Args:
            prompt: text(s) to continue (models trained with prompt continuation). Each output text and sequence
                starts with its prompt's tokens, unchanged.
            source: text(s) to transform (models trained on paired data, e.g. article -> headline); outputs are the
                generated targets only. Sources longer than the model reads are truncated.
            negative_prompt: the condition of the unconditional half of classifier-free guidance (one text, or one
                per prompt/source); by default that half has no condition.
            batch_size: number of unconditional samples (default: one per row of `latents`, else 1); with prompts
                or sources the batch is one row per text and return sequence.
            num_return_sequences: samples per prompt or source (or per unconditional row).
            max_new_tokens, gen_length: tokens to generate (two names of one length: transformers' and ours). By
                default the model's longest, less the prompt for models that read it in the same sequence (ELF).
            num_inference_steps: denoising steps (model evaluations before the final decode; twice the batch with
                classifier-free guidance). Default: `default_num_inference_steps` (a distilled student's steps, else
                32; Cosmos 200).
            guidance_scale: classifier-free guidance on the prompt or source, `u + w (c - u)` on the x0 prediction;
                1 turns it off and is the only value allowed without a condition.
            sc_guidance_scale: a guidance scale the model learned to take as input: ELF's self-conditioning guidance
                (SC-CFG omega, 1 = none, default 3.0); costs no extra forward pass. Ignored by models without one.
            generator: a `torch.Generator` (or one per sample) for reproducible noise and time grids.
            latents: start from these noisy latents `(batch, *latent_shape)` instead of fresh noise.
            output_type: `"text"` (strings and ids), `"seq"` (ids) or `"latent"` (clean latents, no decoding).
            return_dict: return a `TextPipelineOutput` (else a tuple of its non-`None` fields).
            callback_on_step_end: `fn(pipe, step, timestep, callback_kwargs) -> dict` after every step; the dict may
                replace the tensors named in `callback_on_step_end_tensor_inputs`.
            callback_on_step_end_tensor_inputs: names from `_callback_tensor_inputs` passed to the callback.

        Returns:
            `TextPipelineOutput` (`sequences`, `texts`, `latents`), or a tuple of its non-`None` fields.
        """
        callback_on_step_end_tensor_inputs = callback_on_step_end_tensor_inputs or ["latents"]
        prompt, source = _text_list("prompt", prompt), _text_list("source", source)
        negative_prompt = _text_list("negative_prompt", negative_prompt)
        condition_texts = prompt if prompt is not None else source
        gen_length = self.resolve_gen_length(gen_length, max_new_tokens, latents)
        _check_positive_int("num_return_sequences", num_return_sequences)
        if condition_texts is not None and batch_size is not None and batch_size != len(condition_texts):
            raise ValueError(
                f"`batch_size` ({batch_size}) must be left out or equal the number of prompts/sources "
                f"({len(condition_texts)})."
            )
        if condition_texts is not None:
            batch_size = len(condition_texts)
        elif batch_size is None:  # as many samples as latents were given, else one
            batch_size = max(latents.shape[0] // num_return_sequences, 1) if isinstance(latents, torch.Tensor) else 1
        _check_positive_int("batch_size", batch_size)
        total = batch_size * num_return_sequences
        if sc_guidance_scale is None:
            sc_guidance_scale = self.default_sc_guidance_scale
        if num_inference_steps is None:
            num_inference_steps = self.default_num_inference_steps
        if guidance_scale is None:
            guidance_scale = 1.0

        # 1. Check inputs (a condition's length is checked once it is tokenised)
        self.check_inputs(
            prompt,
            source,
            negative_prompt,
            total,
            num_return_sequences,
            gen_length or self.model.max_gen_length,
            num_inference_steps,
            guidance_scale,
            sc_guidance_scale,
            generator,
            latents,
            output_type,
            callback_on_step_end,
            callback_on_step_end_tensor_inputs,
        )
        self._interrupt = False
        self._guidance_scale = float(guidance_scale)
        self._do_classifier_free_guidance = condition_texts is not None and guidance_scale != 1.0
        device, dtype = self._execution_device, self.model.dtype

        # 2. Encode the condition; by default it takes its room out of the generated length (ELF)
        condition = unconditional = prompt_ids = prompt_mask = None
        if condition_texts is not None:
            name = "prompt" if prompt is not None else "source"
            ids, mask = self.tokenize(condition_texts, name)
            if gen_length is None:
                gen_length = self.model.default_gen_length(int(mask.sum(dim=1).max()))
            ids, mask = self.fit_condition(ids, mask, name, gen_length)
            condition, unconditional = self.encode_condition(
                ids, mask, negative_prompt, num_return_sequences, gen_length, device
            )
            if prompt is not None:
                prompt_ids, prompt_mask = ids, mask
        elif gen_length is None:
            gen_length = self.model.max_gen_length

        # 3. Prepare latents (pure noise at sigma = 1)
        latents = self.prepare_latents(total, gen_length, dtype, device, generator, latents)

        # 4. Prepare timesteps
        first_generator = generator[0] if isinstance(generator, list) else generator
        self.scheduler.set_timesteps(num_inference_steps, device=device, generator=first_generator)
        timesteps = self.scheduler.timesteps
        self._num_timesteps = len(timesteps)

        # 5. Denoising loop
        pred_original_sample = None
        with self.progress_bar(total=len(timesteps)) as progress_bar:
            for i, t in enumerate(timesteps):
                if self.interrupt:
                    continue
                model_input = self.scheduler.scale_model_input(latents, t, generator=generator)
                pred_original_sample = self.predict_original_sample(
                    model_input, t, pred_original_sample, sc_guidance_scale, condition, unconditional
                )
                latents = self.scheduler.step(
                    pred_original_sample, t, model_input, generator=generator, return_dict=False
                )[0]

                if callback_on_step_end is not None:
                    step_tensors = {"latents": latents, "pred_original_sample": pred_original_sample}
                    callback_kwargs = {name: step_tensors[name] for name in callback_on_step_end_tensor_inputs}
                    callback_outputs = callback_on_step_end(self, i, t, callback_kwargs)
                    if not isinstance(callback_outputs, dict):
                        raise ValueError(
                            "`callback_on_step_end` must return a dict (of the tensors it replaces), got "
                            f"{type(callback_outputs).__name__}."
                        )
                    latents = callback_outputs.pop("latents", latents)
                    pred_original_sample = callback_outputs.pop("pred_original_sample", pred_original_sample)
                progress_bar.update()

        # 6. Decode latents to tokens, cut at the first end-of-sequence; prompts go in front unchanged
        sequences = texts = None
        if output_type != "latent":
            # A codec may decode a fixed length (Cosmos: the autoencoder's L); the text is its first tokens.
            ids = self.decode_to_ids(latents, sc_guidance_scale, condition)
            sequences = self.cut_at_eos(ids[:, :gen_length])
            prompt_lengths = None
            if prompt_ids is not None:
                sequences = self.with_prompts(sequences, prompt_ids, prompt_mask, num_return_sequences)
                prompt_lengths = prompt_mask.sum(dim=1).repeat_interleave(num_return_sequences).tolist()
            if output_type == "text":
                texts = self.decode_to_text(sequences, prompt_lengths)

        self.maybe_free_model_hooks()
        output = TextPipelineOutput(sequences=sequences, texts=texts, latents=latents)
        return output if return_dict else output.to_tuple()


def _text_list(name: str, value) -> list[str] | None:
    """`None`, a string or a list of strings -> `None` or a non-empty list of non-empty strings."""
    if value is None:
        return None
    texts = [value] if isinstance(value, str) else value
    if not isinstance(texts, (list, tuple)) or not texts or not all(isinstance(t, str) for t in texts):
        raise ValueError(f"`{name}` must be a string or a non-empty list of strings, got {value!r}.")
    for i, text in enumerate(texts):
        if not text.strip():
            raise ValueError(f"`{name}` [{i}] is empty.")
    return list(texts)


def _check_positive_int(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")


def _check_number(name: str, value, minimum: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < minimum:
        raise ValueError(f"`{name}` must be a finite number >= {minimum:g}, got {value!r}.")
