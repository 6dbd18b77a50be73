"""What diffusers' `SchedulerCommonTest` expects of any scheduler, run for every latentlm scheduler class.

Classes are found in `latentlm.schedulers` automatically; extra configs to check are listed in
`tests/conformance.py` (`SCHEDULER_VARIANTS`).
"""

import inspect
import math

import pytest
import torch

from conformance import scheduler_case_id, scheduler_cases
from latentlm.schedulers.scheduling_utils import StepIndexMixin


CASES = scheduler_cases()
SHAPE = (3, 5, 4)


def _model(scheduler, sample, t):
    """A deterministic stand-in denoiser (x0 prediction), row by row independent. Schedulers that need more than the
    x0 prediction from the model (NFDM's learned process) get it packed their way: a fixed process (network fields
    0) with unit volatility."""
    x0 = torch.tanh(sample) * (1.0 - torch.as_tensor(t, dtype=sample.dtype))
    if hasattr(scheduler, "pack_model_output"):
        zeros = torch.zeros_like(x0)
        return scheduler.pack_model_output(x0, zeros, zeros, zeros, zeros, torch.ones(x0.shape[0], dtype=x0.dtype))
    return x0


def _loop(scheduler, latents, generator, num_steps=4):
    scheduler.set_timesteps(num_steps, generator=generator if isinstance(generator, torch.Generator) else None)
    for t in scheduler.timesteps:
        model_input = scheduler.scale_model_input(latents, t, generator=generator)
        latents = scheduler.step(_model(scheduler, model_input, t), t, model_input, generator=generator).prev_sample
    return latents


def _noise(seed=0, shape=SHAPE, dtype=torch.float32):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


@pytest.fixture(params=CASES, ids=scheduler_case_id)
def case(request):
    return request.param


def _public(config):
    return {k: v for k, v in config.items() if not k.startswith("_")}


def _make(case, **overrides):
    cls, kwargs = case
    return cls(**{**kwargs, **overrides})


def test_every_class_is_covered():
    names = {cls.__name__ for cls, _ in CASES}
    assert {"FlowMatchEulerSDEScheduler", "EulerMaruyamaVPScheduler"} <= names
    assert all(issubclass(cls, StepIndexMixin) for cls, _ in CASES)


def test_public_api(case):
    scheduler = _make(case)
    for name in ("set_timesteps", "scale_model_input", "step", "add_noise", "init_noise_sigma", "order"):
        assert hasattr(scheduler, name), name
    assert scheduler.timesteps is not None and len(scheduler.timesteps) == len(scheduler)  # before set_timesteps
    assert len(scheduler) == scheduler.config.num_train_timesteps
    assert type(scheduler) in scheduler.compatibles
    assert math.isfinite(scheduler.init_noise_sigma) and scheduler.init_noise_sigma > 0
    params = inspect.signature(scheduler.set_timesteps).parameters
    assert {"num_inference_steps", "device", "timesteps", "sigmas"} <= set(params)


def test_save_load_round_trip_gives_identical_outputs(case, tmp_path):
    scheduler = _make(case)
    scheduler.save_config(tmp_path)
    loaded = type(scheduler).from_pretrained(tmp_path)
    assert _public(loaded.config) == _public(scheduler.config)
    out = _loop(scheduler, _noise(), torch.Generator().manual_seed(1))
    out_loaded = _loop(loaded, _noise(), torch.Generator().manual_seed(1))
    assert torch.equal(out, out_loaded)


def test_from_config_round_trip_and_overrides(case):
    scheduler = _make(case)
    copied = type(scheduler).from_config(scheduler.config)
    assert _public(copied.config) == _public(scheduler.config)
    for other in scheduler.compatibles:
        assert isinstance(other.from_config(scheduler.config), other)
    out = _loop(scheduler, _noise(), torch.Generator().manual_seed(1))
    assert torch.equal(out, _loop(copied, _noise(), torch.Generator().manual_seed(1)))


def test_same_inputs_and_seed_give_the_same_outputs_without_global_rng(case):
    first, second = _make(case), _make(case)
    state = torch.random.get_rng_state()
    out1 = _loop(first, _noise(), torch.Generator().manual_seed(3))
    assert torch.equal(torch.random.get_rng_state(), state), "the loop drew from the global RNG"
    torch.manual_seed(12345)  # the global seed must not matter
    out2 = _loop(second, _noise(), torch.Generator().manual_seed(3))
    assert torch.equal(out1, out2)
    first.set_timesteps(6)
    second.set_timesteps(6)
    assert torch.equal(first.timesteps, second.timesteps)


