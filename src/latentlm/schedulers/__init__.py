"""Schedulers: pure numerics in diffusers' `SchedulerMixin, ConfigMixin` form (t = 0 data, t = 1 noise)."""

from .scheduling_euler_maruyama_vp import EulerMaruyamaVPScheduler, EulerMaruyamaVPSchedulerOutput
from .scheduling_flow_match_euler_sde import (
    FlowMatchEulerSDEScheduler,
    FlowMatchEulerSDESchedulerOutput,
    sample_training_sigmas,
)


__all__ = [
    "EulerMaruyamaVPScheduler",
    "EulerMaruyamaVPSchedulerOutput",
    "FlowMatchEulerSDEScheduler",
    "FlowMatchEulerSDESchedulerOutput",
    "sample_training_sigmas",
]
