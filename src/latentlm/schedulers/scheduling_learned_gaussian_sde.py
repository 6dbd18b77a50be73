"""A learned Gaussian forward process (NFDM-Gaussian) and its reverse-SDE / probability-flow / ancestral samplers.

Neural Flow Diffusion Models (Bartosh et al. 2024; for text: arXiv 2601.16220, code ``Nesta-gitU/discrete_diffusion``)
learn the forward process. In its Gaussian form a network ``F_phi`` outputs, per token and dimension, two
time-dependent fields ``mean_bar(x, t)`` and ``log_std_bar(x, t)``, and the marginal ``q(z_t | x) = N(mean, std^2)``::

    mean(x, t)     = (1 - t) x + t (1 - t) mean_bar(x, t)
    log std(x, t)  = (1 - t) log delta + t (1 - t) log_std_bar(x, t)

so ``q(z_0 | x) = N(x, delta^2)`` and ``q(z_1 | x) = N(0, I)`` exactly, whatever the network says. With the network
off (``mean_bar = log_std_bar = 0``) it is the fixed process ``mean = (1 - t) x``, ``std = delta^(1 - t)``.

**Time convention**: t in [0, 1], t = 0 data, t = 1 noise, as everywhere in latentlm.

With a volatility ``g(t)``, the conditional forward SDE that keeps these marginals has the ODE drift
``f = dmean/dt + (dstd/dt / std) (z - mean)`` and the score ``grad log q = (mean - z) / std^2``; the *backward drift*
``f_B = f - g^2 / 2 grad log q`` drives the reverse-time SDE ``dz = f_B dt + g dw`` (dt < 0). The generative model
uses ``f_B`` with the data point replaced by the prediction ``x_hat(z, t)`` (x_hat held fixed in the time derivatives).

This scheduler is pure numerics: it never calls a network. The model hands it, per step, the packed tensor of
`pack_model_output` (see there for the layout): ``x_hat``, the network fields at ``(x_hat, t)``, their time
derivatives (the model takes them by forward-mode autodiff) and ``g(t)``. The same maths (`moments`, `drift`) serves
the training objective, so training and sampling share one home.

Samplers (``solver``), each from ``t`` to the next grid time ``s < t``:

- ``"sde"``: Euler–Maruyama on the reverse SDE, ``z_s = z + (s - t) f_B + g sqrt(t - s) w``.
- ``"ode"``: Euler on the probability-flow ODE, ``z_s = z + (s - t) f`` (the g-free conditional drift).
- ``"ancestral"``: sampling the exact Gaussian posterior ``q(z_s | z_t, x = x_hat)`` of the conditional forward SDE
  (a linear SDE in ``u = z - mean``; see `posterior`). With ``g = 0`` it is DDIM. The network fields are taken at
  ``t`` for both ends of the step (their analytic parts are exact at ``s``), so the step is exact for the fixed
  process and at ``s = 0``, and first-order accurate otherwise. (The official code's ``marginal`` sampler instead
  mixes the learned mean with a fixed reference noise schedule, a heuristic we do not copy.)

On the last step every solver returns the noise-free mean, which `decode_latents` rounds to tokens.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.schedulers.scheduling_utils import SchedulerMixin
from diffusers.utils import BaseOutput
from diffusers.utils.torch_utils import randn_tensor

from .scheduling_utils import StepIndexMixin, check_finite, check_generator, time_grid_from


__all__ = ["LearnedGaussianSDEScheduler", "LearnedGaussianSDESchedulerOutput"]

_SOLVERS = ("sde", "ode", "ancestral")
# The channels of the packed model output, in order (see `pack_model_output`).
MODEL_OUTPUT_FIELDS = ("x_hat", "mean_bar", "log_std_bar", "mean_bar_dt", "log_std_bar_dt", "volatility")


@dataclass
class LearnedGaussianSDESchedulerOutput(BaseOutput):
    """
    Output of [`LearnedGaussianSDEScheduler.step`].

    Args:
        prev_sample (`torch.Tensor` of shape `(batch_size, seq_len, latent_dim)`): the latent at the next grid time
            (the noise-free mean on the last step).
        pred_original_sample (`torch.Tensor`, same shape): the model's clean-latent estimate ``x_hat`` at this step.
    """

    prev_sample: torch.Tensor
    pred_original_sample: torch.Tensor | None = None


def _time_like(t: float | torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A float, 0-d or `(B,)` time as a tensor broadcastable against `like` `(B, ...)`."""
    t = torch.as_tensor(t, device=like.device, dtype=like.dtype)
    return t.reshape(*t.shape, *([1] * (like.ndim - t.ndim)))


