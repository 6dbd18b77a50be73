"""Few-step Cosmos students by progressive distillation (`method: cosmos-distill`; the shared objective is in
`models/distillation.py`).

Cosmos samples with 200 Euler–Maruyama steps and its paper has no distillation. Progressive distillation (Salimans &
Ho 2022) needs a deterministic sampler of the same process: DDIM, which the student then samples with. Per training
example, with ``N = distill_steps`` and ``K = distill_teacher_steps``:

* the student's step spans ``h = (t_max - t_min) / N`` of time, one step of the sampler's uniform grid from ``t_max``
  (1) to ``t_min``; its start is ``t_s ~ U(t_min + h, t_max)`` (Cosmos' uniform training law, kept where the step
  ends inside the sampled path), its end ``t_s - h``;
* the teacher covers the span in ``K`` equal DDIM sub-steps (the uniform grid it samples on, at resolution ``N K``);
  the target is the x0 prediction whose ONE DDIM step lands where the teacher landed;
* self-conditioning as at sampling, one coin per example (``self_cond_prob``): the student and the teacher's first
  sub-step read the teacher's prediction at ``(z_s, t_s)`` without self-conditioning (zeros on the other examples);
  the teacher's later sub-steps read its own previous prediction;
* loss: MSE between the student's x0 prediction and the target on the normalised latents (Cosmos' loss).

Rounds (25 -> 10 -> 5 -> 2 -> 1 steps in `benchmarks/cosmos-distill`) are successive runs, each from the previous
round's export (``init_from``), the teacher staying the original (``distill_teacher``).
"""

import torch
from transformers.utils import can_return_tuple

from ..distillation import DistillationMixin, progressive_distillation_target
from .modeling_cosmos_lm import CosmosLMDiffusionOutput, CosmosLMForDiffusion


def distillation_times(
    batch: int, num_student_steps: int, num_teacher_steps: int, *, t_min: float, t_max: float = 1.0, device=None
) -> torch.Tensor:
    """The teacher's sub-step grid of each example, `(batch, num_teacher_steps + 1)`: equal steps from the student's
    start time down to its end, ``(t_max - t_min) / num_student_steps`` lower (t = 1 noise)."""
    span = (t_max - t_min) / num_student_steps
    start = t_min + span + torch.rand(batch, device=device) * (t_max - t_min - span)
    fractions = torch.linspace(0.0, 1.0, num_teacher_steps + 1, device=device)
    return start[:, None] - span * fractions


class CosmosLMForDistillation(DistillationMixin, CosmosLMForDiffusion):
    """A Cosmos student trained to sample in `config.distill_steps` DDIM steps from a frozen Cosmos teacher (`method:
    cosmos-distill`; see the module docstring for the objective).

    The student IS a Cosmos denoiser on the teacher's autoencoder: the training loop exports it as a plain
    `CosmosLMForDiffusion` (`model_for_export`) in a `CosmosLMPipeline` whose scheduler samples `distill_steps` DDIM
    steps by default. The teacher (`config.distill_teacher`) is attached for training only, like the autoencoder.
    """

    export_class = CosmosLMForDiffusion
    teacher_matching_keys = ("num_latents", "latent_dim", "vocab_size", "schedule_d")

    def prepare_for_training(self, dataloader, num_batches: int = 16) -> None:
        """Training-loop hook: checks the distillation settings, loads the autoencoder and the teacher."""
        self.check_distillation_settings()
        super().prepare_for_training(dataloader, num_batches)
        self.load_teacher()

    def model_for_export(self) -> CosmosLMForDiffusion:
        """The student as a plain `CosmosLMForDiffusion`, with the autoencoder it denoises for attached."""
        student = super().model_for_export()
        student.set_autoencoder(self.get_autoencoder())
        return student

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
        """The distillation loss of one batch; the arguments are those of `CosmosLMForDiffusion.forward` (conditions
        are refused: distillation is unconditional)."""
        cfg = self.config
        self.check_distillation_settings()
        if condition_input_ids is not None:
            raise ValueError("`method: cosmos-distill` is unconditional: paired data is not supported.")
        teacher = self.load_teacher()
        if latents is None:
            latents = self.clean_latents(input_ids, attention_mask, encoder_activations)
        x0 = latents.to(self.dtype)
        batch, device = x0.shape[0], x0.device

        # 1. Times: the student's step and the teacher's sub-steps, per example; the noisy latent at the start.
        scheduler = self.noise_scheduler  # DDIM: the student's sampler (`get_default_scheduler`)
        times = distillation_times(
            batch, cfg.distill_steps, cfg.distill_teacher_steps, t_min=scheduler.config.t_min,
            t_max=scheduler.config.t_max, device=device,
        ).to(x0.dtype)  # fmt: skip
        noisy = scheduler.add_noise(x0, torch.randn(x0.shape, device=device).to(x0.dtype), times[:, 0])

        # 2. Self-conditioning and the teacher's target (no gradients).
        teacher = teacher.to(device)

        def denoise(z, t, self_condition):
            return teacher.denoise(z, t, self_condition=self_condition)

        self_condition = None
        if cfg.self_conditioning:
            use = (torch.rand(batch, device=device) < cfg.self_cond_prob).to(x0.dtype)[:, None, None]
            with torch.no_grad():
                self_condition = denoise(noisy, times[:, 0], None).to(x0.dtype) * use
        target = progressive_distillation_target(denoise, noisy, times, self_condition, scheduler)

        # 3. The student's one step.
        prediction = self.model(noisy, times[:, 0], self_condition=self_condition).sample
        loss = (prediction.float() - target).pow(2).mean()
        return CosmosLMDiffusionOutput(loss=loss, pred_original_sample=prediction)


__all__ = ["CosmosLMForDistillation", "distillation_times"]
