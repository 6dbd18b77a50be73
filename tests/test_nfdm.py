"""NFDM: the learned forward process, its time derivatives, the bound and the importance sampler, checked
analytically on tiny models."""

import math

import pytest
import torch

from latentlm import AutoModelForTextDiffusion, NFDMConfig, NFDMForDiffusion
from latentlm.models.nfdm.components import ImportanceTimeSampler
from latentlm.models.nfdm.modeling_nfdm import NFDMBoundTerms
from latentlm.schedulers import LearnedGaussianSDEScheduler


TINY_NFDM = dict(
    vocab_size=32,
    latent_dim=8,
    hidden_size=32,
    num_hidden_layers=1,
    num_attention_heads=2,
    max_position_embeddings=16,
    forward_hidden_size=16,
    forward_num_layers=1,
    forward_num_heads=2,
)


def tiny_model(dtype=torch.float32, randomise=True, **config):
    """A tiny NFDM whose zero-initialised output maps are randomised, so F_phi and NN are not trivially zero."""
    torch.manual_seed(0)
    model = NFDMForDiffusion(NFDMConfig(**{**TINY_NFDM, **config})).to(dtype)
    if randomise:
        with torch.no_grad():
            for name, p in model.named_parameters():
                if "proj_out" in name or "modulation" in name:
                    p.normal_(0, 0.1)
    return model


def test_forward_process_hits_the_data_at_t0_and_the_prior_at_t1_whatever_the_network_says():
    model = tiny_model()
    x = torch.randn(3, 5, 8)
    for t, expected_mean, expected_std in ((0.0, x, 0.1), (1.0, torch.zeros_like(x), 1.0)):
        timesteps = torch.full((3,), t)
        fields = model.forward_fields(x, timesteps)
        assert fields[0].abs().max() > 0  # the network's fields are not zero ...
        mean, std = model.noise_scheduler.moments(x, timesteps, fields[0], fields[1])
        torch.testing.assert_close(mean, expected_mean, rtol=0, atol=1e-6)  # ... yet the ends are exact
        torch.testing.assert_close(std, torch.full_like(x, expected_std), rtol=0, atol=1e-6)


