"""Cosmos' autoencoder and latent diffusion model: shapes, masks, the losses, the augmentations, the statistics,
saving, and errors that name the argument."""

import math

import pytest
import torch
from transformers import AutoConfig, AutoModel

from conftest import NO_AUGMENTATION, TINY_COSMOS_AE, EmbeddingEncoder
from latentlm import (
    AutoModelForTextDiffusion,
    CosmosLMAutoencoder,
    CosmosLMAutoencoderConfig,
    CosmosLMConfig,
    CosmosLMForDiffusion,
)


TINY_DIFFUSION = dict(
    vocab_size=40, num_latents=3, latent_dim=8, max_position_embeddings=12, hidden_size=32, num_hidden_layers=2,
    num_attention_heads=2,
)  # fmt: skip


def tiny_autoencoder(**overrides) -> CosmosLMAutoencoder:
    torch.manual_seed(0)
    autoencoder = CosmosLMAutoencoder(CosmosLMAutoencoderConfig(**{**TINY_COSMOS_AE, **overrides}))
    autoencoder.set_text_encoder(EmbeddingEncoder())
    autoencoder.fit_activation_statistics([{"input_ids": torch.randint(5, 40, (8, 12))}])
    return autoencoder


def tiny_diffusion(autoencoder=None) -> CosmosLMForDiffusion:
    torch.manual_seed(0)
    model = CosmosLMForDiffusion(CosmosLMConfig(**TINY_DIFFUSION))
    autoencoder = autoencoder or tiny_autoencoder()
    autoencoder.fit_latent_statistics([{"input_ids": torch.randint(5, 40, (8, 12))}])
    model.set_autoencoder(autoencoder)
    return model


# ----------------------------------------------------------------------------------------------------------------------
# The autoencoder
# ----------------------------------------------------------------------------------------------------------------------


def test_encode_compresses_tokens_to_latents_and_decode_gives_logits_for_every_slot():
    autoencoder = tiny_autoencoder().eval()
    ids = torch.randint(5, 40, (2, 12))
    latents = autoencoder.encode(ids)
    assert latents.shape == (2, 3, 8)
    assert autoencoder.decode(latents).shape == (2, 12, 40)
    assert autoencoder.encode(ids[:, :7]).shape == (2, 3, 8)  # shorter texts are fine
    assert autoencoder.config.compression_ratio == 4.0


def test_padding_is_invisible_to_the_compressor():
    autoencoder = tiny_autoencoder().eval()
    ids = torch.randint(5, 40, (1, 12))
    mask = torch.tensor([[1] * 8 + [0] * 4])
    other = ids.clone()
    other[:, 8:] = torch.randint(5, 40, (1, 4))
    torch.testing.assert_close(autoencoder.encode(ids, mask), autoencoder.encode(other, mask))
    assert not torch.allclose(autoencoder.encode(ids), autoencoder.encode(other))


def test_loss_is_token_cross_entropy_plus_mse_to_the_normalised_activations_on_real_tokens():
    autoencoder = tiny_autoencoder().eval()
    ids = torch.randint(5, 40, (2, 12))
    mask = torch.ones(2, 12, dtype=torch.long)
    mask[1, 9:] = 0
    out = autoencoder(ids, mask)
    hidden = autoencoder.decompress(autoencoder.encode(ids, mask))
    real = mask.bool()
    ce = torch.nn.functional.cross_entropy(autoencoder.lm_head(hidden)[real], ids[real])
    target = autoencoder.normalize_activations(autoencoder.encoder_activations(ids, mask))
    mse = (autoencoder.activation_head(hidden) - target).pow(2).mean(-1)[real].mean()
    torch.testing.assert_close(out.loss, ce + mse)
    torch.testing.assert_close(out.metrics["ce_loss"], ce)
    accuracy = (out.logits.argmax(-1) == ids)[real].float().mean()
    torch.testing.assert_close(out.metrics["accuracy"], accuracy)


