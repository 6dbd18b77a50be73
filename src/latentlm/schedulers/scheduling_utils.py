"""What latentlm's diffusers-style schedulers share: step-index bookkeeping, `compatibles`, argument checks."""

import importlib
import math

import torch


def check_finite(name: str, value, *, positive: bool = False, low: float | None = None, high: float | None = None):
    """Raises `ValueError` naming `name` unless `value` is a finite real number (optionally > 0 / within bounds)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"`{name}` must be a finite number, got {value!r}.")
    if positive and value <= 0:
        raise ValueError(f"`{name}` must be positive, got {value!r}.")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"`{name}` must be in [{low}, {high}], got {value!r}.")


def check_generator(generator, batch_size: int | None = None) -> None:
    """`generator` must be `None`, a `torch.Generator`, or a list of them (one per batch row when `batch_size`)."""
    if generator is None or isinstance(generator, torch.Generator):
        return
    if isinstance(generator, (list, tuple)) and all(isinstance(g, torch.Generator) for g in generator):
        if batch_size is not None and len(generator) != batch_size:
            raise ValueError(
                f"`generator` is a list of {len(generator)} generators but the batch has {batch_size} rows."
            )
        return
    raise TypeError(
        f"`generator` must be a `torch.Generator`, a list of them or None, got {type(generator).__name__}."
    )


def time_grid_from(num_inference_steps, starts, t_min: float, t_max: float) -> tuple[torch.Tensor, int]:
    """``(grid, N)``: the float64 grid of ``N + 1`` times from the first step's start to ``t_min`` (t = 1 noise).

    Uniform from ``t_max`` when `starts` is `None`; else the given start times of the ``N`` steps (strictly
    decreasing, in ``(t_min, 1]``; `num_inference_steps` may be left out or must equal their count), with ``t_min``
    appended as the end of the last step.
    """
    if starts is None:
        if (
            isinstance(num_inference_steps, bool)
            or not isinstance(num_inference_steps, int)
            or num_inference_steps < 1
        ):
            raise ValueError(f"`num_inference_steps` must be a positive integer, got {num_inference_steps!r}.")
        return torch.linspace(t_max, t_min, num_inference_steps + 1, dtype=torch.float64), num_inference_steps
    starts = torch.as_tensor(starts, dtype=torch.float64).detach().cpu().flatten()
    if len(starts) == 0 or not bool(((starts > t_min) & (starts <= 1)).all()):
        raise ValueError(f"`timesteps` must be non-empty and in (t_min={t_min}, 1], got {starts.tolist()}.")
    if not bool((starts[1:] < starts[:-1]).all()):
        raise ValueError("`timesteps` must be strictly decreasing.")
    if num_inference_steps is not None and num_inference_steps != len(starts):
        raise ValueError(
            f"`num_inference_steps` ({num_inference_steps}) does not match the {len(starts)} given `timesteps`."
        )
    return torch.cat([starts, torch.tensor([t_min], dtype=torch.float64)]), len(starts)


class StepIndexMixin:
    """Tracks which step of ``self.timesteps`` comes next, as diffusers' schedulers do (``step_index``,
    ``begin_index``, ``set_begin_index``). The scheduler sets ``timesteps``, ``_step_index`` and ``_begin_index``
    in ``set_timesteps`` and calls ``_current_index(timestep, "step")`` at each step.
    """

    @classmethod
    def _get_compatibles(cls):
        # diffusers resolves `_compatibles` names in `diffusers` only; ours live in `latentlm.schedulers`. A latentlm
        # scheduler is compatible with itself and with the names it lists (a config of one loads into the other).
        names = dict.fromkeys([cls.__name__, *cls._compatibles])
        modules = [importlib.import_module("latentlm.schedulers"), importlib.import_module("diffusers")]
        found = []
        for name in names:
            for module in modules:
                if hasattr(module, name):
                    found.append(getattr(module, name))
                    break
        return found

    def __len__(self) -> int:
        """`num_train_timesteps`, as diffusers' schedulers (the paths here are continuous in time)."""
        return self.config.num_train_timesteps

    @property
    def step_index(self) -> int | None:
        """Index of the current step; increases by one after each `step`."""
        return self._step_index

    @property
    def begin_index(self) -> int | None:
        """Index of the first step, set by a pipeline with `set_begin_index` (``None``: look up the first timestep)."""
        return self._begin_index

    def set_begin_index(self, begin_index: int = 0) -> None:
        """Start the next run at step `begin_index` (call after `set_timesteps`, before the loop)."""
        self._begin_index = begin_index

    def index_for_timestep(
        self, timestep: float | torch.Tensor, schedule_timesteps: torch.Tensor | None = None
    ) -> int:
        """Index of the first entry of ``self.timesteps`` equal to `timestep`."""
        if schedule_timesteps is None:
            schedule_timesteps = self.timesteps
        timestep = torch.as_tensor(timestep, device=schedule_timesteps.device, dtype=schedule_timesteps.dtype)
        indices = (schedule_timesteps == timestep).nonzero()
        if len(indices) == 0:
            raise ValueError(f"`timestep` {float(timestep)} is not one of `scheduler.timesteps`.")
        return indices[0].item()

    def _init_step_index(self, timestep: float | torch.Tensor) -> None:
        if self.begin_index is None:
            self._step_index = self.index_for_timestep(timestep)
        else:
            self._step_index = self._begin_index

    def _current_index(self, timestep: float | torch.Tensor, caller: str) -> int:
        if self.timesteps is None:
            raise ValueError(f"Call `set_timesteps` before `{caller}`.")
        if isinstance(timestep, int) or (isinstance(timestep, torch.Tensor) and not torch.is_floating_point(timestep)):
            raise ValueError(
                f"Passing integer indices (e.g. from `enumerate(timesteps)`) as timesteps to"
                f" `{type(self).__name__}.{caller}()` is not supported. Make sure to pass"
                " one of the `scheduler.timesteps` as a timestep."
            )
        if self.step_index is None:
            self._init_step_index(timestep)
        if self.step_index >= len(self.timesteps):
            raise ValueError(
                f"All {len(self.timesteps)} steps have been taken; call `set_timesteps` again to sample anew."
            )
        return self.step_index
