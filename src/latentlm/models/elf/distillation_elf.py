"""Few-step ELF students by progressive distillation (the official `distillation` branch of `lillian039/ELF`).

A student with the teacher's architecture, initialised from it (``init_from``), learns to cover one of its own
steps, a span of ``1 / distill_steps`` of time, in one prediction, where the frozen teacher needs
``distill_teacher_steps`` Euler sub-steps. Per training example (official ``distill_train_step.py``, converted to
latentlm's sigma = 1 - ELF's t):

* the student's start ``t_s = u (1 - 1 / N)`` with ``u`` logit-normal (or uniform), so that the step ends inside
  the path: ``sigma_s = 1 - t_s`` in ``[1 / N, 1]``, ``sigma_end = sigma_s - 1 / N``. The exported student samples
  on the logit-normal grid, whose spans are not ``1 / N``; ``distill_time_schedule: sampling_grid`` (latentlm's
  option) trains on that grid instead: the student starts on one of its ``N`` intervals and the teacher steps on
  the grid of ``N * distill_teacher_steps`` steps (`sampling_grid_sigmas`);
* self-conditioning as at sampling: on ``self_cond_prob`` of the examples both the student and the teacher's first
  sub-step read the teacher's prediction at ``(z_s, sigma_s)`` without self-conditioning; the teacher's later
  sub-steps read its own previous prediction, as the sampler threads it;
* the learned self-conditioning guidance is distilled, not applied: each example draws a guidance scale omega (the
  training law of ELF) that both student and teacher read as their guidance input, so the student keeps omega as an
  input and samples with one forward pass per step at any scale;
* the teacher integrates from ``sigma_s`` to ``sigma_end`` on ``distill_teacher_steps`` sub-steps whose interior
  times are sorted draws of the same law placed inside the span, and the target is the x0 prediction that makes ONE
  Euler step of the student land where the teacher landed (`progressive_distillation_target`): the official
  ``x_target = z_s + sigma_s / (sigma_s - sigma_end) (z_end - z_s)`` while ``sigma_s >= sigma_clamp`` (students of
  up to 20 steps), and still exact below it, where the official formula ignores the clamp;
* loss: MSE between the student's x0 prediction and that target (mean over dimensions and real tokens of each
  example); decode rows (``decoder_prob``) keep ELF's cross-entropy; the mean over examples.

Rounds (16 -> 8 -> 4 ... steps in the official curriculum) are successive training runs: each starts from the
previous round's export (``init_from``) and is distilled from the ORIGINAL teacher (``distill_teacher``), with
``distill_steps`` halved and ``distill_teacher_steps`` doubled (their product, the teacher's resolution, constant).
"""

import math

import torch
import torch.nn.functional as F
from transformers.utils import can_return_tuple

from ...schedulers import sample_training_sigmas
from ..distillation import DistillationMixin, progressive_distillation_target
from .modeling_elf import ELFFlowMatchingOutput, ELFForFlowMatching


def sample_unit_times(shape, schedule: str, mean: float, std: float, device) -> torch.Tensor:
    """Draws ELF times ``t in (0, 1)`` (0 = noise): ``sigmoid(N(mean, std))`` or uniform; `shape` is a tuple."""
    count = math.prod(shape)
    if schedule == "uniform" or count == 0:
        return torch.rand(shape, device=device)
    return (1.0 - sample_training_sigmas(count, mean=mean, std=std, device=device)).reshape(shape)


def distillation_sigmas(
    batch: int,
    num_student_steps: int,
    num_teacher_steps: int,
    *,
    student_schedule: str = "logit_normal",
    teacher_schedule: str = "logit_normal",
    mean: float = -1.5,
    std: float = 0.8,
    device=None,
) -> torch.Tensor:
    """The teacher's sub-step grid of each example, `(batch, num_teacher_steps + 1)`, from the student's start sigma
    down to its end sigma (``1 / num_student_steps`` lower).

    Official: ``t_s = u (1 - span)``, interior ``t_s + span * sort(u')``, ``u, u'`` drawn from the schedules (ELF's
    t; here sigma = 1 - t).
    """
    span = 1.0 / num_student_steps
    t_start = sample_unit_times((batch,), student_schedule, mean, std, device) * (1.0 - span)
    interior = sample_unit_times((batch, num_teacher_steps - 1), teacher_schedule, mean, std, device)
    fractions = torch.cat(
        [torch.zeros(batch, 1, device=device), interior.sort(dim=-1).values, torch.ones(batch, 1, device=device)],
        dim=-1,
    )
    return 1.0 - (t_start[:, None] + span * fractions)