@pytest.mark.parametrize("t, bound", [(0.1, None), (0.5, None), (0.93, 0.5)])
def test_jvp_time_derivatives_equal_a_finite_difference(t, bound):
    model = tiny_model(torch.float64, forward_log_std_bound=bound)
    x = torch.randn(2, 6, 8, dtype=torch.float64)
    sched = model.noise_scheduler

    def moments(time):
        timesteps = torch.full((2,), time, dtype=torch.float64)
        return sched.moments(x, timesteps, *model.forward_fields(x, timesteps))

    _, _, mean_dt, std_dt = moments(t)
    h = 1e-6
    (mean_plus, std_plus, _, _), (mean_minus, std_minus, _, _) = moments(t + h), moments(t - h)
    torch.testing.assert_close(mean_dt, (mean_plus - mean_minus) / (2 * h), rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(std_dt, (std_plus - std_minus) / (2 * h), rtol=1e-5, atol=1e-7)
    assert mean_dt.abs().max() > 0.1  # the network's own time dependence is in it, not only the analytic part


def test_with_phi_off_the_diffusion_integrand_is_the_closed_form_of_the_fixed_process():
    """mean = (1 - t) x, std = delta^(1 - t): f_B(x) - f_B(x_hat) = -(x - x_hat) (1 + (1 - t)(-log delta +
    g^2 / (2 std^2))), so L(t) = sum (x - x_hat)^2 (1 + (1 - t)(-log delta + g^2 / (2 std^2)))^2 / (2 g^2)."""
    model = tiny_model(torch.float64, learned_forward_process=False)
    assert model.forward_process is None
    ids = torch.randint(0, 32, (3, 6))
    t = torch.tensor([0.2, 0.5, 0.9], dtype=torch.float64)
    eps = torch.randn(3, 6, 8, dtype=torch.float64)
    terms = model.compute_bound_terms(ids, timesteps=t, noise=eps)

    delta, tt = 0.1, t[:, None, None]
    x = model.embed_tokens(ids)
    std = delta ** (1 - tt)
    x_hat = model.predict_clean((1 - tt) * x + std * eps, t)
    g2 = model.volatility(t)[:, None, None] ** 2
    factor = 1 + (1 - tt) * (-math.log(delta) + 0.5 * g2 / std**2)
    expected = (0.5 * (x - x_hat) ** 2 * factor**2 / g2).sum((1, 2))
    torch.testing.assert_close(terms.diffusion_integrand, expected, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(terms.prior, torch.zeros(3, dtype=torch.float64), rtol=0, atol=0)
    assert torch.equal(terms.density, torch.ones(3))


def test_importance_weights_give_an_unbiased_estimate_and_the_official_reweighting_does_not():
    torch.manual_seed(0)
    sampler = ImportanceTimeSampler(100)
    with torch.no_grad():
        sampler.logits.copy_(torch.linspace(-2, 2, 100) + 0.3 * torch.randn(100))  # more mass at late times
    t, density = sampler.sample(200_000, torch.device("cpu"))
    torch.testing.assert_close(density, sampler.density(t))
    h = torch.exp(2 * t.double())  # int_0^1 exp(2t) dt = (e^2 - 1) / 2
    exact = (math.e**2 - 1) / 2
    weighted = h / density.detach().double()
    standard_error = weighted.std().item() / math.sqrt(len(t))
    assert abs(weighted.mean().item() - exact) < 4 * standard_error
    # The official code's (B,) / (B, 1, 1) then a mean: mean(L) * mean(1/p) ~ E_p[L], weighted towards late times.
    official = h.mean() * (1 / density.double()).mean()
    assert official.item() - exact > 20 * standard_error

    terms = NFDMBoundTerms(
        reconstruction=torch.zeros(4), diffusion_integrand=torch.tensor([1.0, 2.0, 3.0, 4.0]),
        prior=torch.zeros(4), density=torch.tensor([0.5, 1.0, 2.0, 4.0]),
    )  # fmt: skip
    torch.testing.assert_close(terms.total, torch.tensor([2.0, 2.0, 1.5, 1.0]))  # per-sample L_i / p_i


def test_the_loss_is_the_bound_per_token_and_its_gradient_trains_the_proposal():
    model = tiny_model().train()
    ids = torch.randint(0, 32, (4, 6))
    mask = torch.ones(4, 6, dtype=torch.long)
    mask[0, 4:] = 0
    torch.manual_seed(1)
    out = model(ids, attention_mask=mask)
    torch.testing.assert_close(out.loss, out.terms.total.sum() / 22, rtol=1e-6, atol=0)
    torch.testing.assert_close(out.metrics["elbo_bits_per_token"], out.loss.detach() / math.log(2))
    assert out.terms.num_tokens.tolist() == [4.0, 6.0, 6.0, 6.0]
    out.loss.backward()
    assert model.time_sampler.logits.grad.abs().sum() > 0
    assert all(p.grad is not None for n, p in model.named_parameters() if not n.startswith("time_sampler"))


def test_padding_changes_nothing_but_the_padded_tokens():
    model = tiny_model(torch.float64).eval()
    ids = torch.randint(0, 32, (2, 6))
    mask = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]])
    t, eps = torch.tensor([0.3, 0.3], dtype=torch.float64), torch.randn(2, 6, 8, dtype=torch.float64)
    torch.manual_seed(0)
    padded = model.compute_bound_terms(ids, mask, timesteps=t, noise=eps)
    other = ids.clone()
    other[0, 4:] = 7  # different tokens under the padding
    torch.manual_seed(0)
    changed = model.compute_bound_terms(other, mask, timesteps=t, noise=eps)
    torch.testing.assert_close(padded.total, changed.total)


def test_a_few_steps_of_training_lower_the_bound_with_and_without_the_learned_process():
    for learned in (True, False):
        model = tiny_model(randomise=False, learned_forward_process=learned).train()
        optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
        ids = torch.randint(0, 32, (8, 6))
        losses = []
        for _ in range(25):
            loss = model(ids).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        assert sum(losses[-5:]) < sum(losses[:5]), (learned, losses)


def test_auto_classes_load_a_saved_model(tmp_path):
    model = tiny_model()
    model.save_pretrained(tmp_path)
    loaded = AutoModelForTextDiffusion.from_pretrained(tmp_path)
    assert isinstance(loaded, NFDMForDiffusion)
    for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name


@pytest.mark.parametrize(
    "field, value",
    [("delta", 1.5), ("forward_hidden_size", 15), ("num_time_buckets", -1), ("self_conditioning", True),
     ("latent_dim", 0), ("predictor_offset", -0.1), ("forward_log_std_bound", 0.0)],
)  # fmt: skip
def test_config_rejects_bad_values_by_name(field, value):
    with pytest.raises(ValueError, match=f"`{field}`"):
        NFDMConfig(**{**TINY_NFDM, field: value})


# ---------------------------------------------------------------------------------------------- the scheduler