def test_augmentations_act_in_training_only_and_switch_off_by_configuration():
    ids = torch.randint(5, 40, (4, 12))
    autoencoder = tiny_autoencoder()
    autoencoder.train()
    torch.manual_seed(1)
    first = autoencoder(ids).loss
    torch.manual_seed(2)
    assert not torch.allclose(first, autoencoder(ids).loss)
    autoencoder.eval()
    torch.testing.assert_close(autoencoder(ids).loss, autoencoder(ids).loss)

    plain = tiny_autoencoder(**NO_AUGMENTATION)
    trained_mode, eval_mode = plain.train()(ids).loss, plain.eval()(ids).loss
    torch.testing.assert_close(trained_mode, eval_mode)


def test_input_augmentations_split_the_batch_into_masked_noised_and_clean_rows():
    autoencoder = tiny_autoencoder(activation_mask_fraction=0.25, activation_noise_fraction=0.5)
    activations = torch.randn(8, 12, 16)
    mask = torch.ones(8, 12, dtype=torch.bool)
    torch.manual_seed(3)
    perturbed, kept = autoencoder._perturb_activations(activations, mask)
    torch.manual_seed(3)
    drop = torch.rand(8, 12) < 0.3
    mixed = 0.7 * activations + math.sqrt(1 - 0.49) * torch.randn_like(activations)
    # rows 0-1: tokens hidden from the compressor, values untouched
    assert torch.equal(kept[:2], ~drop[:2]) and torch.equal(perturbed[:2], activations[:2])
    # rows 2-5: delta-mixed with Gaussian noise, nothing hidden
    torch.testing.assert_close(perturbed[2:6], mixed[2:6])
    assert kept[2:].all()
    # rows 6-7: clean
    assert torch.equal(perturbed[6:], activations[6:])


def test_latent_dropout_zeroes_about_the_configured_share_of_latent_elements():
    autoencoder = tiny_autoencoder(latent_dropout=0.4, num_latents=64, chunk_shortcut=False).train()
    torch.manual_seed(0)
    latents = autoencoder(torch.randint(5, 40, (16, 12))).latents
    assert 0.35 < (latents == 0).float().mean().item() < 0.45


def test_activation_statistics_are_per_dimension_over_real_tokens():
    autoencoder = CosmosLMAutoencoder(CosmosLMAutoencoderConfig(**TINY_COSMOS_AE))
    activations = torch.zeros(1, 3, 16)
    activations[0, 0], activations[0, 1], activations[0, 2] = 1.0, 3.0, 100.0
    activations[0, :, 1] = torch.tensor([2.0, 2.0, -50.0])
    batch = {"input_ids": torch.zeros(1, 3, dtype=torch.long), "attention_mask": torch.tensor([[1, 1, 0]]),
             "encoder_activations": activations}  # fmt: skip
    autoencoder.fit_activation_statistics([batch])
    assert autoencoder.activation_mean[0] == 2.0 and autoencoder.activation_std[0] == 1.0
    assert autoencoder.activation_mean[1] == 2.0  # a constant dimension keeps a tiny positive std
    assert autoencoder.activation_std[1] > 0


def test_latent_statistics_are_per_position_and_dimension_and_invertible():
    autoencoder = tiny_autoencoder().eval()
    with pytest.raises(ValueError, match="fit_latent_statistics"):
        autoencoder.normalize_latents(torch.zeros(1, 3, 8))
    batches = [{"input_ids": torch.randint(5, 40, (16, 12))}]
    autoencoder.fit_latent_statistics(batches)
    assert autoencoder.latent_mean.shape == autoencoder.latent_std.shape == (3, 8)
    normalised = autoencoder.normalize_latents(autoencoder.encode(batches[0]["input_ids"]))
    torch.testing.assert_close(normalised.mean(0), torch.zeros(3, 8), atol=1e-4, rtol=0)
    latents = torch.randn(2, 3, 8)
    torch.testing.assert_close(autoencoder.denormalize_latents(autoencoder.normalize_latents(latents)), latents)


