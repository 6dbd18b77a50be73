"""Variance-preserving diffusion with Cosmos' "tan" noise schedule, and its reverse-SDE / ODE / DDIM samplers.

Cosmos (arXiv 2506.21170; code ``dbal0503/cosmos``, ``diffusion_utils/``) trains an x0-predicting denoiser on
a variance-preserving (VP) process with TEncDM's schedule and samples it with Euler–Maruyama on the reverse SDE. The
time convention already matches the package: **t in [0, 1], t = 0 data, t = 1 noise** (no conversion needed).

Forward process (``d = schedule_d``)::

    x_t     = alpha_t * x0 + sigma_t * eps,                 eps ~ N(0, I)
    alpha_t = 1 / sqrt(1 + d^2 tan^2(pi t / 2)),            sigma_t = sqrt(1 - alpha_t^2)
    dx      = -1/2 beta(t) x dt + sqrt(beta(t)) dW,         beta(t) = -d/dt log alpha_t^2

which gives ``beta(t) = pi d^2 tan(pi t/2) (1 + tan^2(pi t/2)) / (1 + d^2 tan^2(pi t/2))``. ``d = 1`` is the cosine
schedule ``alpha_t = cos(pi t / 2)``; larger ``d`` adds noise faster.
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


__all__ = ["EulerMaruyamaVPScheduler", "EulerMaruyamaVPSchedulerOutput"]

_PREDICTION_TYPES = ("sample",)
_SOLVERS = ("euler_maruyama", "probability_flow", "ddim")


@dataclass
class EulerMaruyamaVPSchedulerOutput(BaseOutput):
    """
    Output of [`EulerMaruyamaVPScheduler.step`].

    Args:
        prev_sample (`torch.Tensor`, same shape as the sample, e.g. `(batch_size, seq_len, latent_dim)`):
            The latent at the next grid time; feed it to the next loop iteration. On the last step it is the
            noise-free mean of the update (Cosmos decodes this ``x_mean``).
        pred_original_sample (`torch.Tensor`, same shape):
            The model's clean-latent (x0) estimate at this step (Cosmos feeds it back as self-conditioning).
    """

    prev_sample: torch.Tensor
    pred_original_sample: torch.Tensor | None = None


def _expand_time(t: float | torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A float, 0-d, `(B,)` or `(B, L)` time as a float tensor broadcastable against `like` (trailing singleton dims)."""
    t = torch.as_tensor(t, device=like.device)
    if t.ndim > like.ndim:
        raise ValueError(f"`timesteps` has shape {tuple(t.shape)}, more dims than the sample {tuple(like.shape)}.")
    return t.reshape(*t.shape, *([1] * (like.ndim - t.ndim)))


def _compute_dtype(*tensors: torch.Tensor) -> torch.dtype:
    """float64 if any input is float64, else float32 (half-precision inputs are upcast for the schedule maths)."""
    return torch.float64 if any(x.dtype == torch.float64 for x in tensors) else torch.float32


def _is_positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