def sampling_grid_sigmas(batch: int, scheduler, num_student_steps: int, num_teacher_steps: int, device=None):
    """The teacher's sub-step grid of each example on the sampler's own grid, `(batch, num_teacher_steps + 1)`.

    Each example starts on one of the `num_student_steps` intervals of the scheduler's grid, drawn uniformly, and
    the teacher steps on the scheduler's grid at ``num_student_steps * num_teacher_steps`` steps inside it: every
    `num_teacher_steps`-th point of that finer grid is the student's grid (exactly for the logit-normal quantile
    grids, to float rounding for the uniform one). `scheduler` must have a deterministic grid (not
    ``time_grid="logit_normal_random"``); it is left set to the finer grid.
    """
    if scheduler.config.time_grid == "logit_normal_random":
        raise ValueError(
            '`distill_time_schedule="sampling_grid"` needs a deterministic sampling grid; the scheduler\'s '
            '`time_grid="logit_normal_random"` draws a new one per call.'
        )
    scheduler.set_timesteps(num_student_steps * num_teacher_steps)
    fine = scheduler.sigmas.to(device)
    interval = torch.randint(0, num_student_steps, (batch,), device=device)
    columns = interval[:, None] * num_teacher_steps + torch.arange(num_teacher_steps + 1, device=device)
    return fine[columns]