def test_the_encoder_is_not_saved_and_statistics_round_trip_through_auto_classes(tmp_path):
    autoencoder = tiny_autoencoder()
    autoencoder.fit_latent_statistics([{"input_ids": torch.randint(5, 40, (4, 12))}])
    with torch.no_grad():  # trained values, not the initial ones, must come back
        autoencoder.compressor.blocks[0].attn.log_slopes.add_(0.5)
    encoder_weight = autoencoder.text_encoder.embed.weight
    assert all(p is not encoder_weight for p in autoencoder.parameters()) and not encoder_weight.requires_grad
    assert not any(name.startswith(("embed", "text_encoder")) for name in autoencoder.state_dict())
    autoencoder.save_pretrained(tmp_path)
    assert isinstance(AutoConfig.from_pretrained(tmp_path), CosmosLMAutoencoderConfig)
    reloaded = AutoModel.from_pretrained(tmp_path)
    assert isinstance(reloaded, CosmosLMAutoencoder) and reloaded.text_encoder is None
    for key, value in autoencoder.state_dict().items():
        assert torch.equal(value, reloaded.state_dict()[key]), key
    latents = torch.randn(1, 3, 8)
    torch.testing.assert_close(reloaded.eval().decode(latents), autoencoder.eval().decode(latents))


def test_a_few_steps_reduce_the_reconstruction_loss():
    autoencoder = tiny_autoencoder(**NO_AUGMENTATION)
    ids = torch.randint(5, 40, (8, 12))
    optimizer = torch.optim.AdamW(autoencoder.parameters(), lr=3e-3)
    losses = []
    for _ in range(80):
        loss = autoencoder(ids).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_the_token_head_starts_from_the_principal_components_of_the_encoder_vocabulary():
    autoencoder = tiny_autoencoder()
    embeddings = torch.randn(40, 3) @ torch.randn(3, 24)  # rank 3: three components carry everything
    autoencoder.init_lm_head_from_embeddings(embeddings)
    head = autoencoder.lm_head.unembed.weight
    assert head.shape == (40, 16) and torch.all(autoencoder.lm_head.unembed.bias == 0)
    torch.testing.assert_close(head.std(), torch.tensor(0.1))
    # the head's columns span the centred embeddings' row space (3 directions, the rest ~0)
    singular = torch.linalg.svdvals(head)
    assert singular[2] > 1e-3 and singular[3] < 1e-4 * singular[0]
    with pytest.raises(ValueError, match="embeddings"):
        autoencoder.init_lm_head_from_embeddings(torch.randn(39, 24))


def test_perceiver_heads_start_with_geometric_locality_slopes_and_without_the_shortcut_still_work():
    autoencoder = tiny_autoencoder()
    slopes = autoencoder.compressor.blocks[0].attn.log_slopes.exp()
    torch.testing.assert_close(slopes, torch.tensor([4.0, 2.0]))
    plain = tiny_autoencoder(chunk_shortcut=False).eval()
    assert plain.chunk_proj is None and plain.unchunk_proj is None
    assert plain.decode(plain.encode(torch.randint(5, 40, (2, 12)))).shape == (2, 12, 40)
    with pytest.raises(ValueError, match="chunk_shortcut"):
        CosmosLMAutoencoderConfig(**{**TINY_COSMOS_AE, "num_latents": 5})


def test_decode_rejects_latents_of_the_wrong_shape():
    with pytest.raises(ValueError, match="latents"):
        tiny_autoencoder().decode(torch.zeros(1, 4, 8))


@pytest.mark.parametrize(
    "field, value",
    [("num_latents", 0), ("latent_dropout", 1.5), ("activation_noise_fraction", 0.8), ("hidden_size", 31)],
)
def test_autoencoder_config_rejects_bad_values_by_name(field, value):
    with pytest.raises(ValueError, match=field):
        CosmosLMAutoencoderConfig(**{**TINY_COSMOS_AE, field: value})


