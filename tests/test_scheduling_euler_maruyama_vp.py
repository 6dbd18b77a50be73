"""EulerMaruyamaVPScheduler: Cosmos' VP "tan" process and its samplers. Analytic checks, CPU, tiny tensors."""

import math

import pytest
import torch
from diffusers.utils.torch_utils import randn_tensor

from latentlm.schedulers import EulerMaruyamaVPScheduler, EulerMaruyamaVPSchedulerOutput


SHAPE = (2, 5, 8)  # (batch, seq_len, latent_dim)


def _data(seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(SHAPE, generator=g, dtype=dtype), torch.randn(SHAPE, generator=g, dtype=dtype)


def _gaussian_x0(scheduler, x, t, data_var):
    """E[x0 | x_t = x] for data x0 ~ N(0, data_var I): alpha s^2 x / (alpha^2 s^2 + sigma^2)."""
    alpha, sigma = scheduler.alpha_sigma(t)
    alpha, sigma = alpha.to(x.dtype), sigma.to(x.dtype)
    return alpha * data_var * x / (alpha**2 * data_var + sigma**2)


def _marginal_var(scheduler, t, data_var):
    alpha, sigma = scheduler.alpha_sigma(torch.as_tensor(t, dtype=torch.float64))
    return (alpha**2 * data_var + sigma**2).item()


def _run(scheduler, x, model, generator=None):
    """The shared pipeline loop with a stand-in `model(x, t) -> x0_hat`."""
    for t in scheduler.timesteps:
        model_input = scheduler.scale_model_input(x, t, generator=generator)
        x = scheduler.step(model(model_input, t), t, model_input, generator=generator).prev_sample
    return x


# ---------------------------------------------------------------- schedule


def test_schedule_endpoints():
    scheduler = EulerMaruyamaVPScheduler()
    for dtype in (torch.float32, torch.float64):
        alpha, sigma = scheduler.alpha_sigma(torch.tensor([0.0, 1.0], dtype=dtype))
        assert alpha.dtype == sigma.dtype == dtype
        assert alpha[0] == 1.0 and sigma[0] == 0.0
        assert 0.0 <= alpha[1] < 1e-6 and sigma[1] == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("d", [0.5, 1.0, 5.0, 20.0])
def test_schedule_is_variance_preserving_and_monotone(d):
    scheduler = EulerMaruyamaVPScheduler(schedule_d=d)
    t = torch.linspace(0, 1, 101, dtype=torch.float64)
    alpha, sigma = scheduler.alpha_sigma(t)
    torch.testing.assert_close(alpha**2 + sigma**2, torch.ones_like(t))
    assert bool((alpha[1:] < alpha[:-1]).all()) and bool((sigma[1:] > sigma[:-1]).all())
    assert bool(((alpha >= 0) & (alpha <= 1) & (sigma >= 0) & (sigma <= 1)).all())
    # the defining formula, away from t = 1 where tan blows up
    tan = torch.tan(math.pi * t[:-1] / 2)
    torch.testing.assert_close(alpha[:-1], 1 / torch.sqrt(1 + d**2 * tan**2))


def test_d_equal_one_is_the_cosine_schedule():
    scheduler = EulerMaruyamaVPScheduler(schedule_d=1.0)
    t = torch.linspace(0, 1, 21, dtype=torch.float64)
    alpha, sigma = scheduler.alpha_sigma(t)
    torch.testing.assert_close(alpha, torch.cos(math.pi * t / 2))
    torch.testing.assert_close(sigma, torch.sin(math.pi * t / 2))


def test_sigma_is_accurate_near_data_in_float32():
    # sqrt(1 - alpha^2) would cancel to 0 or ~2e-4 in float32 at t = 1e-5; sigma ~ d * pi t / 2 there
    scheduler = EulerMaruyamaVPScheduler(schedule_d=5.0)
    _, sigma = scheduler.alpha_sigma(torch.tensor(1e-5))
    assert sigma.item() == pytest.approx(5.0 * math.pi * 1e-5 / 2, rel=1e-4)


def test_beta_is_minus_derivative_of_log_alpha_squared_below_the_clip():
    scheduler = EulerMaruyamaVPScheduler(schedule_d=5.0, beta_clip_t=0.95)
    t = torch.linspace(0.02, 0.93, 40, dtype=torch.float64)
    h = 1e-6

    def log_alpha2(tt):
        return 2 * torch.log(scheduler.alpha_sigma(tt)[0])

    finite_difference = -(log_alpha2(t + h) - log_alpha2(t - h)) / (2 * h)
    torch.testing.assert_close(scheduler.beta(t), finite_difference, rtol=1e-6, atol=0)
    assert scheduler.beta(torch.tensor(0.0, dtype=torch.float64)).item() == 0.0


def test_beta_is_clipped_above_beta_clip_t():
    scheduler = EulerMaruyamaVPScheduler(schedule_d=5.0, beta_clip_t=0.95)
    at_clip = scheduler.beta(torch.tensor(0.95))
    above = scheduler.beta(torch.tensor([0.96, 0.99, 1.0]))
    assert bool(torch.isfinite(above).all())
    torch.testing.assert_close(above, at_clip.expand(3))
    # Cosmos' value there: pi d^2 tan (1 + tan^2) / (1 + d^2 tan^2) at t = 0.95
    tan = math.tan(math.pi * 0.95 / 2)
    assert at_clip.item() == pytest.approx(math.pi * 25 * tan * (1 + tan**2) / (1 + 25 * tan**2), rel=1e-5)


# ---------------------------------------------------------------- forward process and score


def test_add_noise_endpoints_and_broadcast():
    scheduler = EulerMaruyamaVPScheduler()
    x0, noise = _data()
    assert torch.equal(scheduler.add_noise(x0, noise, 0.0), x0)
    torch.testing.assert_close(scheduler.add_noise(x0, noise, 1.0), noise, atol=1e-6, rtol=0)
    # per-example t of shape (B,) broadcasts over (L, D)
    t = torch.tensor([0.3, 0.7])
    alpha, sigma = scheduler.alpha_sigma(t)
    out = scheduler.add_noise(x0, noise, t)
    for b in range(2):
        torch.testing.assert_close(out[b], alpha[b] * x0[b] + sigma[b] * noise[b])
    bf16 = scheduler.add_noise(x0.bfloat16(), noise.bfloat16(), t)
    assert bf16.dtype == torch.bfloat16


def test_score_from_sample_matches_analytic_scores():
    scheduler = EulerMaruyamaVPScheduler()
    x0, noise = _data(dtype=torch.float64)
    t = torch.tensor([0.2, 0.8], dtype=torch.float64)
    x_t = scheduler.add_noise(x0, noise, t)
    # with the true x0 the conditional score is -eps / sigma
    _, sigma = scheduler.alpha_sigma(t)
    torch.testing.assert_close(scheduler.score_from_sample(x0, x_t, t), -noise / sigma[:, None, None])
    # with E[x0 | x_t] of Gaussian data N(0, s^2) it is the marginal score -x / (alpha^2 s^2 + sigma^2)
    data_var = 0.25
    x0_hat = _gaussian_x0(scheduler, x_t, t[:, None, None], data_var)
    marginal_var = torch.tensor([_marginal_var(scheduler, tt, data_var) for tt in t], dtype=torch.float64)
    torch.testing.assert_close(scheduler.score_from_sample(x0_hat, x_t, t), -x_t / marginal_var[:, None, None])


def test_sample_training_timesteps_is_uniform_above_training_t_min():
    scheduler = EulerMaruyamaVPScheduler(training_t_min=1e-5)
    t = scheduler.sample_training_timesteps(6, generator=torch.Generator().manual_seed(3))
    u = torch.rand(6, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(t, u * (1 - 1e-5) + 1e-5)
    assert t.shape == (6,) and t.dtype == torch.float32
    many = scheduler.sample_training_timesteps(4000, generator=torch.Generator().manual_seed(0))
    assert bool(((many >= 1e-5) & (many < 1)).all()) and many.mean().item() == pytest.approx(0.5, abs=0.02)
    # a list seeds each example separately
    rows = scheduler.sample_training_timesteps(2, generator=[torch.Generator().manual_seed(s) for s in (1, 2)])
    single = scheduler.sample_training_timesteps(1, generator=[torch.Generator().manual_seed(2)])
    torch.testing.assert_close(rows[1:], single)


# ---------------------------------------------------------------- grid


@pytest.mark.parametrize(("t_max", "num_steps"), [(1.0, 1), (1.0, 4), (1.0, 200), (0.9, 7)])
def test_grid(t_max, num_steps):
    scheduler = EulerMaruyamaVPScheduler(t_min=0.05, t_max=t_max)
    scheduler.set_timesteps(num_steps)
    timesteps, grid = scheduler.timesteps, scheduler.time_grid
    assert timesteps.shape == (num_steps,) and grid.shape == (num_steps + 1,)
    assert timesteps.dtype == grid.dtype == torch.float32
    assert timesteps[0].item() == pytest.approx(t_max) and grid[-1].item() == pytest.approx(0.05)
    assert torch.equal(grid[:-1], timesteps)  # step i goes from timesteps[i] to time_grid[i + 1]
    torch.testing.assert_close(grid[:-1] - grid[1:], torch.full((num_steps,), (t_max - 0.05) / num_steps))


def test_cosmos_defaults():
    scheduler = EulerMaruyamaVPScheduler()
    assert scheduler.config.solver == "euler_maruyama" and scheduler.config.schedule_d == 5.0
    assert scheduler.config.t_min == 0.05 and scheduler.config.t_max == 1.0 and scheduler.config.beta_clip_t == 0.95
    assert scheduler.init_noise_sigma == 1.0 and scheduler.order == 1
    z = torch.randn(SHAPE)
    assert scheduler.scale_model_input(z, torch.tensor(1.0)) is z


# ---------------------------------------------------------------- one step = the documented update


def test_one_step_of_each_solver_is_the_documented_update():
    x0_hat, x = _data(dtype=torch.float64)
    d, i = 5.0, 3

    def grid_point(scheduler, k):
        return scheduler.time_grid[k].double().item()

    for solver in ("euler_maruyama", "probability_flow", "ddim"):
        scheduler = EulerMaruyamaVPScheduler(schedule_d=d, solver=solver)
        scheduler.set_timesteps(10)
        t, t_next = grid_point(scheduler, i), grid_point(scheduler, i + 1)
        tan, tan_next = math.tan(math.pi * t / 2), math.tan(math.pi * t_next / 2)
        alpha, alpha_next = 1 / math.sqrt(1 + d**2 * tan**2), 1 / math.sqrt(1 + d**2 * tan_next**2)
        sigma, sigma_next = math.sqrt(1 - alpha**2), math.sqrt(1 - alpha_next**2)
        beta = math.pi * d**2 * tan * (1 + tan**2) / (1 + d**2 * tan**2)
        dt = t_next - t
        score = -(x - alpha * x0_hat) / sigma**2

        scheduler.set_begin_index(i)
        out = scheduler.step(x0_hat, scheduler.timesteps[i], x, generator=torch.Generator().manual_seed(5))
        if solver == "euler_maruyama":
            z = randn_tensor(SHAPE, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
            expected = x + (-0.5 * beta * x - beta * score) * dt + math.sqrt(beta) * math.sqrt(-dt) * z
        elif solver == "probability_flow":
            expected = x + (-0.5 * beta * x - 0.5 * beta * score) * dt
        else:
            expected = alpha_next * x0_hat + sigma_next * (x - alpha * x0_hat) / sigma
        torch.testing.assert_close(out.prev_sample, expected)
        assert out.pred_original_sample is x0_hat
        assert scheduler.step_index == i + 1


@pytest.mark.parametrize("solver", ["probability_flow", "ddim"])
def test_ode_step_coefficients_are_the_deterministic_step_written_as_a_x_plus_b_x0(solver):
    # Progressive distillation inverts `x_next = a x + b x0_hat`: it must be exactly what `step` does.
    x0_hat, x = _data(dtype=torch.float64)
    scheduler = EulerMaruyamaVPScheduler(solver=solver)
    scheduler.set_timesteps(7)
    scheduler.set_begin_index(2)
    stepped = scheduler.step(x0_hat, scheduler.timesteps[2], x).prev_sample
    t, t_next = scheduler.time_grid[2:4].double()
    a, b = scheduler.ode_step_coefficients(t.expand(2), t_next.expand(2))
    torch.testing.assert_close(a[:, None, None] * x + b[:, None, None] * x0_hat, stepped)


def test_ode_step_coefficients_refuse_the_stochastic_solver_by_name():
    with pytest.raises(ValueError, match="euler_maruyama"):
        EulerMaruyamaVPScheduler().ode_step_coefficients(torch.tensor([0.5]), torch.tensor([0.4]))


def test_default_num_inference_steps_is_the_grid_of_a_call_without_steps():
    scheduler = EulerMaruyamaVPScheduler(solver="ddim", default_num_inference_steps=5)
    scheduler.set_timesteps()
    assert len(scheduler.timesteps) == 5
    scheduler.set_timesteps(3)
    assert len(scheduler.timesteps) == 3
    with pytest.raises(ValueError, match="default_num_inference_steps"):
        EulerMaruyamaVPScheduler(default_num_inference_steps=0)


def test_last_euler_maruyama_step_returns_the_mean_without_noise():
    scheduler = EulerMaruyamaVPScheduler()
    scheduler.set_timesteps(5)
    x0_hat, x = _data()

    def step(index, seed):
        scheduler.set_timesteps(5)
        scheduler.set_begin_index(index)
        generator = torch.Generator().manual_seed(seed)
        state = generator.get_state()
        out = scheduler.step(x0_hat, scheduler.timesteps[index], x, generator=generator).prev_sample
        return out, torch.equal(generator.get_state(), state)

    (last_1, untouched_1), (last_2, untouched_2) = step(4, seed=1), step(4, seed=2)
    assert torch.equal(last_1, last_2) and untouched_1 and untouched_2  # no noise drawn on the last step
    # it is x_mean = x + (-1/2 beta x - beta score) dt, with t_next = t_min
    t = scheduler.timesteps[-1]
    beta, score, dt = scheduler.beta(t), scheduler.score_from_sample(x0_hat, x, t), scheduler.time_grid[-1] - t
    torch.testing.assert_close(last_1, x + (-0.5 * beta * x - beta * score) * dt)
    # earlier steps are stochastic
    (first_1, untouched_1), (first_2, _) = step(0, seed=1), step(0, seed=2)
    assert not untouched_1 and not torch.allclose(first_1, first_2)


# ---------------------------------------------------------------- sampling with exact denoisers


def test_ddim_with_exact_x0_of_a_point_mass_stays_on_the_noising_path():
    scheduler = EulerMaruyamaVPScheduler(solver="ddim")
    scheduler.set_timesteps(8)
    x0, eps = _data(dtype=torch.float64)
    x = scheduler.add_noise(x0, eps, scheduler.timesteps[0])
    for i, t in enumerate(scheduler.timesteps):
        x = scheduler.step(x0, t, x).prev_sample
        torch.testing.assert_close(x, scheduler.add_noise(x0, eps, scheduler.time_grid[i + 1]))


def test_euler_maruyama_with_exact_x0_of_gaussian_data_reaches_the_marginal_variance():
    # data x0 ~ N(0, s^2); with the exact E[x0 | x_t] the reverse SDE must end at Var x_{t_min} = alpha^2 s^2 + sigma^2.
    # The last step returns the mean, i.e. x_{t_min} minus independent noise of variance beta(t_N-1) |dt|: add it back.
    data_var, num_steps = 0.25, 1000
    scheduler = EulerMaruyamaVPScheduler()
    scheduler.set_timesteps(num_steps)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(4000, 8, generator=generator)

    out = _run(scheduler, x, lambda z, t: _gaussian_x0(scheduler, z, t, data_var), generator=generator)

    t_last, t_min = scheduler.timesteps[-1], scheduler.time_grid[-1]
    omitted_noise_var = (scheduler.beta(t_last) * (t_last - t_min)).item()
    target = _marginal_var(scheduler, t_min, data_var)
    # Euler bias ~0.7% at 1000 steps, sampling error ~0.8% (1 sd) for 32000 values
    assert out.var().item() + omitted_noise_var == pytest.approx(target, rel=0.03)
    assert out.mean().item() == pytest.approx(0.0, abs=0.03)


def test_probability_flow_with_exact_x0_of_gaussian_data_keeps_the_marginal_variance():
    data_var, num_steps = 0.25, 1000
    scheduler = EulerMaruyamaVPScheduler(solver="probability_flow")
    scheduler.set_timesteps(num_steps)
    x = torch.randn(256, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    x = (x - x.mean()) / x.std()  # exactly unit variance: the ODE is linear here, so only the Euler bias remains
    x = x * math.sqrt(_marginal_var(scheduler, scheduler.timesteps[0], data_var))

    out = _run(scheduler, x, lambda z, t: _gaussian_x0(scheduler, z, t, data_var))

    target = _marginal_var(scheduler, scheduler.time_grid[-1], data_var)
    assert out.var().item() == pytest.approx(target, rel=0.01)  # Euler bias ~0.35% at 1000 steps


# ---------------------------------------------------------------- randomness


def test_seeded_sampling_is_deterministic():
    scheduler = EulerMaruyamaVPScheduler()
    x0_hat, noise = _data()

    def sample(seed):
        scheduler.set_timesteps(6)
        return _run(scheduler, noise, lambda z, t: x0_hat, generator=torch.Generator().manual_seed(seed))

    assert torch.equal(sample(0), sample(0))
    assert not torch.allclose(sample(0), sample(1))


def test_per_row_generators():
    scheduler = EulerMaruyamaVPScheduler()
    x0_hat, x = _data()
    scheduler.set_timesteps(4)
    batched = scheduler.step(
        x0_hat, scheduler.timesteps[0], x, generator=[torch.Generator().manual_seed(s) for s in (1, 2)]
    ).prev_sample
    scheduler.set_timesteps(4)
    single = scheduler.step(
        x0_hat[1:], scheduler.timesteps[0], x[1:], generator=[torch.Generator().manual_seed(2)]
    ).prev_sample
    torch.testing.assert_close(batched[1:], single)


# ---------------------------------------------------------------- diffusers plumbing


def test_config_round_trip(tmp_path):
    scheduler = EulerMaruyamaVPScheduler(schedule_d=3.0, t_min=0.1, solver="probability_flow")
    scheduler.save_config(tmp_path)
    loaded = EulerMaruyamaVPScheduler.from_pretrained(tmp_path)
    copied = EulerMaruyamaVPScheduler.from_config(scheduler.config)

    def public(config):
        return {k: v for k, v in config.items() if not k.startswith("_")}

    assert public(loaded.config) == public(scheduler.config) == public(copied.config)
    ddim = EulerMaruyamaVPScheduler.from_config(scheduler.config, solver="ddim")
    assert ddim.config.solver == "ddim" and ddim.config.schedule_d == 3.0 and ddim.config.t_min == 0.1
    for other in (loaded, copied, ddim):
        other.set_timesteps(4)
        scheduler.set_timesteps(4)
        assert torch.equal(other.timesteps, scheduler.timesteps)


def test_return_dict_and_tuple_agree_and_dtype_is_kept():
    scheduler = EulerMaruyamaVPScheduler()
    x0_hat, x = _data()
    scheduler.set_timesteps(3)
    out = scheduler.step(x0_hat, scheduler.timesteps[0], x, generator=torch.Generator().manual_seed(0))
    scheduler.set_timesteps(3)
    prev, pred = scheduler.step(
        x0_hat, scheduler.timesteps[0], x, generator=torch.Generator().manual_seed(0), return_dict=False
    )
    assert isinstance(out, EulerMaruyamaVPSchedulerOutput)
    assert torch.equal(out.prev_sample, prev) and torch.equal(out.pred_original_sample, pred)
    scheduler.set_timesteps(3)
    bf16 = scheduler.step(x0_hat.bfloat16(), scheduler.timesteps[0], x.bfloat16())
    assert bf16.prev_sample.dtype == bf16.pred_original_sample.dtype == torch.bfloat16


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"schedule_d": 0.0}, "schedule_d"),
        ({"schedule_d": -1.0}, "schedule_d"),
        ({"t_min": 0.0}, "t_min"),
        ({"t_min": 0.5, "t_max": 0.4}, "t_min"),
        ({"t_max": 1.5}, "t_max"),
        ({"t_max": 0.0}, "t_max"),
        ({"beta_clip_t": 1.0}, "beta_clip_t"),
        ({"beta_clip_t": 0.0}, "beta_clip_t"),
        ({"solver": "heun"}, "solver"),
        ({"prediction_type": "epsilon"}, "prediction_type"),
        ({"training_t_min": 1.0}, "training_t_min"),
        ({"training_t_min": -0.1}, "training_t_min"),
    ],
)
def test_bad_config_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        EulerMaruyamaVPScheduler(**kwargs)


