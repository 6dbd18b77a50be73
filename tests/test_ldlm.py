"""LDLM's model and recipe: gradient routing of the warm-up and of the stop-gradient, the adaptive timestep sampler,
decoder noise, the saved state, and errors that name the argument."""

import copy
import math

import numpy
import pytest
import torch

from conftest import EmbeddingEncoder
from latentlm import AutoModelForTextDiffusion, LDLMConfig, LDLMDecoder, LDLMForDiffusion, LDLMModel
from latentlm.models.ldlm import AdaptiveTimestepSampler, warmup_gamma


TINY_LDLM = dict(
    vocab_size=40,
    encoder_dim=16,
    max_position_embeddings=12,
    num_latents=3,
    latent_dim=8,
    codec_hidden_size=32,
    codec_num_attention_heads=2,
    num_encoder_layers=1,
    num_decoder_layers=1,
    num_token_decoder_layers=1,
    lm_head_dim=16,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    encoder_warmup_steps=10,
    num_timestep_bins=10,
)


def make_model(**overrides) -> LDLMForDiffusion:
    torch.manual_seed(0)
    model = LDLMForDiffusion(LDLMConfig(**{**TINY_LDLM, **overrides}))
    model.set_text_encoder(EmbeddingEncoder(hidden_size=16, vocab_size=40))
    with torch.no_grad():
        model.hidden_mean.normal_()
        model.hidden_std.uniform_(0.5, 2.0)
        for p in model.model.parameters():  # an untrained denoiser predicts 0: give it a gradient path
            p.normal_(0, 0.1)
    return model.train()


def batch(seed=0, size=4):
    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(5, 40, (size, 12), generator=generator)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[0, 9:] = 0
    return {"input_ids": input_ids, "attention_mask": attention_mask}


def grads(loss, params):
    return [g if g is not None else torch.zeros_like(p) for g, p in
            zip(torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True), params)]  # fmt: skip


def flat(tensors):
    return torch.cat([t.flatten() for t in tensors])


def forward_seeded(model, seed=1):
    torch.manual_seed(seed)
    return model(**batch())


# ----------------------------------------------------------------------------------------------------------------------
# Gradient routing
# ----------------------------------------------------------------------------------------------------------------------


def test_warmup_scales_only_the_encoder_gradient_of_the_diffusion_loss():
    warm = make_model(encoder_warmup_gamma_min=0.25)
    full = copy.deepcopy(warm)
    full.config.encoder_warmup = False  # gamma = 1, everything else identical
    out_warm, out_full = forward_seeded(warm), forward_seeded(full)
    gamma = float(out_warm.metrics["encoder_gamma"])
    assert gamma == pytest.approx(0.25) and float(out_full.metrics["encoder_gamma"]) == 1.0
    torch.testing.assert_close(out_warm.loss, out_full.loss, rtol=0, atol=0)  # the warm-up scales no value

    encoder = lambda m: list(m.encoder.parameters())  # noqa: E731
    denoiser = lambda m: list(m.model.parameters())  # noqa: E731
    g_warm, g_full = (
        flat(grads(out_warm.diffusion_loss, encoder(warm))),
        flat(grads(out_full.diffusion_loss, encoder(full))),
    )
    assert g_full.abs().sum() > 0
    torch.testing.assert_close(g_warm, gamma * g_full)
    # The denoiser gets its full gradient, with or without the warm-up.
    torch.testing.assert_close(flat(grads(out_warm.diffusion_loss, denoiser(warm))),
                               flat(grads(out_full.diffusion_loss, denoiser(full))))  # fmt: skip
    # The encoder's gradient from the reconstruction loss is not scaled.
    torch.testing.assert_close(flat(grads(out_warm.hidden_mse_loss, encoder(warm))),
                               flat(grads(out_full.hidden_mse_loss, encoder(full))))  # fmt: skip
    # And the total: L_h's encoder gradient plus gamma times L_diff's.
    total = flat(grads(out_warm.loss, encoder(warm)))
    torch.testing.assert_close(total, flat(grads(out_warm.hidden_mse_loss, encoder(warm))) + gamma * g_full)