def test_a_sample_does_not_depend_on_its_neighbours(case):
    scheduler = _make(case)
    noise = _noise(shape=(3, 5, 4))
    batched = _loop(scheduler, noise, [torch.Generator().manual_seed(s) for s in (10, 11, 12)])
    alone = _loop(scheduler, noise[2:], [torch.Generator().manual_seed(12)])
    torch.testing.assert_close(batched[2:], alone, rtol=0, atol=0)
    swapped = _loop(scheduler, noise[[1, 0, 2]], [torch.Generator().manual_seed(s) for s in (11, 10, 12)])
    torch.testing.assert_close(batched[[1, 0, 2]], swapped, rtol=0, atol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_step_keeps_shape_and_dtype(case, dtype):
    scheduler = _make(case)
    out = _loop(scheduler, _noise(dtype=dtype), torch.Generator().manual_seed(0), num_steps=3)
    assert out.shape == SHAPE and out.dtype == dtype and torch.isfinite(out.float()).all()


def test_return_dict_false_gives_the_same_tuple(case):
    outs = []
    for return_dict in (True, False):
        scheduler = _make(case)
        scheduler.set_timesteps(3)
        t = scheduler.timesteps[0]
        model_input = scheduler.scale_model_input(_noise(), t, generator=torch.Generator().manual_seed(0))
        out = scheduler.step(_model(scheduler, model_input, t), t, model_input, generator=torch.Generator().manual_seed(1),
                             return_dict=return_dict)  # fmt: skip
        outs.append(out.to_tuple() if return_dict else out)
        assert scheduler.step_index == 1
    assert isinstance(outs[1], tuple)
    for a, b in zip(*outs):
        assert torch.equal(a, b)


@pytest.mark.parametrize("time_shape", [(), (3,), (3, 5)])
def test_add_noise_shapes(case, time_shape):
    scheduler = _make(case)
    scheduler.set_timesteps(4)
    t = scheduler.timesteps[1].expand(time_shape)
    noisy = scheduler.add_noise(_noise(0), _noise(1), t)
    assert noisy.shape == SHAPE and noisy.dtype == torch.float32 and torch.isfinite(noisy).all()


def test_custom_timesteps_and_sigmas(case):
    scheduler = _make(case)
    scheduler.set_timesteps(5)
    default = scheduler.timesteps.clone()
    scheduler.set_timesteps(timesteps=[1.0, 0.6, 0.3])
    assert len(scheduler.timesteps) == scheduler.num_inference_steps == 3
    out = _loop_from_current(scheduler)
    assert torch.isfinite(out).all()
    with pytest.raises(ValueError, match="at most one"):
        scheduler.set_timesteps(timesteps=[1.0, 0.5], sigmas=[1.0, 0.5])
    with pytest.raises(ValueError, match="timesteps|sigmas"):
        scheduler.set_timesteps(timesteps=[1.0, 0.3, 0.6])  # not decreasing
    scheduler.set_timesteps(5)
    assert torch.equal(scheduler.timesteps, default)


def _loop_from_current(scheduler):
    latents = _noise()
    generator = torch.Generator().manual_seed(0)
    for t in scheduler.timesteps:
        model_input = scheduler.scale_model_input(latents, t, generator=generator)
        latents = scheduler.step(_model(scheduler, model_input, t), t, model_input, generator=generator).prev_sample
    return latents


def test_begin_index_and_exhaustion(case):
    scheduler = _make(case)
    scheduler.set_timesteps(3)
    scheduler.set_begin_index(1)
    t = scheduler.timesteps[1]
    model_input = scheduler.scale_model_input(_noise(), t, generator=torch.Generator().manual_seed(0))
    scheduler.step(_model(scheduler, model_input, t), t, model_input, generator=torch.Generator().manual_seed(0))
    assert scheduler.step_index == 2
    _loop(scheduler, _noise(), torch.Generator().manual_seed(0), num_steps=2)
    with pytest.raises(ValueError, match="set_timesteps"):
        scheduler.step(_noise(), scheduler.timesteps[-1], _noise())


def test_bad_generator_is_refused_by_name(case):
    scheduler = _make(case)
    with pytest.raises(TypeError, match="generator"):
        scheduler.set_timesteps(3, generator=42)
    scheduler.set_timesteps(3)
    t = scheduler.timesteps[0]
    with pytest.raises((TypeError, ValueError), match="generator"):
        model_input = scheduler.scale_model_input(_noise(), t, generator=[torch.Generator()] * 2)
        scheduler.step(_model(scheduler, model_input, t), t, model_input, generator=[torch.Generator()] * 2)


def _float_init_params(cls):
    return [name for name, p in inspect.signature(cls.__init__).parameters.items() if isinstance(p.default, float)]


def test_non_finite_config_values_are_refused_by_name(case):
    cls, _ = case
    names = _float_init_params(cls)
    assert names
    for name in names:
        for value in (float("nan"), float("inf")):
            with pytest.raises(ValueError, match=name):
                cls(**{name: value})
    with pytest.raises(ValueError, match="num_train_timesteps"):
        cls(num_train_timesteps=0)