@pytest.mark.parametrize("num_steps", [0, -3, 2.0, None])
def test_bad_num_inference_steps(num_steps):
    with pytest.raises(ValueError, match="num_inference_steps"):
        EulerMaruyamaVPScheduler().set_timesteps(num_steps)


def test_bad_sample_training_timesteps_arguments():
    scheduler = EulerMaruyamaVPScheduler()
    with pytest.raises(ValueError, match="batch_size"):
        scheduler.sample_training_timesteps(0)
    with pytest.raises(ValueError, match="generator"):
        scheduler.sample_training_timesteps(3, generator=[torch.Generator(), torch.Generator()])


def test_step_misuse_is_rejected():
    scheduler = EulerMaruyamaVPScheduler()
    z = torch.zeros(SHAPE)
    assert len(scheduler.timesteps) == len(scheduler) == 1000  # a grid before `set_timesteps`, as diffusers
    scheduler.set_timesteps(2)
    with pytest.raises(ValueError, match="integer"):
        scheduler.step(z, 0, z)
    with pytest.raises(ValueError, match="not one of"):
        scheduler.step(z, torch.tensor(0.5), z)
    for t in scheduler.timesteps:
        z = scheduler.step(z, t, z).prev_sample
    with pytest.raises(ValueError, match="set_timesteps"):
        scheduler.step(z, scheduler.timesteps[0], z)