def _exact_output(sched, x, t, volatility):
    """What a perfect model of the fixed process hands the scheduler: x_hat = x, zero network fields."""
    zeros = torch.zeros_like(x)
    g = torch.full((x.shape[0],), volatility, dtype=x.dtype)
    return sched.pack_model_output(x, zeros, zeros, zeros, zeros, g)


def _run(sched, x, eps, steps, volatility, generator=None):
    sched.set_timesteps(steps)
    z = eps.clone()
    for t in sched.timesteps:
        z = sched.step(_exact_output(sched, x, t, volatility), t, z, generator=generator).prev_sample
    return z


def test_ancestral_without_volatility_is_exact_ddim_for_any_number_of_steps():
    x, eps = torch.randn(2, 5, 4, dtype=torch.float64), torch.randn(2, 5, 4, dtype=torch.float64)
    sched = LearnedGaussianSDEScheduler(solver="ancestral")
    for steps in (1, 3, 16):
        torch.testing.assert_close(_run(sched, x, eps, steps, 0.0), x + 0.1 * eps)  # the flow map of eps


def test_the_ode_converges_to_the_flow_map_and_the_sde_to_the_data_end_marginal():
    x, eps = torch.randn(2, 5, 4, dtype=torch.float64), torch.randn(2, 5, 4, dtype=torch.float64)
    ode = _run(LearnedGaussianSDEScheduler(solver="ode"), x, eps, 400, 0.0)
    assert (ode - (x + 0.1 * eps)).abs().max() < 5e-3

    x = torch.full((4000, 1, 1), 0.7, dtype=torch.float64)
    gen = torch.Generator().manual_seed(0)
    for solver in ("sde", "ancestral"):
        sample = _run(LearnedGaussianSDEScheduler(solver=solver), x, torch.randn(4000, 1, 1, dtype=torch.float64,
                      generator=gen), 200, 1.0, generator=gen)  # fmt: skip
        # The last step is noise-free: the sample is within about delta of the data, centred on it.
        assert abs(sample.mean().item() - 0.7) < 0.01, solver
        assert 0.03 < sample.std().item() < 0.12, solver


@pytest.mark.parametrize(
    "kwargs, argument",
    [(dict(solver="heun"), "solver"), (dict(delta=0.0), "delta"), (dict(t_min=0.5, t_max=0.2), "t_min")],
)
def test_scheduler_rejects_bad_settings_by_name(kwargs, argument):
    with pytest.raises(ValueError, match=f"`{argument}`"):
        LearnedGaussianSDEScheduler(**kwargs)


def test_scheduler_names_a_model_output_without_the_packed_channels():
    sched = LearnedGaussianSDEScheduler()
    sched.set_timesteps(2)
    with pytest.raises(ValueError, match="`model_output`"):
        sched.step(torch.randn(1, 3, 4), sched.timesteps[0], torch.randn(1, 3, 4))


def test_the_subsampled_reconstruction_term_is_unbiased_and_evaluation_scores_every_token():
    model = tiny_model(torch.float64, reconstruction_token_fraction=0.25, embedding_init_std=0.3)
    ids = torch.randint(0, 32, (2, 6))
    x, labels, mask = model.embed_tokens(ids), ids, torch.ones(2, 6, dtype=torch.float64)
    mask[1, 5] = 0
    torch.manual_seed(0)
    with torch.no_grad():
        full = torch.stack([model.eval()._reconstruction(x, labels, mask) for _ in range(800)])
        sampled = torch.stack([model.train()._reconstruction(x, labels, mask) for _ in range(800)])
    error = (sampled.std(0) / math.sqrt(800)).max().item()
    assert (sampled.mean(0) - full.mean(0)).abs().max() < 4 * error
    assert sampled.std(0).min() > 2 * full.std(0).max()  # a subset was scored in training, all tokens in evaluation


def test_a_log_std_bound_squashes_the_learned_std_and_keeps_the_ends_exact():
    model = tiny_model(forward_log_std_bound=0.05)
    with torch.no_grad():
        model.forward_process.proj_out.bias.fill_(3.0)  # a large raw log_std_bar
    x = torch.randn(2, 4, 8)
    _, log_std_bar, _, _ = model.forward_fields(x, torch.full((2,), 0.5))
    assert log_std_bar.abs().max() <= 0.05 and log_std_bar.min() > 0.049
    for t, expected in ((0.0, 0.1), (1.0, 1.0)):
        fields = model.forward_fields(x, torch.full((2,), t))
        _, std = model.noise_scheduler.moments(x, t, fields[0], fields[1])
        torch.testing.assert_close(std, torch.full_like(x, expected), rtol=0, atol=1e-6)
