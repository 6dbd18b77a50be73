"""Euler flow-matching sampler with ELF's noise re-injection, and the linear (rectified-flow) forward process.

Conventions (see ``DESIGN.md``): time is ``sigma`` in [0, 1] with **sigma = 0 data and sigma = 1 noise**, as in
diffusers. The ELF paper and code (``lillian039/ELF``) run the other way, ``t_elf = 0`` noise and ``t_elf = 1`` data;
everything here is converted at the boundary with ``sigma = 1 - t_elf``. The only ELF-convention numbers left are
``time_grid_mean`` / ``time_grid_std`` (and the ``mean`` / ``std`` of :func:`sample_training_sigmas`), which keep ELF's
meaning ``t_elf = sigmoid(N(mean, std))`` so that the paper's values (-1.5, 0.8) can be copied unchanged.

Path (ELF Sec. 3, ``s_n = noise_scale``)::

    z_sigma = (1 - sigma) * x0 + sigma * s_n * eps,        eps ~ N(0, I)
    dz/dsigma = s_n * eps - x0 = (z_sigma - x0) / sigma

ELF's velocity ``v = dz/dt_elf`` is minus ours.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.schedulers.scheduling_utils import SchedulerMixin
from diffusers.utils import BaseOutput
from diffusers.utils.torch_utils import randn_tensor

from .scheduling_utils import StepIndexMixin, check_finite, check_generator


__all__ = ["FlowMatchEulerSDEScheduler", "FlowMatchEulerSDESchedulerOutput", "sample_training_sigmas"]

_PREDICTION_TYPES = ("sample", "flow")
_TIME_GRIDS = ("logit_normal", "logit_normal_random", "uniform")


@dataclass
class FlowMatchEulerSDESchedulerOutput(BaseOutput):
    """
    Output of [`FlowMatchEulerSDEScheduler.step`].

    Args:
        prev_sample (`torch.Tensor`, same shape as the sample, e.g. `(batch_size, seq_len, latent_dim)`):
            The latent at the next grid sigma; feed it to the next loop iteration.
        pred_original_sample (`torch.Tensor`, same shape):
            The model's clean-latent (x0) estimate at this step (ELF feeds it back as self-conditioning).
    """

    prev_sample: torch.Tensor
    pred_original_sample: torch.Tensor | None = None


def _expand_sigma(sigma: float | torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A float, 0-d, `(B,)` or `(B, L)` sigma as a tensor broadcastable against `like` (trailing singleton dims)."""
    sigma = torch.as_tensor(sigma, device=like.device, dtype=like.dtype)
    if sigma.ndim > like.ndim:
        raise ValueError(f"`sigma` has shape {tuple(sigma.shape)}, more dims than the sample {tuple(like.shape)}.")
    return sigma.reshape(*sigma.shape, *([1] * (like.ndim - sigma.ndim)))


def _first_generator(generator: torch.Generator | list[torch.Generator] | None) -> torch.Generator | None:
    if isinstance(generator, (list, tuple)):
        return generator[0] if len(generator) > 0 else None
    return generator