def test_token_loss_reads_a_stop_gradient_copy_of_the_decoded_states():
    model = make_model()
    out = forward_seeded(model)
    latent_decoder = [*model.decoder.latent_decoder.parameters(), *model.decoder.hidden_head.parameters()]
    token_decoder = [*model.decoder.token_decoder.parameters(), *model.decoder.lm_head.parameters()]
    assert flat(grads(out.token_ce_loss, list(model.encoder.parameters()))).abs().sum() == 0
    assert flat(grads(out.token_ce_loss, latent_decoder)).abs().sum() == 0
    assert flat(grads(out.token_ce_loss, token_decoder)).abs().sum() > 0

    # Without the MSE decoder loss (naive joint), the cross-entropy shapes the encoder and there is no L_h in the loss.
    naive = make_model(mse_decoder_loss=False)
    out = forward_seeded(naive)
    assert flat(grads(out.token_ce_loss, list(naive.encoder.parameters()))).abs().sum() > 0
    torch.testing.assert_close(out.loss, out.diffusion_loss + out.token_ce_loss)


def test_warmup_curve_runs_from_gamma_min_to_one_along_the_shifted_sigmoid():
    steps, gamma_min = 100, 0.01
    values = [warmup_gamma(s, steps, gamma_min) for s in range(steps + 5)]
    assert values[0] == pytest.approx(gamma_min) and values[steps] == 1.0 and values[-1] == 1.0
    assert all(b >= a for a, b in zip(values, values[1:]))

    def sig(s):
        return 1 / (1 + math.exp(-10 * (s / steps - 0.8)))

    expected = gamma_min + (1 - gamma_min) * (sig(50) - sig(0)) / (sig(steps) - sig(0))
    assert values[50] == pytest.approx(expected) and values[50] < 0.1  # the encoder is still mostly shielded


def test_the_warmup_step_counts_training_forwards_only():
    model = make_model()
    for _ in range(3):
        model(**batch())
    model.eval()
    with torch.no_grad():
        model(**batch())
    assert int(model.encoder_warmup_step) == 3
    assert float(model(**batch()).metrics["encoder_gamma"]) == pytest.approx(warmup_gamma(3, 10, 1e-3))


# ----------------------------------------------------------------------------------------------------------------------
# Adaptive timestep sampling
# ----------------------------------------------------------------------------------------------------------------------


def sampler_with_curve(curve, uniform_mix=0.01):
    sampler = AdaptiveTimestepSampler(num_bins=len(curve), ema_decay=0.9, uniform_mix=uniform_mix)
    sampler.bin_loss.copy_(torch.as_tensor(curve, dtype=torch.float32))
    sampler.bin_count.fill_(1)
    return sampler


def test_bin_probabilities_are_the_loss_increases_of_a_known_curve():
    bins = 10
    curve = [((i + 1) / bins) ** 2 for i in range(bins)]  # L(t) = t^2 at the bins' upper edges
    probabilities = sampler_with_curve(curve).bin_probabilities()
    expected = torch.tensor([0.99 * (2 * i + 1) / bins**2 + 0.01 / bins for i in range(bins)])
    torch.testing.assert_close(probabilities, expected)

    # A flat tail gets only the uniform share; a dip counts as no increase.
    probabilities = sampler_with_curve([0.5, 1.0, 1.0, 0.8], uniform_mix=0.0).bin_probabilities()
    torch.testing.assert_close(probabilities, torch.tensor([0.5, 0.5, 0.0, 0.0]))


def test_sampled_times_make_the_expected_loss_linear_in_the_quantile():
    # With L(t) = t^2 the sampler must draw t = sqrt(u): P(t <= x) = x^2, so L(t) / L(1) is uniform.
    bins = 100
    sampler = sampler_with_curve([((i + 1) / bins) ** 2 for i in range(bins)], uniform_mix=0.0)
    torch.manual_seed(0)
    t = sampler.sample(200_000)
    assert t.min() >= 0 and t.max() <= 1
    for x in (0.25, 0.5, 0.75, 0.9):
        assert float((t <= x).float().mean()) == pytest.approx(x**2, abs=0.01)
    assert float(t.pow(2).mean()) == pytest.approx(0.5, abs=0.01)  # E[L(t)] = L(1) / 2: uniform over [0, L(1)]