class LearnedGaussianSDEScheduler(StepIndexMixin, SchedulerMixin, ConfigMixin):
    """
    Reverse SDE, probability-flow ODE and ancestral sampling of a learned Gaussian forward process (NFDM); see the
    module docstring for the maths.

    **What the model hands to `step`** (``model_output``): the `(batch, seq_len, latent_dim, 6)` tensor of
    `pack_model_output`: ``x_hat``, ``mean_bar``, ``log_std_bar`` (the forward network at ``(x_hat, t)``),
    ``mean_bar_dt``, ``log_std_bar_dt`` (their derivatives in ``t`` with ``x_hat`` held fixed) and the volatility
    ``g(t)`` broadcast to the latent's shape. A model whose process is fixed hands zeros for the four network fields.

    **Grid**: ``set_timesteps(N)`` sets ``time_grid = linspace(t_max, t_min, N + 1)``; the model is evaluated at the
    first ``N`` points (``timesteps``) and step ``i`` goes from ``time_grid[i]`` to ``time_grid[i + 1]``.

    Args:
        delta (`float`, defaults to 0.1): the data-end noise ``std(x, 0) = delta`` (the model's `delta`).
        solver (`str`, defaults to `"sde"`): ``"sde"``, ``"ode"`` or ``"ancestral"``.
        t_min (`float`, defaults to 0.0): where sampling stops.
        t_max (`float`, defaults to 1.0): where sampling starts (the prior is exact at 1).
    """

    _compatibles = []
    order = 1
    init_noise_sigma = 1.0

    @register_to_config
    def __init__(
        self,
        delta: float = 0.1,
        solver: str = "sde",
        t_min: float = 0.0,
        t_max: float = 1.0,
        num_train_timesteps: int = 1000,
    ):
        if (
            isinstance(num_train_timesteps, bool)
            or not isinstance(num_train_timesteps, int)
            or num_train_timesteps < 1
        ):
            raise ValueError(f"`num_train_timesteps` must be a positive integer, got {num_train_timesteps!r}.")
        for name, value in (("delta", delta), ("t_min", t_min), ("t_max", t_max)):
            check_finite(name, value)
        if not 0.0 < delta < 1.0:
            raise ValueError(f"`delta` must be in (0, 1), got {delta!r}.")
        if solver not in _SOLVERS:
            raise ValueError(f"`solver` must be one of {_SOLVERS}, got {solver!r}.")
        if not 0.0 <= t_min < t_max <= 1.0:
            raise ValueError(f"`t_min` and `t_max` must satisfy 0 <= t_min < t_max <= 1, got {t_min!r}, {t_max!r}.")
        self.num_inference_steps: int | None = None
        self.time_grid: torch.Tensor | None = None
        self.timesteps: torch.Tensor | None = None
        self._step_index: int | None = None
        self._begin_index: int | None = None
        self.set_timesteps(num_train_timesteps, device="cpu")  # diffusers' schedulers hold a grid from the start

    # ------------------------------------------------------------------------------------------- the process

    def moments(self, sample, timesteps, mean_bar, log_std_bar, mean_bar_dt=None, log_std_bar_dt=None):
        """
        Mean and std of ``q(z_t | x)`` and, when the network's time derivatives are given, their time derivatives.

        Args:
            sample (`torch.Tensor` of shape `(B, L, D)`): the data point ``x`` (or ``x_hat``).
            timesteps (`float` or `torch.Tensor` of shape `()` or `(B,)`): t in [0, 1].
            mean_bar, log_std_bar (`torch.Tensor`, same shape as `sample`): the forward network's outputs at ``t``.
            mean_bar_dt, log_std_bar_dt (`torch.Tensor`, *optional*): their derivatives in ``t``.

        Returns:
            ``(mean, std)``, or ``(mean, std, mean_dt, std_dt)`` with the derivatives, each shaped like `sample`.
        """
        t = _time_like(timesteps, sample)
        bridge = t * (1 - t)
        log_delta = math.log(self.config.delta)
        mean = (1 - t) * sample + bridge * mean_bar
        log_std = (1 - t) * log_delta + bridge * log_std_bar
        std = log_std.exp()
        if mean_bar_dt is None:
            return mean, std
        mean_dt = -sample + (1 - 2 * t) * mean_bar + bridge * mean_bar_dt
        std_dt = std * (-log_delta + (1 - 2 * t) * log_std_bar + bridge * log_std_bar_dt)
        return mean, std, mean_dt, std_dt

    @staticmethod
    def drift(sample, mean, std, mean_dt, std_dt, volatility):
        """
        The backward drift ``f_B = dmean + (dstd / std + g^2 / (2 std^2)) (z - mean)`` at ``z = sample``; with
        ``volatility = 0`` it is the probability-flow (ODE) drift. All arguments broadcast against `sample`.
        """
        return mean_dt + (std_dt / std + 0.5 * volatility**2 / std**2) * (sample - mean)

    @staticmethod
    def posterior(sample, timestep, prev_timestep, mean_t, std_t, mean_s, std_s, volatility):
        """
        Mean and std of ``q(z_s | z_t = sample, x)`` under the conditional forward SDE (s < t).

        ``u = z - mean`` follows ``du = (dstd/std - g^2 / (2 std^2)) u dt + g dw``, so ``u_t = rho (std_t / std_s)
        u_s + noise`` with ``rho = exp(-1/2 int_s^t g^2 / std^2)`` (integral by the trapezoid rule, ``g`` constant over
        the step), and the posterior is ``N(mean_s + rho (std_s / std_t) (z_t - mean_t), std_s^2 (1 - rho^2))``.
        """
        step = timestep - prev_timestep
        integral = 0.5 * step * volatility**2 * (std_s.pow(-2) + std_t.pow(-2))
        rho = torch.exp(-0.5 * integral)
        mean = mean_s + rho * (std_s / std_t) * (sample - mean_t)
        return mean, std_s * (1 - rho**2).clamp(min=0).sqrt()

    @staticmethod
    def pack_model_output(x_hat, mean_bar, log_std_bar, mean_bar_dt, log_std_bar_dt, volatility) -> torch.Tensor:
        """Stacks what `step` needs into one `(B, L, D, 6)` tensor (channels in `MODEL_OUTPUT_FIELDS` order);
        `volatility` `(B,)` is broadcast."""
        volatility = _time_like(volatility, x_hat).expand_as(x_hat)
        return torch.stack([x_hat, mean_bar, log_std_bar, mean_bar_dt, log_std_bar_dt, volatility], dim=-1)

    @staticmethod
    def unpack_model_output(model_output: torch.Tensor) -> dict[str, torch.Tensor]:
        if model_output.shape[-1] != len(MODEL_OUTPUT_FIELDS):
            raise ValueError(
                f"`model_output` must end in a dimension of {len(MODEL_OUTPUT_FIELDS)} channels "
                f"{MODEL_OUTPUT_FIELDS} (see `pack_model_output`), got shape {tuple(model_output.shape)}."
            )
        return dict(zip(MODEL_OUTPUT_FIELDS, model_output.unbind(dim=-1)))

    # ------------------------------------------------------------------------------------------- sampling

    def set_timesteps(
        self,
        num_inference_steps: int | None = None,
        device=None,
        generator=None,
        timesteps: list[float] | torch.Tensor | None = None,
        sigmas: list[float] | torch.Tensor | None = None,
    ) -> None:
        """Uniform grid from ``t_max`` to ``t_min``, or a custom one.

        Args:
            num_inference_steps (`int`): N, the number of model evaluations.
            device: where ``time_grid`` / ``timesteps`` live.
            generator: unused (the grid is deterministic); accepted so every scheduler shares one loop.
            timesteps, sigmas (`list[float]` or `torch.Tensor`, *optional*): custom start times of the N steps,
                strictly decreasing, in ``(t_min, 1]``; ``t_min`` ends the last step. Time here is already diffusers'
                sigma (1 = noise), so the two name the same grid.
        """
        check_generator(generator)
        if timesteps is not None and sigmas is not None:
            raise ValueError("Pass at most one of `timesteps` and `sigmas`.")
        grid, num_inference_steps = time_grid_from(
            num_inference_steps, timesteps if timesteps is not None else sigmas, self.config.t_min, self.config.t_max
        )
        self.time_grid = grid.to(device=device, dtype=torch.float32)
        self.timesteps = self.time_grid[:-1].clone()
        self.num_inference_steps = num_inference_steps
        self._step_index = None
        self._begin_index = None

    def add_noise(self, original_samples: torch.Tensor, noise: torch.Tensor, timesteps) -> torch.Tensor:
        """The fixed forward process (NFDM with its network off): ``z_t = (1 - t) x + delta^(1 - t) eps``.

        A learned process perturbs both terms with the model's network, so its marginals come from the model
        (`NFDMForDiffusion`); this is the process it starts from, and the one the fixed-process baseline trains on.
        """
        t = _time_like(timesteps, original_samples)
        return (1 - t) * original_samples + self.config.delta ** (1 - t) * noise

    def scale_model_input(self, sample: torch.Tensor, timestep=None, generator=None) -> torch.Tensor:
        """Identity (kept so every scheduler shares one loop)."""
        return sample

    def step(
        self,
        model_output: torch.Tensor,
        timestep: float | torch.Tensor,
        sample: torch.Tensor,
        *,
        generator: torch.Generator | list[torch.Generator] | None = None,
        return_dict: bool = True,
    ) -> LearnedGaussianSDESchedulerOutput | tuple[torch.Tensor, torch.Tensor]:
        """
        One step of the configured solver from ``t = timesteps[i]`` to ``s = time_grid[i + 1]``.

        Args:
            model_output (`torch.Tensor` of shape `(B, L, D, 6)`): `pack_model_output` of the model at ``(sample, t)``.
            timestep: the current time ``t`` (one of ``self.timesteps``).
            sample (`torch.Tensor` of shape `(B, L, D)`): ``z_t``.
            generator: for the noise of ``"sde"`` / ``"ancestral"``.
        """
        index = self._current_index(timestep, "step")
        check_generator(generator, batch_size=sample.shape[0] if isinstance(generator, list) else None)
        fields = self.unpack_model_output(model_output.float())
        z = sample.float()
        t, s = self.time_grid[index].item(), self.time_grid[index + 1].item()
        last = index == len(self.timesteps) - 1
        x_hat, g = fields["x_hat"], fields["volatility"]
        mean, std, mean_dt, std_dt = self.moments(
            x_hat, t, fields["mean_bar"], fields["log_std_bar"], fields["mean_bar_dt"], fields["log_std_bar_dt"]
        )
        solver = self.config.solver
        noise_std = None
        if solver == "ode":
            prev = z + (s - t) * self.drift(z, mean, std, mean_dt, std_dt, 0.0)
        elif solver == "sde":
            prev = z + (s - t) * self.drift(z, mean, std, mean_dt, std_dt, g)
            noise_std = g * math.sqrt(t - s)
        else:
            mean_s, std_s = self.moments(x_hat, s, fields["mean_bar"], fields["log_std_bar"])
            prev, noise_std = self.posterior(z, t, s, mean, std, mean_s, std_s, g)
        if noise_std is not None and not last:
            noise = randn_tensor(z.shape, generator=generator, device=z.device, dtype=z.dtype)
            prev = prev + noise_std * noise
        self._step_index = index + 1
        prev = prev.to(sample.dtype)
        x_hat = x_hat.to(sample.dtype)
        if not return_dict:
            return prev, x_hat
        return LearnedGaussianSDESchedulerOutput(prev_sample=prev, pred_original_sample=x_hat)
