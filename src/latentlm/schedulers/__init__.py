"""Schedulers: pure numerics in diffusers' `SchedulerMixin, ConfigMixin` form (sigma = 0 data, 1 noise)."""

from .scheduling_flow_match_euler_sde import (
    FlowMatchEulerSDEScheduler,
    FlowMatchEulerSDESchedulerOutput,
    sample_training_sigmas,
)


__all__ = ["FlowMatchEulerSDEScheduler", "FlowMatchEulerSDESchedulerOutput", "sample_training_sigmas"]
