"""Few-step students by progressive distillation (Salimans & Ho 2022; ELF's official `distillation` branch), shared by
every method whose sampler has a deterministic step (`method: elf-distill`, `method: cosmos-distill`).

A student with its teacher's architecture, initialised from it (``init_from``), learns to cover a span of time in ONE
step of the sampler where the frozen teacher takes ``distill_teacher_steps`` sub-steps of the same sampler. Every such
step is affine in the latent and the x0 prediction, ``z_next = a z + b x0_hat`` (the scheduler's
`ode_step_coefficients`), so the target is the prediction whose single step from the student's start lands where the
teacher landed::

    x_target = (z_end - a z_start) / b            (a, b: the coefficients of the whole span)

What the methods share lives here: that target, and the student's frozen teacher (attached for training only, never
a submodule, so never saved nor optimised) and its export as the plain model class. The method files hold how times
are drawn, which inputs the denoiser reads and the loss (`models/elf/distillation_elf.py`,
`models/cosmos_lm/distillation_cosmos_lm.py`).
"""

from collections.abc import Callable

import torch


# Official fallback (ELF): a span this short gives the teacher's last prediction instead of the ill-conditioned inversion.
MIN_SPAN = 1e-3


@torch.no_grad()
def progressive_distillation_target(
    denoise: Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor],
    sample: torch.Tensor,
    times: torch.Tensor,
    self_condition: torch.Tensor | None,
    scheduler,
) -> torch.Tensor:
    """The student's x0 target: the prediction whose single step lands where the teacher's sub-steps landed.

    The teacher steps from ``times[:, 0]`` through every column of `times` with the scheduler's deterministic step
    (`scheduler.ode_step_coefficients`), reading as self-conditioning `self_condition` on its first sub-step and its
    own previous prediction after, as the sampler threads it. One sub-step returns the teacher's prediction itself (the
    same value without the round trip), as does a span under `MIN_SPAN`.

    Args:
        denoise: ``denoise(z, t, self_condition) -> x0`` of the teacher; `t` is `(batch,)`.
        sample: `(batch, ...)` the noisy latent ``z_start`` at ``times[:, 0]``.
        times: `(batch, K + 1)` the K sub-steps' times, decreasing (the scheduler's time: sigma for ELF, t for Cosmos;
            1 = noise).
        self_condition: `(batch, ...)` or None, the first sub-step's self-conditioning input.
        scheduler: a scheduler with `ode_step_coefficients(t, t_next) -> (a, b)`, `(batch,)` each.

    Returns:
        `(batch, ...)` float32 targets.
    """
    start = sample.float()
    z, prediction = start, None
    for k in range(times.shape[1] - 1):
        prediction = denoise(z, times[:, k], self_condition).float()
        a, b = _per_row(scheduler.ode_step_coefficients(times[:, k].float(), times[:, k + 1].float()), z)
        z = a * z + b * prediction
        self_condition = prediction
    if times.shape[1] == 2:
        return prediction
    a, b = _per_row(scheduler.ode_step_coefficients(times[:, 0].float(), times[:, -1].float()), z)
    short = _per_row(((times[:, 0] - times[:, -1]) < MIN_SPAN,), z)[0]
    target = (z - a * start) / torch.where(short, torch.ones_like(b), b)
    return torch.where(short, prediction, target)


def _per_row(values: tuple[torch.Tensor, ...], like: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """`(batch,)` tensors reshaped to broadcast over `like`'s trailing dimensions, in its dtype (booleans kept)."""
    trailing = [1] * (like.ndim - 1)
    return tuple(
        v.reshape(-1, *trailing).to(like.device, like.dtype if v.is_floating_point() else v.dtype) for v in values
    )


class DistillationMixin:
    """The teacher and the export of a distillation head (`ELFForDistillation`, `CosmosLMForDistillation`).

    The head subclasses the method's plain model class (`export_class`) and reads its settings from the config:
    ``distill_steps`` (the student's sampling steps), ``distill_teacher`` (a pipeline or model folder, a Hub id or
    ``pretrained:<name>``) and ``distill_teacher_steps`` (the teacher's sub-steps per student step).
    """

    # The plain model class the student is saved as (and the teacher is loaded as).
    export_class: type
    # Config values the teacher must share with the student: it denoises the student's latents on the same process.
    teacher_matching_keys: tuple[str, ...] = ()

    @property
    def teacher(self):
        return self.__dict__.get("_teacher")

    def set_teacher(self, teacher) -> None:
        """Attaches a frozen teacher; it must read the student's latents (`teacher_matching_keys`)."""
        mine, theirs = self.config, teacher.config
        for name in self.teacher_matching_keys:
            if getattr(theirs, name) != getattr(mine, name):
                raise ValueError(
                    f"The teacher's `{name}` ({getattr(theirs, name)}) differs from the student's "
                    f"({getattr(mine, name)}): a student must denoise the teacher's latents. Start it from the teacher "
                    "(`init_from`)."
                )
        teacher.eval().requires_grad_(False)
        self.__dict__["_teacher"] = teacher

    def load_teacher(self):
        """Loads `config.distill_teacher` (a folder, a Hub id or `pretrained:<name>`) unless a teacher is attached."""
        if self.teacher is None:
            if self.config.distill_teacher is None:
                raise ValueError("`distill_teacher` is not set: name the model to distil (e.g. `model: "
                                 "{distill_teacher: pretrained:elf-tiny-prose}`).")  # fmt: skip
            from ..training.sources import resolve_init_from

            source = resolve_init_from(self.config.distill_teacher)
            self.set_teacher(self.export_class.from_pretrained(source.model_dir, dtype=torch.float32))
        return self.teacher

    def check_distillation_settings(self) -> None:
        """Refuses a run without `distill_steps`, or with conditions (distillation is unconditional)."""
        if self.config.distill_steps is None:
            raise ValueError("`distill_steps` is not set: the number of sampling steps to distil the student to.")
        if self.config.conditional:
            raise ValueError("Distillation makes unconditional students; this model is conditional.")

    def model_for_export(self):
        """The student as the plain model class (what the training loop saves)."""
        student = self.export_class(self.config.__class__.from_dict(self.config.to_dict()))
        student.load_state_dict(self.state_dict())
        return student.to(device=self.device, dtype=self.dtype)


__all__ = ["DistillationMixin", "progressive_distillation_target"]
