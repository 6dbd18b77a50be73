"""Schedulers: pure numerics in diffusers' `SchedulerMixin, ConfigMixin` form (t = 0 data, t = 1 noise)."""

from .scheduling_euler_maruyama_vp import EulerMaruyamaVPScheduler, EulerMaruyamaVPSchedulerOutput
from .scheduling_flow_match_euler_sde import (
    FlowMatchEulerSDEScheduler,
    FlowMatchEulerSDESchedulerOutput,
    sample_training_sigmas,
)
from .scheduling_learned_gaussian_sde import LearnedGaussianSDEScheduler, LearnedGaussianSDESchedulerOutput


__all__ = [
    "EulerMaruyamaVPScheduler",
    "EulerMaruyamaVPSchedulerOutput",
    "FlowMatchEulerSDEScheduler",
    "FlowMatchEulerSDESchedulerOutput",
    "LearnedGaussianSDEScheduler",
    "LearnedGaussianSDESchedulerOutput",
    "sample_training_sigmas",
]