# ----------------------------------------------------------------------------------------------------------------------
# Latent diffusion
# ----------------------------------------------------------------------------------------------------------------------


def test_the_denoiser_is_the_shared_backbone_with_long_skips_and_no_guidance():
    model = tiny_diffusion()
    transformer = model.model.transformer
    # Cosmos' published denoiser: additive skips, time and self-conditioning through every block (no prefix at all).
    assert model.config.use_long_skips and transformer.options.long_skip_merge == "add"
    assert transformer.guidance_tokens is None and transformer.time_tokens is None
    assert transformer.layer_conditioning.time_layers is not None
    assert model.latent_shape(12) == model.latent_shape(5) == (3, 8)


def test_diffusion_loss_is_the_x0_mse_of_the_noised_normalised_latents(monkeypatch):
    model = tiny_diffusion().eval()
    ids = torch.randint(5, 40, (4, 12))
    x0 = model.autoencoder.normalize_latents(model.autoencoder.encode(ids))
    seen = {}

    def oracle(noisy, t, self_condition=None, **kwargs):
        """Predicts the clean latents off by 0.5 everywhere; records what the denoiser is given."""
        seen["noisy"], seen["t"] = noisy, t
        return type("Out", (), {"sample": x0 + 0.5})()

    monkeypatch.setattr(model.model, "forward", oracle)
    torch.manual_seed(0)
    loss = model(ids).loss
    torch.testing.assert_close(loss, torch.tensor(0.25))
    torch.manual_seed(0)
    torch.rand(())  # the batch's self-conditioning coin is drawn first
    t = model.noise_scheduler.sample_training_timesteps(4)
    alpha, sigma = model.noise_scheduler.alpha_sigma(t)
    torch.testing.assert_close(seen["t"], t)
    residual = (seen["noisy"] - alpha[:, None, None] * x0) / sigma[:, None, None]
    assert abs(residual.std().item() - 1.0) < 0.3  # what is left is the unit Gaussian noise


def test_diffusion_trains_on_given_latents_and_never_saves_the_autoencoder(tmp_path):
    model = tiny_diffusion()
    assert not any("autoencoder" in name or "compressor" in name for name in model.state_dict())
    loss = model(torch.zeros(2, 12, dtype=torch.long), latents=torch.randn(2, 3, 8)).loss
    loss.backward()
    assert model.model.transformer.proj_out.weight.grad is not None
    model.save_pretrained(tmp_path)
    reloaded = AutoModelForTextDiffusion.from_pretrained(tmp_path)
    assert isinstance(reloaded, CosmosLMForDiffusion) and reloaded.autoencoder is None


def test_diffusion_without_an_autoencoder_says_how_to_give_one():
    model = CosmosLMForDiffusion(CosmosLMConfig(**TINY_DIFFUSION))
    with pytest.raises(ValueError, match="--autoencoder"):
        model(torch.zeros(1, 12, dtype=torch.long))


@pytest.mark.parametrize("field, value", [("num_latents", 4), ("latent_dim", 6), ("max_position_embeddings", 16)])
def test_an_autoencoder_of_another_shape_is_refused_by_name(field, value):
    model = CosmosLMForDiffusion(CosmosLMConfig(**{**TINY_DIFFUSION, field: value}))
    with pytest.raises(ValueError, match=field):
        model.set_autoencoder(tiny_autoencoder())


@pytest.mark.parametrize("field, value", [("t_min", 1.0), ("schedule_d", 0.0), ("num_guidance_tokens", 2)])
def test_diffusion_config_rejects_bad_values_by_name(field, value):
    with pytest.raises(ValueError, match=field):
        CosmosLMConfig(**{**TINY_DIFFUSION, field: value})