class EulerMaruyamaVPScheduler(StepIndexMixin, SchedulerMixin, ConfigMixin):
    """
    Cosmos' sampler: a variance-preserving SDE with the "tan" schedule, integrated backwards from t = 1 to ``t_min``.

    Pure numerics: the scheduler never calls a model. It also holds the forward process used in training
    ([`~EulerMaruyamaVPScheduler.add_noise`], [`~EulerMaruyamaVPScheduler.sample_training_timesteps`]) and the
    x0-to-score conversion ([`~EulerMaruyamaVPScheduler.score_from_sample`]).

    **Time convention.** ``t`` in [0, 1], 0 = data, 1 = noise, as Cosmos and the rest of latentlm. ``self.timesteps``
    are these times (float32), not integer indices.

    **Process** (``d = schedule_d``)::

        x_t     = alpha_t x0 + sigma_t eps
        alpha_t = 1 / sqrt(1 + d^2 tan^2(pi t / 2)),     sigma_t = sqrt(1 - alpha_t^2)      (both clipped to [0, 1])
        beta(t) = pi d^2 tan(pi t/2) (1 + tan^2(pi t/2)) / (1 + d^2 tan^2(pi t/2))  =  -d/dt log alpha_t^2
        forward SDE: dx = -1/2 beta x dt + sqrt(beta) dW

    As in Cosmos, ``beta`` (only ``beta``, not ``alpha_t`` / ``sigma_t``) is evaluated at ``min(t, beta_clip_t)``: it
    diverges at t = 1, and above ``beta_clip_t`` the marginal is already ~N(0, I) (``alpha_0.95^2 ~ 2.5e-4`` for
    ``d = 5``). ``sigma_t`` is computed as ``d tan(pi t/2) alpha_t``, equal to ``sqrt(1 - alpha_t^2)`` but without
    its cancellation near t = 0.

    **Sampling loop** (the same for every latentlm method)::

        scheduler.set_timesteps(num_inference_steps, device=device, generator=generator)
        latents = randn(shape)                                    # init_noise_sigma = 1
        for t in scheduler.timesteps:
            model_input = scheduler.scale_model_input(latents, t)  # identity
            x0_hat = model.denoise(model_input, t, ...)            # x0 prediction
            latents = scheduler.step(x0_hat, t, model_input, generator=generator).prev_sample

    **Grid.** ``set_timesteps(N)`` builds ``self.time_grid = linspace(t_max, t_min, N + 1)`` (Cosmos:
    ``linspace(T = 1, t_min, N + 1)``); ``self.timesteps`` are its first ``N`` points and step ``i`` goes from
    ``t = time_grid[i]`` to ``t_next = time_grid[i + 1]`` (``dt = t_next - t < 0``). The model is never evaluated at
    ``t_min`` itself.

    **Step.** With the x0 prediction ``x0_hat`` the score is ``s = -(x - alpha_t x0_hat) / sigma_t^2``
    (``eps_hat = (x - alpha_t x0_hat) / sigma_t``). Per ``solver``:

    - ``"euler_maruyama"`` (**Cosmos' default**: its ``euler`` solver with ``ode_sampling=False``; Cosmos samples with
      ``N = 200``, ``t_min = 0.05``, ``d = 5``, which are this scheduler's defaults apart from ``N``)::

          x_mean = x + (-1/2 beta x - beta s) dt,        x_next = x_mean + sqrt(beta) sqrt(-dt) z,   z ~ N(0, I)

      The **last step returns ``x_mean``** (no noise), as Cosmos' sampler returns the last ``x_mean`` for decoding.
    - ``"probability_flow"``: Euler on the probability-flow ODE, ``x_next = x + (-1/2 beta x - 1/2 beta s) dt``
      (Cosmos' ``euler`` solver with ``ode_sampling=True``).
    - ``"ddim"``: deterministic DDIM, ``x_next = alpha_next x0_hat + sigma_next eps_hat`` (Cosmos' ``ddim`` solver).

    ``beta``, ``alpha``, ``sigma`` are taken at the step's start time ``t``; the update is computed in float32 (or
    float64 for float64 samples) and cast back to the dtype of `sample`.

    **Shapes.** Samples and model outputs are `(batch_size, ...)`, typically `(batch_size, num_latents,
    latent_dim)`. Times passed to the public maths (`alpha_sigma`, `beta`, `add_noise`, `score_from_sample`) are a
    float, a 0-d tensor, or a `(batch_size,)` tensor (also `(batch_size, seq_len)` where a sample is given), broadcast
    over the trailing dims.

    Args:
        schedule_d (`float`, defaults to 5.0):
            ``d`` of the tan schedule (Cosmos / TEncDM use 5; 1 is the cosine schedule).
        t_min (`float`, defaults to 0.05):
            Time at which sampling stops (the last grid point; Cosmos' ``t_min``).
        t_max (`float`, defaults to 1.0):
            Time at which sampling starts (the first model evaluation; Cosmos' ``T``).
        beta_clip_t (`float`, defaults to 0.95):
            ``beta(t)`` is evaluated at ``min(t, beta_clip_t)`` (Cosmos' ``t_thr``). Must be below 1.
        solver (`str`, defaults to `"euler_maruyama"`):
            ``"euler_maruyama"``, ``"probability_flow"`` or ``"ddim"``, see above.
        prediction_type (`str`, defaults to `"sample"`):
            What the model outputs; only ``"sample"`` (x0, as Cosmos) for now.
        training_t_min (`float`, defaults to 1e-5):
            Training times are drawn from ``U(training_t_min, 1)`` (Cosmos' ``eps``).
        num_train_timesteps (`int`, defaults to 1000):
            Kept for diffusers compatibility (``len(scheduler)`` and the grid held before the first
            `set_timesteps`); the process is continuous in time.
        default_num_inference_steps (`int`, *optional*):
            The steps `set_timesteps` (and the pipeline) use when none are given: a distilled few-step student's
            steps (`CosmosLMConfig.distill_steps`). `None`: the pipeline's usual 200.
    """

    _compatibles = []
    order = 1
    init_noise_sigma = 1.0

    @register_to_config
    def __init__(
        self,
        schedule_d: float = 5.0,
        t_min: float = 0.05,
        t_max: float = 1.0,
        beta_clip_t: float = 0.95,
        solver: str = "euler_maruyama",
        prediction_type: str = "sample",
        training_t_min: float = 1e-5,
        num_train_timesteps: int = 1000,
        default_num_inference_steps: int | None = None,
    ):
        for name, value in (("schedule_d", schedule_d), ("t_min", t_min), ("t_max", t_max),
                            ("beta_clip_t", beta_clip_t), ("training_t_min", training_t_min)):  # fmt: skip
            check_finite(name, value)
        if not (math.isfinite(schedule_d) and schedule_d > 0):
            raise ValueError(f"`schedule_d` must be a positive finite number, got {schedule_d!r}.")
        if not _is_positive_int(num_train_timesteps):
            raise ValueError(f"`num_train_timesteps` must be a positive integer, got {num_train_timesteps!r}.")
        if default_num_inference_steps is not None and not _is_positive_int(default_num_inference_steps):
            raise ValueError(
                f"`default_num_inference_steps` must be a positive integer or None, got {default_num_inference_steps!r}."
            )
        if not 0 < t_max <= 1:
            raise ValueError(f"`t_max` must be in (0, 1], got {t_max!r}.")
        if not 0 < t_min < t_max:
            raise ValueError(f"`t_min` must satisfy 0 < t_min < t_max = {t_max!r}, got {t_min!r}.")
        if not 0 < beta_clip_t < 1:
            raise ValueError(f"`beta_clip_t` must be in (0, 1) (beta diverges at t = 1), got {beta_clip_t!r}.")
        if solver not in _SOLVERS:
            raise ValueError(f"`solver` must be one of {_SOLVERS}, got {solver!r}.")
        if prediction_type not in _PREDICTION_TYPES:
            raise ValueError(f"`prediction_type` must be one of {_PREDICTION_TYPES}, got {prediction_type!r}.")
        if not 0 <= training_t_min < 1:
            raise ValueError(f"`training_t_min` must be in [0, 1), got {training_t_min!r}.")

        self.num_inference_steps: int | None = None
        self.time_grid: torch.Tensor | None = None
        self.timesteps: torch.Tensor | None = None
        self._step_index: int | None = None
        self._begin_index: int | None = None
        with torch.device("cpu"):  # also when built inside a meta-device context (model loading)
            self.set_timesteps(num_train_timesteps, device="cpu")  # diffusers' schedulers hold a grid from the start

    # ------------------------------------------------------------------ the process

    def alpha_sigma(self, timesteps: float | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """
        Signal and noise scales of the marginal ``x_t = alpha_t x0 + sigma_t eps``.

        ``alpha_t = 1 / sqrt(1 + d^2 tan^2(pi t / 2))`` and ``sigma_t = sqrt(1 - alpha_t^2)``, the latter computed as
        ``d tan(pi t/2) alpha_t`` (same value, no cancellation at small t); both clipped to [0, 1].

        Args:
            timesteps (`float` or `torch.Tensor` of any shape): times ``t`` in [0, 1].

        Returns:
            `(alpha, sigma)`: two tensors of the shape of `timesteps`, float64 for float64 input, else float32.
        """
        t = torch.as_tensor(timesteps)
        t = t.to(_compute_dtype(t))
        # |tan|: at t = 1 the float32 pi / 2 slightly overshoots and tan(pi t / 2) comes out large and negative.
        d_tan = self.config.schedule_d * torch.tan(0.5 * math.pi * t).abs()
        norm = torch.hypot(torch.ones_like(d_tan), d_tan)  # sqrt(1 + d^2 tan^2), without overflow
        alpha = (1.0 / norm).clamp(0.0, 1.0)
        sigma = (d_tan / norm).clamp(0.0, 1.0)
        return alpha, sigma

    def beta(self, timesteps: float | torch.Tensor) -> torch.Tensor:
        """
        Instantaneous noise rate ``beta(t) = -d/dt log alpha_t^2`` of the forward SDE, with t clipped to
        ``[0, beta_clip_t]`` (as Cosmos)::

            beta(t) = pi d^2 tan(pi t/2) (1 + tan^2(pi t/2)) / (1 + d^2 tan^2(pi t/2))

        Args:
            timesteps (`float` or `torch.Tensor` of any shape): times ``t`` in [0, 1].

        Returns:
            `torch.Tensor` of the shape of `timesteps`, float64 for float64 input, else float32.
        """
        t = torch.as_tensor(timesteps)
        t = t.to(_compute_dtype(t)).clamp(0.0, self.config.beta_clip_t)
        tan = torch.tan(0.5 * math.pi * t)
        d2 = self.config.schedule_d**2
        return math.pi * d2 * tan * (1.0 + tan**2) / (1.0 + d2 * tan**2)

    def _alpha_sigma_like(self, timesteps: float | torch.Tensor, like: torch.Tensor, dtype: torch.dtype):
        alpha, sigma = self.alpha_sigma(_expand_time(timesteps, like).to(dtype))
        return alpha, sigma

    def add_noise(
        self, original_samples: torch.Tensor, noise: torch.Tensor, timesteps: float | torch.Tensor
    ) -> torch.Tensor:
        """
        The forward process: ``alpha_t * original_samples + sigma_t * noise``.

        Args:
            original_samples (`torch.Tensor` of shape `(B, ...)`, e.g. `(B, L, D)`): clean latents x0.
            noise (`torch.Tensor`, same shape): standard normal noise ``eps``.
            timesteps (`float` or `torch.Tensor` of shape `()`, `(B,)` or `(B, L)`): times ``t`` in [0, 1], broadcast
                over the remaining trailing dims (not indices into ``self.timesteps``).

        Returns:
            `torch.Tensor` of the shape and dtype of `original_samples`.
        """
        dtype = _compute_dtype(original_samples)
        alpha, sigma = self._alpha_sigma_like(timesteps, original_samples, dtype)
        noisy = alpha * original_samples.to(dtype) + sigma * noise.to(device=original_samples.device, dtype=dtype)
        return noisy.to(original_samples.dtype)

    def sample_training_timesteps(
        self,
        batch_size: int,
        device: str | torch.device | None = None,
        generator: torch.Generator | list[torch.Generator] | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> torch.Tensor:
        """
        Per-example training times ``t ~ U(training_t_min, 1)``, as Cosmos' ``sample_time``.

        Args:
            batch_size (`int`): number of examples B.
            device (`str` or `torch.device`, *optional*): of the returned tensor (default: the generator's device,
                else CPU).
            generator (`torch.Generator` or list of `B` generators, *optional*): a list draws each example from its
                own generator.
            dtype (`torch.dtype`, defaults to `torch.float32`): of the returned tensor.

        Returns:
            `torch.Tensor` of shape `(batch_size,)`, values in [training_t_min, 1).
        """
        if not _is_positive_int(batch_size):
            raise ValueError(f"`batch_size` must be a positive integer, got {batch_size!r}.")
        if isinstance(generator, (list, tuple)):
            if len(generator) == 1:
                generator = generator[0]
            elif len(generator) != batch_size:
                raise ValueError(
                    f"`generator` is a list of {len(generator)} generators but `batch_size` is {batch_size}."
                )
        if isinstance(generator, (list, tuple)):
            uniform = torch.cat([torch.rand(1, generator=g, device=g.device).cpu() for g in generator])
            rand_device = torch.device("cpu")
        else:
            rand_device = generator.device if generator is not None else torch.device(device or "cpu")
            uniform = torch.rand(batch_size, generator=generator, device=rand_device)
        if device is None:
            device = rand_device
        t_low = self.config.training_t_min
        return (uniform * (1.0 - t_low) + t_low).to(device=device, dtype=dtype)

    def score_from_sample(
        self, pred_original_sample: torch.Tensor, sample: torch.Tensor, timestep: float | torch.Tensor
    ) -> torch.Tensor:
        """
        Score ``grad log p_t(x)`` implied by an x0 prediction: ``-(sample - alpha_t x0_hat) / sigma_t^2``.

        Args:
            pred_original_sample (`torch.Tensor` of shape `(B, ...)`): x0 (predicted or true).
            sample (`torch.Tensor`, same shape): the noisy latent ``x_t``.
            timestep (`float` or `torch.Tensor` of shape `()`, `(B,)` or `(B, L)`): its time(s); must be > 0
                (``sigma_0 = 0``).

        Returns:
            `torch.Tensor` of the shape and dtype of `sample`.
        """
        dtype = _compute_dtype(sample)
        alpha, sigma = self._alpha_sigma_like(timestep, sample, dtype)
        x0 = pred_original_sample.to(device=sample.device, dtype=dtype)
        return (-(sample.to(dtype) - alpha * x0) / sigma**2).to(sample.dtype)

    def ode_step_coefficients(self, t: torch.Tensor, t_next: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """
        One step of the deterministic `solver` from `t` to `t_next` as an affine map of the latent and the x0
        prediction, ``x_next = a * x + b * x0_hat`` (the `step` update written out)::

            ddim:              a = sigma_next / sigma,                  b = alpha_next - alpha * sigma_next / sigma
            probability_flow:  a = 1 - beta dt / 2 + beta dt / (2 sigma^2),   b = -beta dt alpha / (2 sigma^2)

        Progressive distillation inverts it: the x0 prediction whose one step lands on a given latent.

        Args:
            t (`torch.Tensor` of shape `(B,)`), t_next (`torch.Tensor` of shape `(B,)`): each row's step, `t > 0`.

        Returns:
            `(a, b)`, two `(B,)` tensors in the compute dtype (float64 for float64 times, else float32).

        Raises:
            ValueError: for ``solver="euler_maruyama"``, whose step is random.
        """
        solver = self.config.solver
        if solver == "euler_maruyama":
            raise ValueError(
                "`solver='euler_maruyama'` adds noise at every step, so its step is not a function of the prediction: "
                "use `solver='ddim'` or `'probability_flow'`."
            )
        t = torch.as_tensor(t)
        t = t.to(_compute_dtype(t))
        t_next = torch.as_tensor(t_next).to(t)
        alpha, sigma = self.alpha_sigma(t)
        if solver == "ddim":
            alpha_next, sigma_next = self.alpha_sigma(t_next)
            ratio = sigma_next / sigma
            return ratio, alpha_next - alpha * ratio
        half_beta_dt = 0.5 * self.beta(t) * (t_next - t)
        return 1 - half_beta_dt + half_beta_dt / sigma**2, -half_beta_dt * alpha / sigma**2

    # ------------------------------------------------------------------ sampling

    def set_timesteps(
        self,
        num_inference_steps: int | None = None,
        device: str | torch.device | None = None,
        generator: torch.Generator | list[torch.Generator] | None = None,
        timesteps: list[float] | torch.Tensor | None = None,
        sigmas: list[float] | torch.Tensor | None = None,
    ) -> None:
        """
        Build the uniform time grid for one sampling run (or a custom one).

        Sets ``self.time_grid`` (`(N + 1,)`, ``linspace(t_max, t_min, N + 1)``) and ``self.timesteps`` (`(N,)`, its
        first ``N`` points: the times at which the model is evaluated, float32). Step ``i`` goes from
        ``time_grid[i]`` to ``time_grid[i + 1]``.

        Args:
            num_inference_steps (`int`, *optional*): N, the number of model evaluations (Cosmos uses 200). May be
                omitted when `timesteps` or `sigmas` are given, or when the config has `default_num_inference_steps`
                (a distilled student).
            device (`str` or `torch.device`, *optional*): where ``time_grid`` / ``timesteps`` live.
            generator: unused (the grid is deterministic); accepted so every scheduler shares one loop.
            timesteps (`list[float]` or `torch.Tensor`, *optional*): custom start times of the ``N`` steps, strictly
                decreasing, in ``(t_min, 1]``; ``t_min`` is appended as the end of the last step.
            sigmas (`list[float]` or `torch.Tensor`, *optional*): the same grid given as noise levels ``sigma_t`` in
                ``(sigma(t_min), 1]``, converted to times by inverting the schedule.
        """
        check_generator(generator)
        if timesteps is not None and sigmas is not None:
            raise ValueError("Pass at most one of `timesteps` and `sigmas`.")
        if sigmas is not None:
            sigmas = torch.as_tensor(sigmas, dtype=torch.float64).detach().cpu().flatten()
            if len(sigmas) and not bool(((sigmas > 0) & (sigmas <= 1)).all()):
                raise ValueError(f"`sigmas` must lie in (0, 1], got {sigmas.tolist()}.")
            timesteps = self.time_from_sigma(sigmas)
        if num_inference_steps is None and timesteps is None:
            num_inference_steps = self.config.default_num_inference_steps
        grid, num_inference_steps = time_grid_from(
            num_inference_steps, timesteps, self.config.t_min, self.config.t_max
        )
        grid = grid.to(device=device, dtype=torch.float32)
        self.num_inference_steps = num_inference_steps
        self.time_grid = grid
        self.timesteps = grid[:-1].clone()
        self._step_index = None
        self._begin_index = None

    def time_from_sigma(self, sigmas: float | torch.Tensor) -> torch.Tensor:
        """Inverse of the schedule's ``sigma_t``: ``t = (2 / pi) atan(sigma / (d sqrt(1 - sigma^2)))`` (float64)."""
        sigmas = torch.as_tensor(sigmas, dtype=torch.float64)
        alphas = torch.sqrt((1.0 - sigmas**2).clamp(min=0.0))
        return (2.0 / math.pi) * torch.atan2(sigmas, self.config.schedule_d * alphas)

    def scale_model_input(
        self,
        sample: torch.Tensor,
        timestep: float | torch.Tensor | None = None,
        generator: torch.Generator | list[torch.Generator] | None = None,
    ) -> torch.Tensor:
        """
        Identity: the VP model input is the latent itself. Kept so every scheduler shares one loop.

        Args:
            sample (`torch.Tensor`): the current latent.
            timestep, generator: unused.

        Returns:
            `sample` itself.
        """
        return sample

    def step(
        self,
        model_output: torch.Tensor,
        timestep: float | torch.Tensor,
        sample: torch.Tensor,
        *,
        generator: torch.Generator | list[torch.Generator] | None = None,
        return_dict: bool = True,
    ) -> EulerMaruyamaVPSchedulerOutput | tuple[torch.Tensor, torch.Tensor]:
        """
        One step of the configured `solver` from ``t = self.timesteps[i]`` to ``t_next = self.time_grid[i + 1]``.

        See the class docstring for the three updates. For ``"euler_maruyama"`` the last step returns the noise-free
        ``x_mean`` and draws no noise.

        Args:
            model_output (`torch.Tensor` of shape `(B, ...)`): the model's x0 prediction at ``(sample, t)``.
            timestep (`float` or `torch.Tensor`): the current entry of ``self.timesteps`` (a time, not an index).
            sample (`torch.Tensor`, same shape): the latent ``x_t``.
            generator (`torch.Generator` or list of `B` generators, *optional*): draws the Euler–Maruyama noise
                (diffusers' `randn_tensor`; a list seeds each batch row separately). Unused by the other solvers.
            return_dict (`bool`, defaults to `True`): return an [`EulerMaruyamaVPSchedulerOutput`] or a tuple
                ``(prev_sample, pred_original_sample)``.
        """
        index = self._current_index(timestep, "step")
        check_generator(generator, sample.shape[0] if isinstance(generator, (list, tuple)) else None)
        dtype = _compute_dtype(sample)
        x = sample.to(dtype)
        x0_hat = model_output.to(device=sample.device, dtype=dtype)
        t = self.timesteps[index].to(device=sample.device, dtype=dtype)
        t_next = self.time_grid[index + 1].to(device=sample.device, dtype=dtype)
        solver = self.config.solver

        if solver == "ddim":
            alpha, sigma = self.alpha_sigma(t)
            alpha_next, sigma_next = self.alpha_sigma(t_next)
            eps_hat = (x - alpha * x0_hat) / sigma
            prev_sample = alpha_next * x0_hat + sigma_next * eps_hat
        else:
            beta = self.beta(t)
            dt = t_next - t
            score = self.score_from_sample(x0_hat, x, t)
            score_weight = 1.0 if solver == "euler_maruyama" else 0.5
            prev_sample = x + (-0.5 * beta * x - score_weight * beta * score) * dt
            is_last = index == len(self.timesteps) - 1
            if solver == "euler_maruyama" and not is_last:
                z = randn_tensor(sample.shape, generator=generator, device=sample.device, dtype=dtype)
                prev_sample = prev_sample + torch.sqrt(beta) * torch.sqrt(-dt) * z

        self._step_index += 1
        prev_sample = prev_sample.to(sample.dtype)
        pred_original_sample = model_output
        if not return_dict:
            return (prev_sample, pred_original_sample)
        return EulerMaruyamaVPSchedulerOutput(prev_sample=prev_sample, pred_original_sample=pred_original_sample)