class ELFForDistillation(DistillationMixin, ELFForFlowMatching):
    """An ELF student trained to sample in `config.distill_steps` steps from a frozen ELF teacher (`method:
    elf-distill`; see the module docstring for the objective).

    The student IS an ELF model: the same config class and weights; the training loop exports it as a plain
    `ELFForFlowMatching` (`model_for_export`) in an `ELFPipeline` whose scheduler samples `distill_steps` steps by
    default. The teacher (`config.distill_teacher`) is attached for training only, like the frozen encoder: never a
    submodule, so never saved nor optimised (`DistillationMixin`).
    """

    export_class = ELFForFlowMatching
    teacher_matching_keys = ("latent_dim", "latent_mean", "latent_std", "noise_scale", "vocab_size")

    def prepare_for_training(self, dataloader, num_batches: int = 16) -> None:
        """Training-loop hook: checks the distillation settings, loads the frozen encoder and the teacher."""
        self.check_distillation_settings()
        self.load_text_encoder()
        self.load_teacher()
        if self.config.latent_std is None:  # a student built from scratch reads the teacher's latents
            self.config.latent_mean, self.config.latent_std = (
                self.teacher.config.latent_mean,
                self.teacher.config.latent_std,
            )

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
        """The distillation loss of one batch; the arguments are those of `ELFForFlowMatching.forward` (conditions
        are refused: distillation is unconditional).

        `metrics`: `distill_loss` (x0 MSE to the teacher's target on denoise rows) and `decode_loss` (cross-entropy on
        decode rows), per token.
        """
        cfg = self.config
        if condition_input_ids is not None:
            raise ValueError("`method: elf-distill` is unconditional: paired data is not supported.")
        teacher = self.load_teacher()
        x0 = self.encode_text(input_ids, attention_mask, encoder_activations) if latents is None else latents
        x0 = x0.to(self.dtype)
        labels = input_ids if labels is None else labels
        batch, seq_len, _ = x0.shape
        device = x0.device
        token_mask = labels != -100
        if attention_mask is not None:
            token_mask = token_mask & attention_mask.bool()
        token_mask = token_mask.to(x0.dtype)

        # 1. Times: the student's start and the teacher's sub-steps, per example; the noisy latent at the start.
        if cfg.distill_time_schedule == "sampling_grid":
            grid_scheduler = self.get_default_scheduler()
            sigmas = sampling_grid_sigmas(batch, grid_scheduler, cfg.distill_steps, cfg.distill_teacher_steps, device)
        else:
            sigmas = distillation_sigmas(
                batch, cfg.distill_steps, cfg.distill_teacher_steps, student_schedule=cfg.distill_time_schedule,
                teacher_schedule=cfg.distill_teacher_time_schedule, mean=cfg.time_mean, std=cfg.time_std,
                device=device,
            )  # fmt: skip
        sigmas = sigmas.to(x0.dtype)
        sigma = sigmas[:, 0]
        z = self.noise_scheduler.scale_noise(x0, sigma, torch.randn_like(x0))

        # 2. Decode rows, as in ELF's training: corrupted clean embeddings read at the data end.
        decode_rows = (torch.rand(batch, device=device) < cfg.decoder_prob).to(x0.dtype)
        keep = torch.sigmoid(
            cfg.decoder_time_mean + cfg.decoder_time_std * torch.randn(batch, seq_len, 1, device=device)
        )
        z_decode = keep * x0 + (1 - keep) * cfg.decoder_noise_scale * torch.randn_like(x0)
        rows = decode_rows[:, None, None]

        # 3. Guidance scale, self-conditioning and the teacher's target on the denoise rows (no gradients).
        omega = self._sample_guidance_scales(batch, device).to(x0.dtype) if cfg.num_guidance_tokens else None
        is_decode = decode_rows.bool()
        teacher_rows = ~is_decode
        denoise = _teacher_denoiser(
            teacher.to(device), _rows(attention_mask, teacher_rows), _rows(omega, teacher_rows)
        )
        z_rows, any_rows = z[teacher_rows], bool(teacher_rows.any())
        self_condition = rows_self_condition = None
        if cfg.self_conditioning:
            use_sc = (torch.rand(batch, device=device) < cfg.self_cond_prob).to(x0.dtype)[:, None, None]
            self_condition = torch.zeros_like(x0)
            if any_rows:
                self_condition[teacher_rows] = denoise(z_rows, sigma[teacher_rows], None).to(x0.dtype)
            self_condition = self_condition * use_sc
            rows_self_condition = self_condition[teacher_rows]
        target = torch.zeros_like(x0, dtype=torch.float32)
        if any_rows:
            target[teacher_rows] = progressive_distillation_target(
                denoise, z_rows, sigmas[teacher_rows], rows_self_condition, self.noise_scheduler
            )

        # 4. One student forward for both branches.
        out = self.model(
            rows * z_decode + (1 - rows) * z,
            (1 - decode_rows) * sigma,
            attention_mask=attention_mask,
            self_condition=self_condition,
            guidance_scale=omega,
            mode=decode_rows if cfg.num_mode_tokens else None,
        )
        distill_per_token = (out.sample.float() - target).pow(2).mean(dim=-1)

        logits = self.lm_head(out.last_hidden_state[is_decode])
        decode_labels = labels[is_decode]
        decode_per_token = F.cross_entropy(
            logits.float().flatten(0, 1),
            decode_labels.masked_fill(decode_labels == -100, 0).flatten(),
            reduction="none",
        ).view_as(decode_labels)

        # Official: each example's mean over its real tokens, then the mean over examples.
        per_example = _masked_mean(distill_per_token, token_mask).masked_scatter(
            is_decode, _masked_mean(decode_per_token, token_mask[is_decode])
        )
        loss = per_example.mean()
        metrics = {
            # The mean of no rows is NaN, which the trainer's running mean skips (as ELF's metrics).
            "distill_loss": per_example[~is_decode].mean().detach(),
            "decode_loss": per_example[is_decode].mean().detach(),
        }
        return ELFFlowMatchingOutput(loss=loss, logits=logits, metrics=metrics)


def _teacher_denoiser(teacher: ELFForFlowMatching, attention_mask, omega):
    """``denoise(z, sigma, self_condition) -> x0`` of the frozen teacher at the student's guidance scales."""

    @torch.no_grad()
    def denoise(z, sigma, self_condition):
        if not teacher.config.self_conditioning:
            self_condition = None
        guidance = omega if teacher.config.num_guidance_tokens else None
        out = teacher.model(
            z, sigma, attention_mask=attention_mask, self_condition=self_condition, guidance_scale=guidance
        )
        return out.sample

    return denoise


def _rows(tensor: torch.Tensor | None, rows: torch.Tensor) -> torch.Tensor | None:
    return None if tensor is None else tensor[rows]


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """`(batch,)` mean of `values` `(batch, seq_len)` over the tokens where `mask` is 1."""
    return (values * mask).sum(dim=-1) / mask.sum(dim=-1).clamp(min=1)


__all__ = ["ELFForDistillation", "distillation_sigmas", "sampling_grid_sigmas"]