def test_sampler_is_uniform_until_every_bin_has_a_loss_and_averages_per_example_losses():
    sampler = AdaptiveTimestepSampler(num_bins=4, ema_decay=0.5)
    torch.testing.assert_close(sampler.bin_probabilities(), torch.full((4,), 0.25))
    sampler.update(torch.tensor([0.1, 0.3, 0.6, 0.9]), torch.tensor([1.0, 2.0, 3.0, 4.0]))
    torch.testing.assert_close(sampler.bin_loss, torch.tensor([1.0, 2.0, 3.0, 4.0]))  # each example its own bin
    sampler.update(torch.tensor([0.05, 0.2]), torch.tensor([3.0, 5.0]))  # two new losses in bin 0: mean 4, 1 - 0.5^2
    torch.testing.assert_close(sampler.bin_loss, torch.tensor([1.0 + 0.75 * 3.0, 2.0, 3.0, 4.0]))
    torch.testing.assert_close(sampler.bin_count, torch.tensor([3, 1, 1, 1]))
    with pytest.raises(ValueError, match="`losses` must hold one loss per example"):
        sampler.update(torch.tensor([0.1, 0.3]), torch.tensor(2.0))  # a batch mean is refused


def test_training_updates_the_sampler_with_per_example_losses_and_evaluation_does_not():
    model = make_model()
    seen = {}
    update = model.timestep_sampler.update

    def spy(timesteps, losses):
        seen["t"], seen["losses"] = timesteps, losses
        update(timesteps, losses)

    model.timestep_sampler.update = spy
    model(**batch())
    assert seen["losses"].shape == (4,) and len(set(seen["losses"].tolist())) == 4
    assert int(model.timestep_sampler.bin_count.sum()) == 4
    model.eval()
    model(**batch())
    assert int(model.timestep_sampler.bin_count.sum()) == 4

    model.train().config.adaptive_timesteps = False
    model(**batch())
    assert int(model.timestep_sampler.bin_count.sum()) == 4


# ----------------------------------------------------------------------------------------------------------------------
# Decoder-input noise
# ----------------------------------------------------------------------------------------------------------------------


def decoder_inputs(model):
    seen = []
    original = model.decoder.decode_hidden_states
    model.decoder.decode_hidden_states = lambda latents: seen.append(latents) or original(latents)
    out = model(**batch())
    return out.latents, seen[0]


def test_decoder_input_noise_acts_in_training_only():
    model = make_model(decoder_noise_std=3.0)
    latents, decoder_input = decoder_inputs(model)
    assert float((decoder_input - latents).detach().std()) == pytest.approx(3.0, rel=0.3)
    model.eval()
    latents, decoder_input = decoder_inputs(model)
    assert torch.equal(decoder_input, latents)
    latents, decoder_input = decoder_inputs(make_model(decoder_input_noise=False))
    assert torch.equal(decoder_input, latents)


def test_latents_have_unit_rms_per_vector():
    latents = make_model()(**batch()).latents
    torch.testing.assert_close(latents.pow(2).mean(dim=-1).sqrt(), torch.ones(4, 3), rtol=1e-4, atol=1e-4)


# ----------------------------------------------------------------------------------------------------------------------
# Saved state, loading, frozen LM layer
# ----------------------------------------------------------------------------------------------------------------------


def test_save_and_load_keep_weights_statistics_sampler_state_and_warmup_step(tmp_path):
    model = make_model()
    for seed in range(3):
        model(**batch(seed))
    model.save_pretrained(tmp_path)
    loaded = AutoModelForTextDiffusion.from_pretrained(tmp_path)
    assert isinstance(loaded, LDLMForDiffusion)
    for name, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], value), name
    assert int(loaded.encoder_warmup_step) == 3 and int(loaded.timestep_sampler.bin_count.sum()) == 12
    assert loaded.text_encoder is None  # the frozen LM is never saved


def test_the_decoder_and_denoiser_load_on_their_own(tmp_path):
    model = make_model()
    model.decoder.save_pretrained(tmp_path / "decoder")
    model.model.save_pretrained(tmp_path / "model")
    decoder, denoiser = (
        LDLMDecoder.from_pretrained(tmp_path / "decoder"),
        LDLMModel.from_pretrained(tmp_path / "model"),
    )
    latents = torch.randn(2, 3, 8)
    torch.testing.assert_close(decoder.decode(latents), model.decoder.decode(latents))
    torch.testing.assert_close(denoiser(latents, 0.5).sample, model.model(latents, 0.5).sample)
    with torch.inference_mode():  # greedy decoding is the argmax of the logits
        assert torch.equal(decoder.decode_to_ids(latents), decoder.decode(latents).argmax(dim=-1))


class LayeredEncoder(EmbeddingEncoder):
    """A fake frozen LM with three hidden states: the embeddings, x2, x3."""

    def forward(self, input_ids, attention_mask=None, output_hidden_states=False):
        embedded = self.embed(input_ids)
        states = (embedded, 2 * embedded, 3 * embedded)
        return type(
            "Out", (), {"last_hidden_state": states[-1], "hidden_states": states if output_hidden_states else None}
        )()


