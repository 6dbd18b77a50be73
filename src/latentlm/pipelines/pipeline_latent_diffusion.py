"""The one sampling loop of latentlm, shared by every continuous diffusion method."""

from collections.abc import Callable
from typing import Any

import torch
from diffusers import DiffusionPipeline
from diffusers.utils.torch_utils import randn_tensor

from ..hub import PushToHubMixin
from .lora import LatentLMLoraLoaderMixin
from .pipeline_output import TextPipelineOutput


OUTPUT_TYPES = ("text", "seq", "latent")


class LatentDiffusionTextPipeline(PushToHubMixin, LatentLMLoraLoaderMixin, DiffusionPipeline):
    r"""Unconditional text generation by denoising continuous latents.

    The model implements `latentlm.models.LatentDiffusionMixin` (latent shape, one denoising prediction, decoding
    latents to logits); the scheduler integrates. Algorithm knobs (sampler type, gamma, time grid) live in the
    scheduler's config: swap them with
    `pipe.scheduler = FlowMatchEulerSDEScheduler.from_config(pipe.scheduler.config, gamma=0.0)`.

    Args:
        model: the diffusion model (e.g. `ELFForFlowMatching`).
        scheduler: a scheduler with `set_timesteps(num_inference_steps, device, generator)`,
            `scale_model_input(sample, t, generator)` and `step(model_output, t, sample, generator)`.
        tokenizer: the model's tokenizer; needed for `output_type="text"` only.
    """

    model_cpu_offload_seq = "model"
    _optional_components = ["tokenizer"]
    _callback_tensor_inputs = ["latents", "pred_original_sample"]

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

    def check_inputs(
        self,
        batch_size: int,
        gen_length: int,
        num_inference_steps: int,
        guidance_scale: float | None,
        generator,
        latents: torch.Tensor | None,
        output_type: str,
        callback_on_step_end_tensor_inputs: list[str],
    ) -> None:
        """Raises `ValueError` naming the first argument that is not what the pipeline expects."""
        for name, value in (
            ("batch_size", batch_size),
            ("gen_length", gen_length),
            ("num_inference_steps", num_inference_steps),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")
        if gen_length > self.model.max_gen_length:
            raise ValueError(
                f"`gen_length` ({gen_length}) is longer than the model supports ({self.model.max_gen_length})."
            )
        if guidance_scale is not None and (
            isinstance(guidance_scale, bool) or not isinstance(guidance_scale, (int, float)) or guidance_scale < 0
        ):
            raise ValueError(f"`guidance_scale` must be a non-negative number or None, got {guidance_scale!r}.")
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
        if isinstance(generator, list) and len(generator) != batch_size:
            raise ValueError(f"`generator` is a list of {len(generator)} generators but `batch_size` is {batch_size}.")
        if latents is not None:
            expected = (batch_size, *self.model.latent_shape(gen_length))
            if not isinstance(latents, torch.Tensor) or tuple(latents.shape) != expected:
                shape = tuple(latents.shape) if isinstance(latents, torch.Tensor) else type(latents).__name__
                raise ValueError(f"`latents` must be a tensor of shape {expected}, got {shape}.")
        unknown = set(callback_on_step_end_tensor_inputs) - set(self._callback_tensor_inputs)
        if unknown:
            raise ValueError(
                f"`callback_on_step_end_tensor_inputs` may only name {self._callback_tensor_inputs}, got {sorted(unknown)}."
            )

    def prepare_latents(self, batch_size, gen_length, dtype, device, generator, latents=None) -> torch.Tensor:
        """Pure noise `(batch_size, *latent_shape)` scaled by `scheduler.init_noise_sigma`, or the given latents."""
        if latents is not None:
            return latents.to(device=device, dtype=dtype)
        shape = (batch_size, *self.model.latent_shape(gen_length))
        return randn_tensor(shape, generator=generator, device=device, dtype=dtype) * self.scheduler.init_noise_sigma

    def cut_at_eos(self, sequences: torch.LongTensor) -> torch.LongTensor:
        """Replaces the first end-of-sequence token and everything after it with the pad id."""
        eos, pad = self.model.config.eos_token_id, self.model.config.pad_token_id
        if eos is None:
            return sequences
        after_eos = (sequences == eos).long().cumsum(dim=1) > 0
        return sequences.masked_fill(after_eos, pad if pad is not None else eos)

    def decode_to_text(self, sequences: torch.LongTensor) -> list[str]:
        eos = self.model.config.eos_token_id
        texts = []
        for row in sequences.tolist():
            tokens = row[: row.index(eos)] if eos is not None and eos in row else row
            texts.append(self.tokenizer.decode(tokens, skip_special_tokens=True).strip())
        return texts

    @torch.no_grad()
    def __call__(
        self,
        batch_size: int = 1,
        gen_length: int | None = None,
        num_inference_steps: int = 32,
        guidance_scale: float | None = None,
        generator: torch.Generator | list[torch.Generator] | None = None,
        latents: torch.Tensor | None = None,
        output_type: str = "text",
        return_dict: bool = True,
        callback_on_step_end: Callable[[Any, int, torch.Tensor, dict], dict] | None = None,
        callback_on_step_end_tensor_inputs: list[str] | None = None,
    ) -> TextPipelineOutput | tuple:
        r"""Generates `batch_size` texts of `gen_length` tokens.

        Args:
            batch_size: number of samples.
            gen_length: tokens per sample; defaults to the model's longest (`max_position_embeddings`).
            num_inference_steps: denoising steps (model evaluations before the final decode).
            guidance_scale: the model's learned guidance scale (ELF: self-conditioning CFG omega; 1 = none).
            generator: a `torch.Generator` (or one per sample) for reproducible noise and time grids.
            latents: start from these noisy latents `(batch_size, *latent_shape)` instead of fresh noise.
            output_type: `"text"` (strings and ids), `"seq"` (ids) or `"latent"` (clean latents, no decoding).
            return_dict: return a `TextPipelineOutput` (else a tuple of its non-`None` fields).
            callback_on_step_end: `fn(pipe, step, timestep, callback_kwargs) -> dict` after every step; the dict may
                replace the tensors named in `callback_on_step_end_tensor_inputs`.
            callback_on_step_end_tensor_inputs: names from `_callback_tensor_inputs` passed to the callback.
        """
        callback_on_step_end_tensor_inputs = callback_on_step_end_tensor_inputs or ["latents"]
        if gen_length is None:
            gen_length = latents.shape[1] if isinstance(latents, torch.Tensor) else self.model.max_gen_length

        # 1. Check inputs
        self.check_inputs(
            batch_size,
            gen_length,
            num_inference_steps,
            guidance_scale,
            generator,
            latents,
            output_type,
            callback_on_step_end_tensor_inputs,
        )
        self._interrupt = False
        device, dtype = self._execution_device, self.model.dtype

        # 2. Prepare latents (pure noise at sigma = 1)
        latents = self.prepare_latents(batch_size, gen_length, dtype, device, generator, latents)

        # 3. Prepare timesteps (the grid may be random: it draws from the first generator)
        first_generator = generator[0] if isinstance(generator, list) else generator
        self.scheduler.set_timesteps(num_inference_steps, device=device, generator=first_generator)
        timesteps = self.scheduler.timesteps

        # 4. Denoising loop
        pred_original_sample = None
        with self.progress_bar(total=len(timesteps)) as progress_bar:
            for i, t in enumerate(timesteps):
                if self.interrupt:
                    continue
                model_input = self.scheduler.scale_model_input(latents, t, generator=generator)
                pred_original_sample = self.model.denoise(
                    model_input, t, self_condition=pred_original_sample, guidance_scale=guidance_scale
                )
                latents = self.scheduler.step(
                    pred_original_sample, t, model_input, generator=generator, return_dict=False
                )[0]

                if callback_on_step_end is not None:
                    step_tensors = {"latents": latents, "pred_original_sample": pred_original_sample}
                    callback_kwargs = {name: step_tensors[name] for name in callback_on_step_end_tensor_inputs}
                    callback_outputs = callback_on_step_end(self, i, t, callback_kwargs)
                    latents = callback_outputs.pop("latents", latents)
                    pred_original_sample = callback_outputs.pop("pred_original_sample", pred_original_sample)
                progress_bar.update()

        # 5. Decode latents to tokens, cut at the first end-of-sequence
        sequences = texts = None
        if output_type != "latent":
            # A codec may decode a fixed length (Cosmos: the autoencoder's L); the text is its first tokens.
            logits = self.model.decode_latents(latents, guidance_scale=guidance_scale)[:, :gen_length]
            sequences = self.cut_at_eos(logits.argmax(dim=-1))
            if output_type == "text":
                texts = self.decode_to_text(sequences)

        self.maybe_free_model_hooks()
        output = TextPipelineOutput(sequences=sequences, texts=texts, latents=latents)
        return output if return_dict else output.to_tuple()
