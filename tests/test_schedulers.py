"""FlowMatchEulerSDEScheduler: ELF's linear path, Euler / re-injection sampler. Analytic checks, CPU, tiny tensors."""

import pytest
import torch
from diffusers import FlowMatchEulerDiscreteScheduler
from diffusers.utils.torch_utils import randn_tensor

from latentlm.schedulers import (
    FlowMatchEulerSDEScheduler,
    FlowMatchEulerSDESchedulerOutput,
    sample_training_sigmas,
)


SHAPE = (2, 5, 8)  # (batch, seq_len, latent_dim)


def _data(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(SHAPE, generator=g), torch.randn(SHAPE, generator=g)


def _sample_with_exact_x0(scheduler, x0, noise, generator=None):
    """Run the shared pipeline loop with a 'model' that always predicts the true x0."""
    latents = scheduler.init_noise_sigma * noise
    for t in scheduler.timesteps:
        model_input = scheduler.scale_model_input(latents, t, generator=generator)
        latents = scheduler.step(x0, t, model_input, generator=generator).prev_sample
    return latents


# ---------------------------------------------------------------- forward process


def test_scale_noise_endpoints():
    scheduler = FlowMatchEulerSDEScheduler(noise_scale=2.0)
    x0, noise = _data()
    assert torch.equal(scheduler.scale_noise(x0, 0.0, noise), x0)
    assert torch.equal(scheduler.scale_noise(x0, 1.0, noise), 2.0 * noise)
    # per-example sigma of shape (B,) broadcasts over (L, D)
    out = scheduler.scale_noise(x0, torch.tensor([0.0, 1.0]), noise)
    assert torch.equal(out[0], x0[0]) and torch.equal(out[1], 2.0 * noise[1])
    # add_noise is the diffusers-order alias
    sigma = torch.tensor([0.3, 0.7])
    assert torch.equal(scheduler.add_noise(x0, noise, sigma), scheduler.scale_noise(x0, sigma, noise))


def test_get_velocity_is_path_derivative_and_clamped():
    scheduler = FlowMatchEulerSDEScheduler(noise_scale=2.0, sigma_clamp=0.05)
    x0, noise = _data()
    sigma = torch.tensor([0.3, 0.8])
    z = scheduler.scale_noise(x0, sigma, noise)
    # dz/dsigma of (1 - sigma) x0 + sigma s_n eps is s_n eps - x0 (minus ELF's v = x - s_n eps)
    torch.testing.assert_close(scheduler.get_velocity(x0, z, sigma), 2.0 * noise - x0)
    # below sigma_clamp the denominator is sigma_clamp (ELF's t_eps)
    z_small = scheduler.scale_noise(x0, 0.01, noise)
    torch.testing.assert_close(scheduler.get_velocity(x0, z_small, 0.01), (z_small - x0) / 0.05)


def test_sample_training_sigmas_is_logit_normal_in_elf_time():
    sigmas = sample_training_sigmas(4, mean=-1.5, std=0.8, generator=torch.Generator().manual_seed(3))
    normal = torch.randn(4, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(sigmas, 1.0 - torch.sigmoid(normal * 0.8 - 1.5))
    assert sigmas.shape == (4,) and bool(((sigmas > 0) & (sigmas < 1)).all())


# ---------------------------------------------------------------- Euler with the exact x0 recovers the data


@pytest.mark.parametrize("time_grid", ["uniform", "logit_normal"])
@pytest.mark.parametrize("gamma", [0.0, 1.5])
def test_exact_x0_prediction_recovers_data(time_grid, gamma):
    scheduler = FlowMatchEulerSDEScheduler(time_grid=time_grid, gamma=gamma)
    scheduler.set_timesteps(10, generator=torch.Generator().manual_seed(0))
    x0, noise = _data()
    # with gamma > 0 re-injection moves z off the first trajectory, but the last step is an ODE step from the exact x0
    out = _sample_with_exact_x0(scheduler, x0, noise, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(out, x0, atol=1e-5, rtol=0)


def test_exact_velocity_keeps_ode_on_the_straight_path():
    scheduler = FlowMatchEulerSDEScheduler(time_grid="uniform", gamma=0.0, prediction_type="flow")
    scheduler.set_timesteps(4)
    x0, noise = _data()
    latents = scheduler.scale_noise(x0, 1.0, noise)
    for i, t in enumerate(scheduler.timesteps):
        latents = scheduler.step(2.0 * noise - x0, t, latents).prev_sample
        torch.testing.assert_close(latents, scheduler.scale_noise(x0, scheduler.sigmas[i + 1], noise))


def test_last_step_below_sigma_clamp_is_partial_as_in_elf():
    # A grid finer than sigma_clamp: the final step from sigma = 0.02 moves 0.02 / 0.05 of the way to x0.
    scheduler = FlowMatchEulerSDEScheduler(gamma=0.0, sigma_clamp=0.05)
    scheduler.set_timesteps(sigmas=[1.0, 0.5, 0.02])
    x0, noise = _data()
    scheduler.set_begin_index(2)
    z = scheduler.scale_noise(x0, 0.02, noise)
    out = scheduler.step(x0, scheduler.timesteps[2], z).prev_sample
    torch.testing.assert_close(out, z + (0.02 / 0.05) * (x0 - z))


@pytest.mark.parametrize("step", [1, 2])  # an ordinary step, and the last one from sigma = 0.02 < sigma_clamp
def test_ode_step_coefficients_are_the_euler_step_written_as_a_z_plus_b_x0(step):
    # Progressive distillation inverts `z_next = a z + b x0_hat`: it must be exactly what `step` does without gamma.
    scheduler = FlowMatchEulerSDEScheduler(gamma=0.0, sigma_clamp=0.05)
    scheduler.set_timesteps(sigmas=[1.0, 0.5, 0.02])
    x0_hat, z = _data()
    scheduler.set_begin_index(step)
    stepped = scheduler.step(x0_hat, scheduler.timesteps[step], z).prev_sample
    a, b = scheduler.ode_step_coefficients(scheduler.sigmas[step].expand(2), scheduler.sigmas[step + 1].expand(2))
    torch.testing.assert_close(a[:, None, None] * z + b[:, None, None] * x0_hat, stepped)


# ---------------------------------------------------------------- same maths as diffusers' Euler


@pytest.mark.parametrize("prediction_type", ["sample", "flow"])
def test_ode_step_matches_diffusers_flow_match_euler(prediction_type):
    ours = FlowMatchEulerSDEScheduler(gamma=0.0, prediction_type=prediction_type)
    ours.set_timesteps(6, generator=torch.Generator().manual_seed(0))
    theirs = FlowMatchEulerDiscreteScheduler()
    theirs.set_timesteps(sigmas=ours.sigmas[:-1].tolist())
    torch.testing.assert_close(theirs.sigmas, ours.sigmas)
    torch.testing.assert_close(theirs.timesteps / 1000, ours.timesteps)

    x0, noise = _data()
    z_ours = z_theirs = 2.0 * noise
    for t_ours, t_theirs in zip(ours.timesteps, theirs.timesteps):
        x0_hat = torch.tanh(z_ours) * (1 - t_ours)  # any deterministic stand-in for a denoiser
        velocity = (z_ours - x0_hat) / t_ours  # dz/dsigma, the "noise - x0" output diffusers expects
        model_output = x0_hat if prediction_type == "sample" else velocity
        z_ours = ours.step(model_output, t_ours, z_ours).prev_sample
        z_theirs = theirs.step(velocity, t_theirs, z_theirs).prev_sample
        torch.testing.assert_close(z_ours, z_theirs)


# ---------------------------------------------------------------- grid


@pytest.mark.parametrize("time_grid", ["uniform", "logit_normal"])
@pytest.mark.parametrize("num_steps", [1, 2, 16])
def test_grid_properties(time_grid, num_steps):
    scheduler = FlowMatchEulerSDEScheduler(time_grid=time_grid, gamma=1.5)
    scheduler.set_timesteps(num_steps, generator=torch.Generator().manual_seed(0))
    sigmas, timesteps = scheduler.sigmas, scheduler.timesteps
    assert sigmas.shape == (num_steps + 1,) and timesteps.shape == (num_steps,)
    assert sigmas[0] == 1.0 and sigmas[-1] == 0.0
    assert bool((sigmas[1:] < sigmas[:-1]).all())
    assert timesteps.dtype == torch.float32 and bool(((timesteps > 0) & (timesteps <= 1)).all())
    assert timesteps[-1] == sigmas[-2]  # the last step is always ODE
    assert bool((timesteps >= sigmas[:-1]).all())  # re-injection only adds noise


def test_logit_normal_random_grid_follows_seed():
    def grid(seed):
        scheduler = FlowMatchEulerSDEScheduler(time_grid="logit_normal_random")
        scheduler.set_timesteps(8, generator=torch.Generator().manual_seed(seed))
        return scheduler.sigmas

    assert torch.equal(grid(0), grid(0))
    assert not torch.equal(grid(0), grid(1))
    # interior points are sorted draws of t_elf = sigmoid(N(-1.5, 0.8)), returned as sigma = 1 - t_elf
    t_elf = torch.sigmoid(torch.randn(7, generator=torch.Generator().manual_seed(0)) * 0.8 - 1.5)
    torch.testing.assert_close(grid(0)[1:-1], torch.sort(1 - t_elf, descending=True).values)
    with pytest.raises(ValueError, match="generator"):
        FlowMatchEulerSDEScheduler(time_grid="logit_normal_random").set_timesteps(8)
    with pytest.raises(ValueError, match="generator"):
        FlowMatchEulerSDEScheduler(time_grid="logit_normal_random").set_timesteps(
            8, generator=[torch.Generator().manual_seed(s) for s in (0, 1)]
        )


def test_default_logit_normal_grid_is_its_quantiles():
    scheduler = FlowMatchEulerSDEScheduler()  # time_grid="logit_normal"
    scheduler.set_timesteps(4, generator=torch.Generator().manual_seed(0))
    first = scheduler.sigmas.clone()
    scheduler.set_timesteps(4)  # no generator, other seed: same grid, global RNG untouched
    assert torch.equal(first, scheduler.sigmas)
    # interior sigma_k = 1 - sigmoid(mean + std * Phi^-1(k / N)), k = 1..N-1, for mean -1.5, std 0.8
    normal = torch.distributions.Normal(0.0, 1.0).icdf(torch.tensor([0.25, 0.5, 0.75]))
    torch.testing.assert_close(first[1:-1], 1 - torch.sigmoid(normal * 0.8 - 1.5))


def test_custom_sigmas():
    scheduler = FlowMatchEulerSDEScheduler(gamma=0.0)
    scheduler.set_timesteps(sigmas=[1.0, 0.6, 0.2])  # final 0 appended
    assert scheduler.sigmas.tolist() == pytest.approx([1.0, 0.6, 0.2, 0.0])
    assert scheduler.num_inference_steps == 3
    scheduler.set_timesteps(2, sigmas=torch.tensor([1.0, 0.5, 0.0]))
    torch.testing.assert_close(scheduler.timesteps, torch.tensor([1.0, 0.5]))


# ---------------------------------------------------------------- gamma (re-injection)


def test_reinjection_alpha_formula_on_one_step():
    scheduler = FlowMatchEulerSDEScheduler(time_grid="uniform", gamma=1.5, noise_scale=2.0)
    scheduler.set_timesteps(4)  # sigmas 1, .75, .5, .25, 0
    # step 1 in ELF time: t = 0.25, h = 0.25, alpha = 1 - 1.5 * 0.25 = 0.625, t_back = alpha * t = 0.15625
    alpha = 0.625
    assert scheduler.alphas.tolist() == pytest.approx([alpha, alpha, alpha, 1.0])
    assert scheduler.timesteps[1].item() == pytest.approx(1 - 0.15625)

    x0, noise = _data()
    z = scheduler.scale_noise(x0, scheduler.sigmas[1], noise)
    scheduler.set_begin_index(1)
    z_back = scheduler.scale_model_input(z, scheduler.timesteps[1], generator=torch.Generator().manual_seed(7))
    eps = randn_tensor(SHAPE, generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(z_back, alpha * z + (1 - alpha) * 2.0 * eps)

    # the Euler update then starts from z_back at sigma = 1 - t_back
    x0_hat = torch.zeros(SHAPE)
    out = scheduler.step(x0_hat, scheduler.timesteps[1], z_back).prev_sample
    torch.testing.assert_close(out, z_back + (0.5 - 0.84375) * (z_back - x0_hat) / 0.84375)


def test_alpha_clips_to_zero_for_large_gamma():
    scheduler = FlowMatchEulerSDEScheduler(time_grid="uniform", gamma=10.0)
    scheduler.set_timesteps(4)
    assert scheduler.alphas.tolist() == [0.0, 0.0, 0.0, 1.0]
    assert scheduler.timesteps.tolist() == [1.0, 1.0, 1.0, 0.25]  # full re-noising, then the ODE step


def test_gamma_zero_makes_scale_model_input_identity():
    scheduler = FlowMatchEulerSDEScheduler(gamma=0.0)
    scheduler.set_timesteps(5, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(scheduler.timesteps, scheduler.sigmas[:-1], rtol=0, atol=0)
    z = torch.randn(SHAPE)
    generator = torch.Generator().manual_seed(0)
    state = generator.get_state()
    assert scheduler.scale_model_input(z, scheduler.timesteps[0], generator=generator) is z
    assert torch.equal(generator.get_state(), state)  # no noise drawn


def test_per_row_generators():
    scheduler = FlowMatchEulerSDEScheduler(time_grid="uniform", gamma=1.5)
    scheduler.set_timesteps(4)
    z = torch.zeros(SHAPE)
    batched = scheduler.scale_model_input(
        z, scheduler.timesteps[0], generator=[torch.Generator().manual_seed(s) for s in (1, 2)]
    )
    scheduler.set_timesteps(4)
    single = scheduler.scale_model_input(z[:1], scheduler.timesteps[0], generator=[torch.Generator().manual_seed(2)])
    torch.testing.assert_close(batched[1:], single)


# ---------------------------------------------------------------- diffusers plumbing


def test_config_round_trip(tmp_path):
    scheduler = FlowMatchEulerSDEScheduler(gamma=1.0, noise_scale=1.5, time_grid="uniform", prediction_type="flow")
    scheduler.save_config(tmp_path)
    loaded = FlowMatchEulerSDEScheduler.from_pretrained(tmp_path)
    copied = FlowMatchEulerSDEScheduler.from_config(scheduler.config)

    def public(config):
        return {k: v for k, v in config.items() if not k.startswith("_")}

    assert public(loaded.config) == public(scheduler.config) == public(copied.config)
    assert len(loaded) == 1000 and loaded.order == 1 and loaded.init_noise_sigma == 1.5
    for other in (loaded, copied):
        other.set_timesteps(4)
        scheduler.set_timesteps(4)
        assert torch.equal(other.timesteps, scheduler.timesteps)


def test_return_dict_and_tuple_agree():
    scheduler = FlowMatchEulerSDEScheduler(time_grid="uniform", gamma=0.0)
    x0, noise = _data()
    scheduler.set_timesteps(3)
    out = scheduler.step(x0, scheduler.timesteps[0], noise)
    scheduler.set_timesteps(3)
    prev, pred = scheduler.step(x0, scheduler.timesteps[0], noise, return_dict=False)
    assert isinstance(out, FlowMatchEulerSDESchedulerOutput)
    assert torch.equal(out.prev_sample, prev) and torch.equal(out.pred_original_sample, pred)
    assert scheduler.step_index == 1


def test_step_keeps_dtype():
    scheduler = FlowMatchEulerSDEScheduler(time_grid="uniform", gamma=1.5)
    scheduler.set_timesteps(3)
    z = torch.randn(SHAPE, dtype=torch.bfloat16)
    t = scheduler.timesteps[0]
    z = scheduler.scale_model_input(z, t, generator=torch.Generator().manual_seed(0))
    out = scheduler.step(torch.zeros(SHAPE, dtype=torch.bfloat16), t, z)
    assert z.dtype == out.prev_sample.dtype == out.pred_original_sample.dtype == torch.bfloat16


@pytest.mark.parametrize(
    ("kwargs", "call", "name"),
    [
        ({}, {"num_inference_steps": 0}, "num_inference_steps"),
        ({}, {"num_inference_steps": -3}, "num_inference_steps"),
        ({}, {"sigmas": [1.0, 0.5, 0.7, 0.0]}, "sigmas"),
        ({}, {"sigmas": [1.0, 1.0, 0.0]}, "sigmas"),
        ({}, {"sigmas": [0.9, 0.5, 0.0]}, "sigmas"),
        ({}, {"num_inference_steps": 3, "sigmas": [1.0, 0.5, 0.0]}, "num_inference_steps"),
    ],
)
def test_bad_set_timesteps_arguments(kwargs, call, name):
    with pytest.raises(ValueError, match=name):
        FlowMatchEulerSDEScheduler(**kwargs).set_timesteps(**call)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"time_grid": "cosine"}, "time_grid"),
        ({"prediction_type": "epsilon"}, "prediction_type"),
        ({"gamma": -1.0}, "gamma"),
        ({"noise_scale": 0.0}, "noise_scale"),
    ],
)
def test_bad_config_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        FlowMatchEulerSDEScheduler(**kwargs)


def test_integer_timesteps_and_skipped_scale_model_input_are_rejected():
    scheduler = FlowMatchEulerSDEScheduler()  # gamma = 1.5: the model input is the re-noised latent
    z = torch.zeros(SHAPE)
    assert len(scheduler.timesteps) == len(scheduler) == 1000  # a grid before `set_timesteps`, as diffusers
    with pytest.raises(ValueError, match="scale_model_input"):
        scheduler.step(z, scheduler.timesteps[0], z)
    scheduler.set_timesteps(3, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="integer"):
        scheduler.step(z, 0, z)
    with pytest.raises(ValueError, match="integer"):
        scheduler.scale_model_input(z, torch.tensor(0))
    t = scheduler.timesteps[0]
    scheduler.scale_model_input(z, t, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="scale_model_input"):
        scheduler.step(z, t, z)  # the loop's own latents, not the re-noised model input