def test_encoder_layer_selects_the_frozen_lm_hidden_state():
    model = make_model(encoder_layer=-2)
    encoder = LayeredEncoder(hidden_size=16, vocab_size=40)
    model.set_text_encoder(encoder)
    ids = batch()["input_ids"]
    torch.testing.assert_close(model.encoder_activations(ids), 2 * encoder.embed(ids))
    model.config.encoder_layer = 5
    with pytest.raises(ValueError, match="`encoder_layer` is 5 but the encoder has 3 hidden states"):
        model.encoder_activations(ids)


def test_the_activation_cache_keeps_two_layers_of_one_encoder_apart(tmp_path, monkeypatch):
    from datasets import Dataset

    from latentlm.data import add_model_encoder_activations

    monkeypatch.setenv("LATENTLM_CACHE", str(tmp_path))
    dataset = Dataset.from_dict({"input_ids": batch()["input_ids"].tolist()})
    encoder = LayeredEncoder(hidden_size=16, vocab_size=40)
    cached = {}
    for layer in (-1, -2):
        model = make_model(encoder_layer=layer)
        model.set_text_encoder(encoder)
        cached[layer] = torch.as_tensor(
            numpy.asarray(add_model_encoder_activations(dataset, model)["encoder_activations"])
        )
    torch.testing.assert_close(cached[-2] * 3, cached[-1] * 2, rtol=1e-2, atol=1e-2)  # float16 on disk


# ----------------------------------------------------------------------------------------------------------------------
# Errors that name the argument
# ----------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(codec_hidden_size=33), "`codec_hidden_size` \\(33\\) must be divisible by `codec_num_attention_heads`"),
        (dict(num_latents=5), "`chunk_shortcut` needs `max_position_embeddings` \\(12\\) divisible by `num_latents`"),
        (dict(decoder_noise_std=-1.0), "`decoder_noise_std` must be >= 0"),
        (dict(timestep_loss_ema_decay=1.0), "`timestep_loss_ema_decay` must be in \\[0, 1\\)"),
        (dict(encoder_warmup_steps=0), "`encoder_warmup_steps` must be positive"),
        (dict(encoder_warmup_gamma_min=2.0), "`encoder_warmup_gamma_min` must be in \\[0, 1\\]"),
        (dict(num_guidance_tokens=1), "`num_guidance_tokens` and `num_mode_tokens` must be 0"),
    ],
)
def test_bad_config_is_refused_by_name(overrides, message):
    with pytest.raises(ValueError, match=message):
        LDLMConfig(**{**TINY_LDLM, **overrides})


def test_a_negative_layer_index_and_no_decoder_noise_are_valid_configs():
    """The strict config checks leave these two signs to `LDLMConfig` (`_signed_fields`); their type is still checked."""
    config = LDLMConfig(**{**TINY_LDLM, "encoder_layer": -3, "decoder_noise_std": 0.0})
    assert (config.encoder_layer, config.decoder_noise_std) == (-3, 0.0)
    with pytest.raises(ValueError, match="`encoder_layer` must be an integer"):
        LDLMConfig(**{**TINY_LDLM, "encoder_layer": -1.5})


def test_bad_inputs_are_refused_by_name():
    model = make_model()
    with pytest.raises(ValueError, match="`latents` must have shape \\(batch, 3, 8\\)"):
        model.decoder.decode(torch.randn(2, 4, 8))
    with pytest.raises(ValueError, match="at most 12 \\(`max_position_embeddings`\\)"):
        model(input_ids=torch.randint(5, 40, (2, 13)))
    with pytest.raises(ValueError, match="`condition`"):
        model.model.denoise(torch.randn(1, 3, 8), 0.5, condition=torch.randn(1, 2, 8))
    with pytest.raises(ValueError, match="LDLMPipeline"):
        model.model.decode_latents(torch.randn(1, 3, 8))
    other = LDLMDecoder(LDLMConfig(**{**TINY_LDLM, "num_latents": 4}).decoder_config())
    with pytest.raises(ValueError, match="`decoder` has `num_latents` = 4"):
        model.model.set_text_decoder(other)
    fresh = LDLMForDiffusion(LDLMConfig(**TINY_LDLM))
    with pytest.raises(ValueError, match="statistics are not fitted"):
        fresh(**batch(), encoder_activations=torch.randn(4, 12, 16))