def sample_training_sigmas(
    batch_size: int,
    *,
    mean: float,
    std: float,
    generator: torch.Generator | list[torch.Generator] | None = None,
    device: str | torch.device | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """
    Draw per-example training noise levels from ELF's logit-normal law.

    ELF samples ``t_elf = sigmoid(N(mean, std))`` with ``t_elf = 0`` noise (paper default ``mean=-1.5, std=0.8``,
    which favours the noisy end). This returns the same draw in our convention, ``sigma = 1 - t_elf``.

    Args:
        batch_size (`int`): number of examples B.
        mean (`float`), std (`float`): location and scale of the normal, **in ELF's t_elf convention**.
        generator (`torch.Generator` or list of them, *optional*): as in diffusers' `randn_tensor` (a list seeds
            each example separately).
        device, dtype: of the returned tensor.

    Returns:
        `torch.Tensor` of shape `(batch_size,)`, values in (0, 1).
    """
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size <= 0:
        raise ValueError(f"`batch_size` must be a positive integer, got {batch_size!r}.")
    if std <= 0:
        raise ValueError(f"`std` must be positive, got {std!r}.")
    if device is None:
        gen = _first_generator(generator)
        device = gen.device if gen is not None else torch.device("cpu")
    normal = randn_tensor((batch_size,), generator=generator, device=torch.device(device), dtype=torch.float32)
    t_elf = torch.sigmoid(normal * std + mean)
    return (1.0 - t_elf).to(dtype)


class FlowMatchEulerSDEScheduler(StepIndexMixin, SchedulerMixin, ConfigMixin):
    """
    Euler sampler for a linear (rectified-flow) path with ELF's optional noise re-injection ("SDE") step.

    Pure numerics: the scheduler never calls a model. It also holds the forward process used in training
    ([`~FlowMatchEulerSDEScheduler.scale_noise`]) and the x0-to-velocity conversion
    ([`~FlowMatchEulerSDEScheduler.get_velocity`]) shared by the training loss and the sampler.

    **Time convention.** ``sigma`` in [0, 1], 0 = data, 1 = noise (diffusers' sigma). ELF writes
    ``t_elf = 1 - sigma``; its formulas are converted here at the boundary.

    **Sampling loop** (the same for every latentlm method)::

        scheduler.set_timesteps(num_inference_steps, device=device, generator=generator)
        latents = noise_scale * randn(shape)                     # = scheduler.init_noise_sigma * randn
        for t in scheduler.timesteps:
            model_input = scheduler.scale_model_input(latents, t, generator=generator)  # re-injection
            pred = model.denoise(model_input, t, ...)                                     # x0 prediction
            latents = scheduler.step(pred, t, model_input, generator=generator).prev_sample

    **Grid and step.** ``set_timesteps`` builds ``N + 1`` grid sigmas ``self.sigmas`` from 1 down to 0. For interval
    ``i`` (``t_elf`` going ``t_i -> t_{i+1}``, ``h = t_{i+1} - t_i``) ELF's released code does::

        alpha  = clip(1 - gamma * h, 0, 1)                 # alpha = 1 on the last interval (always an ODE step)
        t_back = alpha * t_i
        z_back = alpha * z + (1 - alpha) * noise_scale * eps
        z      = z_back + Euler(from t_back to t_{i+1}) with the model evaluated at (z_back, t_back)

    (The paper's Alg. 6 writes the Euler update from ``z``; we follow the code.) ``gamma = 0`` is the plain Euler
    ODE. Since the grid is fixed after ``set_timesteps``, the model-evaluation sigmas ``1 - t_back`` are precomputed:
    ``self.timesteps[i] = (1 - alpha_i) + alpha_i * self.sigmas[i]``. `scale_model_input` draws ``eps`` and forms
    ``z_back``; `step` does the Euler update from ``self.timesteps[i]`` to ``self.sigmas[i + 1]``.

    **Deviation from `FlowMatchEulerDiscreteScheduler`:** ``self.timesteps`` are sigmas in [0, 1] (float32), *not*
    multiplied by ``num_train_timesteps``; latentlm's denoisers take sigma directly. They are also not necessarily
    monotone (re-injection can step back up to sigma = 1 when ``alpha`` clips to 0).

    Args:
        num_train_timesteps (`int`, defaults to 1000):
            Kept for diffusers compatibility only (``len(scheduler)``); the path is continuous.
        noise_scale (`float`, defaults to 2.0):
            ELF's ``s_n``: the noise end of the path is ``noise_scale * eps``.
        sigma_clamp (`float`, defaults to 0.05):
            ELF's ``t_eps``: the velocity divides by ``max(sigma, sigma_clamp)``. With ``prediction_type="sample"``
            a step that starts below ``sigma_clamp`` therefore moves only ``sigma / sigma_clamp`` of the way to the
            prediction, exactly as ELF's sampler (only happens for fine uniform grids, e.g. > 20 steps).
        prediction_type (`str`, defaults to `"sample"`):
            ``"sample"``: the model outputs x0 (ELF's x-prediction). ``"flow"``: the model outputs the velocity
            ``dz/dsigma = noise_scale * eps - x0`` directly.
        gamma (`float`, defaults to 1.5):
            Re-injection strength (ELF's ``sde_gamma``); 0 gives the pure Euler ODE.
        time_grid (`str`, defaults to `"logit_normal"`):
            ``"logit_normal"``: the ``N - 1`` interior points are the quantiles ``k / N`` (``k = 1..N-1``) of the
            logit-normal law below, plus the endpoints: a **deterministic** grid, the same for every call, seed and
            batch (a saved-and-reloaded scheduler gives identical outputs). ``"logit_normal_random"``: ELF's released
            sampler, ``N - 1`` sorted draws from that law, fresh per `set_timesteps` call; it needs one seeded
            ``torch.Generator`` (a shared grid cannot follow per-sample generators, so a list of several is refused).
            ``"uniform"``: evenly spaced.
        time_grid_mean (`float`, defaults to -1.5), time_grid_std (`float`, defaults to 0.8):
            The logit-normal law **in ELF's convention**: ``t_elf = sigmoid(N(mean, std))``, ``sigma = 1 - t_elf``.
        default_num_inference_steps (`int`, *optional*):
            The steps `set_timesteps` (and the pipeline) use when none are given: a distilled few-step student's
            steps (`ELFConfig.distill_steps`). `None`: the pipeline's usual 32.
    """

    _compatibles = []
    order = 1
    # Before the first `set_timesteps` the scheduler holds the `num_train_timesteps`-step grid (as diffusers' do).

    @register_to_config
    def __init__(
        self,
        num_train_timesteps: int = 1000,
        noise_scale: float = 2.0,
        sigma_clamp: float = 0.05,
        prediction_type: str = "sample",
        gamma: float = 1.5,
        time_grid: str = "logit_normal",
        time_grid_mean: float = -1.5,
        time_grid_std: float = 0.8,
        default_num_inference_steps: int | None = None,
    ):
        if prediction_type not in _PREDICTION_TYPES:
            raise ValueError(f"`prediction_type` must be one of {_PREDICTION_TYPES}, got {prediction_type!r}.")
        if time_grid not in _TIME_GRIDS:
            raise ValueError(f"`time_grid` must be one of {_TIME_GRIDS}, got {time_grid!r}.")
        if (
            isinstance(num_train_timesteps, bool)
            or not isinstance(num_train_timesteps, int)
            or num_train_timesteps < 1
        ):
            raise ValueError(f"`num_train_timesteps` must be a positive integer, got {num_train_timesteps!r}.")
        check_finite("noise_scale", noise_scale, positive=True)
        check_finite("sigma_clamp", sigma_clamp, positive=True, high=1.0)
        check_finite("gamma", gamma, low=0.0)
        check_finite("time_grid_mean", time_grid_mean)
        check_finite("time_grid_std", time_grid_std, positive=True)
        if default_num_inference_steps is not None and (
            isinstance(default_num_inference_steps, bool)
            or not isinstance(default_num_inference_steps, int)
            or default_num_inference_steps < 1
        ):
            raise ValueError(
                f"`default_num_inference_steps` must be a positive integer or None, got {default_num_inference_steps!r}."
            )

        self.num_inference_steps: int | None = None
        self.sigmas: torch.Tensor | None = None
        self.timesteps: torch.Tensor | None = None
        self.alphas: torch.Tensor | None = None
        self._step_index: int | None = None
        self._begin_index: int | None = None
        self._model_input: tuple[int, torch.Tensor] | None = None  # (step index, output of `scale_model_input`)
        with torch.device("cpu"):  # also when built inside a meta-device context (model loading)
            self._set_grid(self._default_grid(num_train_timesteps, generator=None, deterministic=True), device="cpu")

    # ------------------------------------------------------------------ diffusers bookkeeping

    @property
    def init_noise_sigma(self) -> float:
        """Standard deviation of the starting latent (diffusers pipelines draw ``randn * init_noise_sigma``)."""
        return float(self.config.noise_scale)

    # ------------------------------------------------------------------ forward process (training)

    def scale_noise(self, sample: torch.Tensor, sigma: float | torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """
        The forward process: ``(1 - sigma) * sample + sigma * noise_scale * noise``.

        (ELF: ``z = t_elf * x + (1 - t_elf) * s_n * eps`` with ``t_elf = 1 - sigma``.)

        Args:
            sample (`torch.Tensor` of shape `(B, ...)`, e.g. `(B, L, D)`): clean latents x0.
            sigma (`float` or `torch.Tensor` of shape `()`, `(B,)` or `(B, L)`): noise level(s), broadcast over the
                remaining trailing dims. These are sigmas in [0, 1], not indices into ``self.timesteps``.
            noise (`torch.Tensor`, same shape as `sample`): standard normal noise ``eps`` (unscaled).

        Returns:
            `torch.Tensor` of the shape and dtype of `sample`.
        """
        sigma = _expand_sigma(sigma, sample)
        return (1.0 - sigma) * sample + sigma * (self.config.noise_scale * noise.to(sample.dtype))

    def add_noise(
        self, original_samples: torch.Tensor, noise: torch.Tensor, timesteps: float | torch.Tensor
    ) -> torch.Tensor:
        """Alias of [`~FlowMatchEulerSDEScheduler.scale_noise`] with diffusers' argument order; `timesteps` are sigmas."""
        return self.scale_noise(original_samples, timesteps, noise)

    def get_velocity(
        self, pred_original_sample: torch.Tensor, sample: torch.Tensor, sigma: float | torch.Tensor
    ) -> torch.Tensor:
        """
        Velocity ``dz/dsigma`` implied by an x0 prediction: ``(sample - x0) / max(sigma, sigma_clamp)``.

        This is **minus** ELF's ``v = (x - z) / max(1 - t_elf, t_eps)``. The training loss (velocity MSE on x-prediction)
        and the sampler both use it, so their clamping agrees.

        Args:
            pred_original_sample (`torch.Tensor` of shape `(B, ...)`): x0 (predicted or true).
            sample (`torch.Tensor`, same shape): the noisy latent ``z_sigma``.
            sigma (`float` or `torch.Tensor` of shape `()`, `(B,)` or `(B, L)`): its noise level(s).

        Returns:
            `torch.Tensor` of the shape and dtype of `sample`.
        """
        sigma = _expand_sigma(sigma, sample).clamp(min=self.config.sigma_clamp)
        return (sample - pred_original_sample.to(sample.dtype)) / sigma

    def ode_step_coefficients(
        self, sigma: torch.Tensor, sigma_next: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """
        The Euler ODE step (`step` with ``gamma = 0``) from `sigma` to `sigma_next` as an affine map of the latent and
        the x0 prediction:
        ``z_next = a * z + b * x0_hat``, with the velocity of `get_velocity` (``m = max(sigma, sigma_clamp)``)::

            a = 1 + (sigma_next - sigma) / m,        b = (sigma - sigma_next) / m

        Progressive distillation inverts it: the x0 prediction whose one step lands on a given latent.

        Args:
            sigma (`torch.Tensor` of shape `(B,)`), sigma_next (`torch.Tensor` of shape `(B,)`): each row's step.

        Returns:
            `(a, b)`, two `(B,)` tensors.
        """
        clamped = sigma.clamp(min=self.config.sigma_clamp)
        return 1 + (sigma_next - sigma) / clamped, (sigma - sigma_next) / clamped

    # ------------------------------------------------------------------ sampling

    def set_timesteps(
        self,
        num_inference_steps: int | None = None,
        device: str | torch.device | None = None,
        generator: torch.Generator | list[torch.Generator] | None = None,
        sigmas: list[float] | torch.Tensor | None = None,
        timesteps: list[float] | torch.Tensor | None = None,
    ) -> None:
        """
        Build the sigma grid and the model-evaluation sigmas for one sampling run.

        Sets ``self.sigmas`` (`(N + 1,)`, from 1.0 strictly down to 0.0), ``self.alphas`` (`(N,)`, the fraction of the
        latent kept by re-injection at each step, 1 on the last step) and ``self.timesteps`` (`(N,)`, the sigmas at
        which the model is evaluated, float32 in [0, 1]).

        Args:
            num_inference_steps (`int`, *optional*): N, the number of model evaluations. May be omitted when `sigmas`
                is given, or when the config has `default_num_inference_steps` (a distilled student).
            device (`str` or `torch.device`, *optional*): where ``sigmas`` / ``timesteps`` live.
            generator (`torch.Generator`, *optional*): used only by ``time_grid="logit_normal_random"``, which
                requires it (one generator, or a list of one). The default grids are deterministic and ignore it.
            sigmas (`list[float]` or `torch.Tensor`, *optional*): a custom grid, strictly decreasing, starting at 1.0
                and ending at 0.0 (a missing final 0.0 is appended). Overrides `time_grid`.
            timesteps (`list[float]` or `torch.Tensor`, *optional*): the same as `sigmas` without the final 0.0 (the
                sigmas at which each step starts; with ``gamma > 0`` the model is then evaluated at the re-noised
                ``self.timesteps``, which differ from them).
        """
        check_generator(generator)
        if sigmas is not None and timesteps is not None:
            raise ValueError("Pass at most one of `sigmas` and `timesteps`.")
        if timesteps is not None:
            sigmas = timesteps
        if sigmas is not None:
            grid = self._validate_sigmas(sigmas)
            if num_inference_steps is not None and num_inference_steps != len(grid) - 1:
                raise ValueError(
                    f"`num_inference_steps` ({num_inference_steps}) does not match the {len(grid) - 1} steps of `sigmas`."
                )
        else:
            if num_inference_steps is None:
                num_inference_steps = self.config.default_num_inference_steps
            if (
                not isinstance(num_inference_steps, int)
                or isinstance(num_inference_steps, bool)
                or num_inference_steps <= 0
            ):
                raise ValueError(f"`num_inference_steps` must be a positive integer, got {num_inference_steps!r}.")
            grid = self._default_grid(num_inference_steps, generator)
        self._set_grid(grid, device)

    def _set_grid(self, grid: torch.Tensor, device: str | torch.device | None) -> None:
        """Sets ``sigmas``, ``timesteps`` and ``alphas`` from a float32 grid `(N + 1,)` running from 1 to 0."""
        num_steps = len(grid) - 1

        # ELF step i: alpha = clip(1 - gamma * h, 0, 1), t_back = alpha * t_i  =>  sigma_back = 1 - alpha * (1 - sigma_i).
        grid64 = grid.double()
        h = grid64[:-1] - grid64[1:]
        alphas = (1.0 - self.config.gamma * h).clamp(0.0, 1.0)
        alphas[-1] = 1.0
        # Written as (1 - alpha) + alpha * sigma_i so that alpha = 1 reproduces sigma_i exactly.
        eval_sigmas = (1.0 - alphas) + alphas * grid64[:-1]

        self.num_inference_steps = num_steps
        self.sigmas = grid.to(device=device, dtype=torch.float32)
        self.timesteps = eval_sigmas.to(device=device, dtype=torch.float32)
        self.alphas = alphas  # float64, CPU: read as Python floats in `scale_model_input`
        self._step_index = None
        self._begin_index = None
        self._model_input = None

    def _default_grid(
        self,
        num_inference_steps: int,
        generator: torch.Generator | list[torch.Generator] | None,
        deterministic: bool = False,
    ) -> torch.Tensor:
        """The `(N + 1,)` float32 grid of `time_grid` (`deterministic`: the quantile grid for both logit-normals)."""
        time_grid = self.config.time_grid
        if time_grid == "uniform":
            grid = torch.linspace(1.0, 0.0, num_inference_steps + 1, dtype=torch.float32)
        elif time_grid == "logit_normal" or (time_grid == "logit_normal_random" and deterministic):
            # Quantile k / N of t_elf = sigmoid(N(mean, std)), k = 1..N-1: increasing t_elf, decreasing sigma.
            levels = torch.arange(1, num_inference_steps, dtype=torch.float64) / num_inference_steps
            normal = torch.special.ndtri(levels)
            t_elf = torch.sigmoid(normal * self.config.time_grid_std + self.config.time_grid_mean)
            grid = torch.cat([torch.ones(1), (1.0 - t_elf).float(), torch.zeros(1)])
        elif time_grid == "logit_normal_random":
            generator = self._grid_generator(generator)
            normal = torch.randn(num_inference_steps - 1, generator=generator, device=generator.device).cpu()
            t_elf = torch.sigmoid(normal * self.config.time_grid_std + self.config.time_grid_mean)
            interior = torch.sort(1.0 - t_elf, descending=True).values
            grid = torch.cat([torch.ones(1), interior, torch.zeros(1)])
        else:
            raise ValueError(f"`time_grid` must be one of {_TIME_GRIDS}, got {time_grid!r}.")
        grid[0], grid[-1] = 1.0, 0.0
        if not bool((grid[1:] < grid[:-1]).all()):
            raise ValueError(
                f"`num_inference_steps={num_inference_steps}` is too many for a float32 `{time_grid}` grid: two grid "
                "points coincide. Use fewer steps or `time_grid='uniform'`."
            )
        return grid

    @staticmethod
    def _grid_generator(generator) -> torch.Generator:
        check_generator(generator)
        if isinstance(generator, (list, tuple)):
            if len(generator) != 1:
                raise ValueError(
                    '`time_grid="logit_normal_random"` draws one grid for the whole batch, so it takes one '
                    f'`generator`, got a list of {len(generator)}; use the deterministic `time_grid="logit_normal"` '
                    "for per-sample generators."
                )
            generator = generator[0]
        if generator is None:
            raise ValueError(
                '`time_grid="logit_normal_random"` needs a seeded `generator` in `set_timesteps` (it never draws from '
                'the global RNG); use `time_grid="logit_normal"` for the deterministic grid.'
            )
        return generator

    @staticmethod
    def _validate_sigmas(sigmas: list[float] | torch.Tensor) -> torch.Tensor:
        grid = torch.as_tensor(sigmas, dtype=torch.float32).detach().cpu().flatten()
        if len(grid) == 0:
            raise ValueError("`sigmas` must not be empty.")
        if grid[-1] != 0.0:
            grid = torch.cat([grid, torch.zeros(1)])
        if len(grid) < 2 or grid[0] != 1.0:
            raise ValueError(f"`sigmas` must start at 1.0 (pure noise), got {grid[0].item()}.")
        if not bool((grid[1:] < grid[:-1]).all()):
            raise ValueError("`sigmas` must be strictly decreasing from 1.0 to 0.0.")
        return grid

    def scale_model_input(
        self,
        sample: torch.Tensor,
        timestep: float | torch.Tensor,
        generator: torch.Generator | list[torch.Generator] | None = None,
    ) -> torch.Tensor:
        """
        Re-inject noise for the current step: ``alpha * sample + (1 - alpha) * noise_scale * eps``.

        Moves the latent from the grid sigma ``self.sigmas[i]`` up to the model-evaluation sigma
        ``self.timesteps[i]``. Returns `sample` itself (and draws nothing) when ``alpha == 1``, i.e. for
        ``gamma = 0`` and on the last step. Call it exactly once per step, before the model, and pass its output to
        `step`: with ``gamma > 0`` `step` raises if it gets anything else (the Euler update starts from the re-noised
        latent, so a diffusers-style loop that passes its own `latents` would be silently wrong).

        Args:
            sample (`torch.Tensor` of shape `(B, ...)`): the latent at ``self.sigmas[i]``.
            timestep (`float` or `torch.Tensor`): the current entry of ``self.timesteps``.
            generator (`torch.Generator` or list of `B` generators, *optional*): draws ``eps`` (diffusers'
                `randn_tensor`; a list seeds each batch row separately).

        Returns:
            `torch.Tensor` of the shape and dtype of `sample`: the model input at sigma ``self.timesteps[i]``.
        """
        index = self._current_index(timestep, "scale_model_input")
        check_generator(generator, sample.shape[0] if isinstance(generator, (list, tuple)) else None)
        alpha = self.alphas[index].item()
        if alpha == 1.0:
            return sample
        eps = randn_tensor(sample.shape, generator=generator, device=sample.device, dtype=torch.float32)
        z_back = (alpha * sample.to(torch.float32) + (1.0 - alpha) * self.config.noise_scale * eps).to(sample.dtype)
        self._model_input = (index, z_back)
        return z_back

    def step(
        self,
        model_output: torch.Tensor,
        timestep: float | torch.Tensor,
        sample: torch.Tensor,
        *,
        generator: torch.Generator | list[torch.Generator] | None = None,
        return_dict: bool = True,
    ) -> FlowMatchEulerSDESchedulerOutput | tuple[torch.Tensor, torch.Tensor]:
        """
        Euler step from the model-evaluation sigma ``self.timesteps[i]`` to the next grid sigma ``self.sigmas[i + 1]``.

        ``prev_sample = sample + (sigma_next - sigma) * velocity``, with the velocity from
        [`~FlowMatchEulerSDEScheduler.get_velocity`] (``prediction_type="sample"``) or `model_output` itself
        (``"flow"``). Computed in float32; `prev_sample` is cast back to the dtype of `sample`.

        Args:
            model_output (`torch.Tensor` of shape `(B, ...)`): x0 prediction (``"sample"``) or velocity (``"flow"``).
            timestep (`float` or `torch.Tensor`): the current entry of ``self.timesteps`` (a sigma, not an index).
            sample (`torch.Tensor`, same shape): the model input returned by `scale_model_input` for this step.
            generator: unused (the step is deterministic); accepted so every scheduler shares one loop.
            return_dict (`bool`, defaults to `True`): return a [`FlowMatchEulerSDESchedulerOutput`] or a tuple
                ``(prev_sample, pred_original_sample)``.
        """
        index = self._current_index(timestep, "step")
        if self.alphas[index].item() != 1.0:
            self._check_model_input(index, sample)
        sample_dtype = sample.dtype
        sample32 = sample.to(torch.float32)
        output32 = model_output.to(torch.float32)
        sigma = self.timesteps[index].to(device=sample.device, dtype=torch.float32)
        sigma_next = self.sigmas[index + 1].to(device=sample.device, dtype=torch.float32)

        if self.config.prediction_type == "sample":
            pred_original_sample = output32
            velocity = self.get_velocity(output32, sample32, sigma)
        else:
            velocity = output32
            pred_original_sample = sample32 - sigma * velocity
        prev_sample = sample32 + (sigma_next - sigma) * velocity

        self._step_index += 1
        self._model_input = None
        prev_sample = prev_sample.to(sample_dtype)
        pred_original_sample = pred_original_sample.to(model_output.dtype)
        if not return_dict:
            return (prev_sample, pred_original_sample)
        return FlowMatchEulerSDESchedulerOutput(prev_sample=prev_sample, pred_original_sample=pred_original_sample)

    def _check_model_input(self, index: int, sample: torch.Tensor) -> None:
        """With re-injection the step must start from this step's `scale_model_input` output (see its docstring)."""
        if self._model_input is None or self._model_input[0] != index:
            raise ValueError(
                f"`gamma={self.config.gamma}` re-injects noise: call `scale_model_input(latents, t)` before `step` at "
                "every step and pass its output to `step` as `sample` (or use `gamma=0`)."
            )
        expected = self._model_input[1]
        if sample is not expected and not (sample.shape == expected.shape and torch.equal(sample, expected)):
            raise ValueError(
                f"`sample` passed to `step` is not the output of `scale_model_input` for this step; with "
                f"`gamma={self.config.gamma}` the Euler update starts from the re-noised latent it returned."
            )
