"""Cosmos' autoencoder and latent diffusion model: shapes, masks, the losses, the augmentations, the statistics,
saving, and errors that name the argument."""

import json
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
from latentlm.models.cosmos_lm.configuration_cosmos_lm import CODEC_FORMS
from latentlm.models.perceiver import GELUFeedForward


# Fields of the original codec's config (before `codec_version`): a config saved then has these and no other.
_ORIGINAL_FIELDS = {"hidden_dropout", "chunk_shortcut", "init_lm_head_from_encoder"}
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


@pytest.mark.parametrize("codec_version", [1, 2])
def test_decode_to_ids_is_the_argmax_of_decode(codec_version):
    autoencoder = tiny_autoencoder(codec_version=codec_version).eval()
    latents = torch.randn(2, 3, 8)
    with torch.inference_mode():
        assert torch.equal(autoencoder.decode_to_ids(latents), autoencoder.decode(latents).argmax(dim=-1))
    with pytest.raises(ValueError, match="latents"):
        autoencoder.decode_to_ids(torch.zeros(1, 4, 8))


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
    ce = torch.nn.functional.cross_entropy(autoencoder.token_logits(hidden)[real], ids[real])
    target = autoencoder.normalize_activations(autoencoder.encoder_activations(ids, mask))
    mse = (autoencoder.predict_activations(hidden) - target).pow(2).mean(-1)[real].mean()
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

    plain = tiny_autoencoder(**NO_AUGMENTATION, hidden_dropout=0.0)
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


@pytest.mark.parametrize("codec_version", [1, 2])
def test_the_encoder_is_not_saved_and_statistics_round_trip_through_auto_classes(tmp_path, codec_version):
    autoencoder = tiny_autoencoder(codec_version=codec_version, mask_token_id=4)
    autoencoder.fit_latent_statistics([{"input_ids": torch.randint(5, 40, (4, 12))}])
    if autoencoder.config.mask_token_slots:
        autoencoder.set_mask_embedding(autoencoder.text_encoder.embed.weight)
    with torch.no_grad():  # trained values, not the initial ones, must come back
        autoencoder.latent_queries.add_(0.5)
    encoder_weight = autoencoder.text_encoder.embed.weight
    assert all(p is not encoder_weight for p in autoencoder.parameters()) and not encoder_weight.requires_grad
    assert not any(name.startswith(("embed", "text_encoder")) for name in autoencoder.state_dict())
    autoencoder.save_pretrained(tmp_path)
    config = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(config, CosmosLMAutoencoderConfig)
    saved = {key: value for key, value in config.to_diff_dict().items() if key != "_name_or_path"}
    assert saved == autoencoder.config.to_diff_dict()
    reloaded = AutoModel.from_pretrained(tmp_path)
    assert isinstance(reloaded, CosmosLMAutoencoder) and reloaded.text_encoder is None
    for key, value in autoencoder.state_dict().items():
        assert torch.equal(value, reloaded.state_dict()[key]), key
    latents = torch.randn(1, 3, 8)
    torch.testing.assert_close(reloaded.eval().decode(latents), autoencoder.eval().decode(latents))


@pytest.mark.parametrize("codec_version, steps", [(1, 80), (2, 150)])
def test_a_few_steps_reduce_the_reconstruction_loss(codec_version, steps):
    autoencoder = tiny_autoencoder(**NO_AUGMENTATION, codec_version=codec_version, hidden_dropout=0.0)
    ids = torch.randint(5, 40, (8, 12))
    optimizer = torch.optim.AdamW(autoencoder.parameters(), lr=3e-3)
    losses = []
    for _ in range(steps):
        loss = autoencoder(ids).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_the_token_head_starts_from_the_principal_components_of_the_encoder_vocabulary():
    autoencoder = tiny_autoencoder(lm_head="factored", couple_heads=False)
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
    autoencoder = tiny_autoencoder(locality_bias=True, chunk_shortcut=True)
    slopes = autoencoder.compressor.blocks[0].attn.log_slopes.exp()
    torch.testing.assert_close(slopes, torch.tensor([4.0, 2.0]))
    plain = tiny_autoencoder(chunk_shortcut=False, locality_bias=False).eval()
    assert plain.chunk_proj is None and plain.unchunk_proj is None
    assert plain.compressor.blocks[0].attn.log_slopes is None
    assert plain.decode(plain.encode(torch.randint(5, 40, (2, 12)))).shape == (2, 12, 40)
    with pytest.raises(ValueError, match="chunk_shortcut"):
        CosmosLMAutoencoderConfig(**{**TINY_COSMOS_AE, "num_latents": 5, "chunk_shortcut": True})
    assert not CosmosLMAutoencoderConfig(**{**TINY_COSMOS_AE, "num_latents": 5}).chunk_shortcut  # published: off


# ----------------------------------------------------------------------------------------------------------------------
# The published form, latentlm's additions, and configs saved before the published form existed
# ----------------------------------------------------------------------------------------------------------------------


def test_new_configs_are_cosmos_as_published():
    autoencoder = tiny_autoencoder(latent_dim=32)  # hidden_size 32: no projection around the latent at all
    config = autoencoder.config
    assert config.codec_version == 2 and config.intermediate_size == 4 * 32 and config.hidden_dropout == 0.1
    assert (
        config.couple_heads and config.mask_token_slots and config.normalized_latent and config.feed_forward == "gelu"
    )
    assert not (config.locality_bias or config.chunk_shortcut or config.init_lm_head_from_encoder)
    # no Linear into the compressor, after its norm, or into the decompressor; no final decoder norm; no biases
    assert autoencoder.activation_proj is None and autoencoder.to_latents is None and autoencoder.from_latents is None
    assert autoencoder.decompressor.norm is None and autoencoder.compressor.norm is None
    block = autoencoder.decompressor.blocks[0]
    assert isinstance(block.mlp, GELUFeedForward) and isinstance(block.mlp.norm, torch.nn.LayerNorm)
    assert block.mlp.dropout.p == 0.1 and block.attn.q_proj.bias is None and block.attn.log_slopes is None
    assert isinstance(autoencoder.lm_head, torch.nn.Linear) and autoencoder.lm_head.bias is None
    assert autoencoder.lm_head.in_features == config.encoder_dim  # the head reads h_hat, in the encoder's width


def test_the_latent_is_the_rms_normalised_compressor_output():
    for latent_dim in (32, 8):  # = hidden_size: the norm's output itself; else a Linear before the norm
        autoencoder = tiny_autoencoder(latent_dim=latent_dim).eval()
        latents = autoencoder.encode(torch.randint(5, 40, (2, 12)))
        assert latents.shape == (2, 3, latent_dim)
        with torch.no_grad():
            autoencoder.latent_norm.weight.fill_(1.0)
        rms = autoencoder.encode(torch.randint(5, 40, (2, 12))).pow(2).mean(-1).sqrt()
        torch.testing.assert_close(rms, torch.ones(2, 3), atol=1e-4, rtol=0)
        assert (autoencoder.to_latents is None) == (latent_dim == 32)


@pytest.mark.parametrize("hidden_size", [32, 16])  # 16 = encoder_dim: h_hat is the final hidden state itself
def test_coupled_heads_read_what_the_mse_matches_so_its_gradient_reaches_the_token_head_input(hidden_size):
    autoencoder = tiny_autoencoder(**NO_AUGMENTATION, hidden_size=hidden_size, hidden_dropout=0.0).eval()
    assert (autoencoder.activation_head is None) == (hidden_size == 16)
    ids = torch.randint(5, 40, (2, 12))
    seen = []
    handle = autoencoder.lm_head.register_forward_hook(lambda module, args, out: seen.append(args[0]))
    out = autoencoder(ids)
    handle.remove()
    head_input = seen[0]
    hidden = autoencoder.decompress(autoencoder.encode(ids))
    torch.testing.assert_close(head_input, autoencoder.predict_activations(hidden))  # the head reads h_hat
    assert head_input.shape[-1] == autoencoder.config.encoder_dim
    mse = out.loss - torch.nn.functional.cross_entropy(out.logits.flatten(0, 1), ids.flatten())
    (grad,) = torch.autograd.grad(mse, head_input)
    target = autoencoder.normalize_activations(autoencoder.encoder_activations(ids))
    expected = 2 * (head_input - target) / (ids.numel() * autoencoder.config.encoder_dim)
    torch.testing.assert_close(grad, expected)  # the MSE's gradient lands on exactly what the token head reads

    side = tiny_autoencoder(**NO_AUGMENTATION, hidden_size=hidden_size, couple_heads=False).eval()
    hidden = side.decompress(side.encode(ids))
    torch.testing.assert_close(side.decode(side.encode(ids)), side.lm_head(hidden))  # the old split: reads h


def test_token_slots_are_the_encoders_mask_embedding_through_an_mlp_plus_positions():
    autoencoder = tiny_autoencoder(mask_token_id=4).eval()
    embeddings = autoencoder.text_encoder.embed.weight
    autoencoder.set_mask_embedding(embeddings)
    torch.testing.assert_close(autoencoder.mask_embedding, embeddings[4])
    assert autoencoder.slot_mlp.up_proj.in_features == autoencoder.config.encoder_dim
    latents = torch.randn(2, 3, 8)
    seen = []
    handle = autoencoder.decompressor.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    before = autoencoder.decode(latents)
    handle.remove()
    expected = autoencoder.slot_mlp(embeddings[4]) + autoencoder.token_slots
    torch.testing.assert_close(seen[0], expected.expand(2, -1, -1))
    autoencoder.set_mask_embedding(torch.randn_like(embeddings))  # another [MASK] vector: other slots, other output
    assert not torch.allclose(autoencoder.decode(latents), before)
    with pytest.raises(ValueError, match="mask_token_id"):
        tiny_autoencoder().set_mask_embedding(embeddings)
    assert not hasattr(tiny_autoencoder(mask_token_slots=False), "mask_embedding")


def test_prepare_for_training_stores_the_mask_embedding_and_initialises_the_head_from_the_embeddings():
    autoencoder = tiny_autoencoder(mask_token_id=4, init_lm_head_from_encoder=True)
    autoencoder.activation_std.zero_()  # never trained
    autoencoder.prepare_for_training([{"input_ids": torch.randint(5, 40, (4, 12))}])
    embeddings = autoencoder.text_encoder.embed.weight
    torch.testing.assert_close(autoencoder.mask_embedding, embeddings[4])
    # the coupled linear head reads the encoder's coordinates: the embeddings themselves, centred, std 0.1
    centred = embeddings - embeddings.mean(0)
    torch.testing.assert_close(autoencoder.lm_head.weight, centred / centred.std() * 0.1)


SWITCHES = [
    ("couple_heads", False), ("mask_token_slots", False), ("normalized_latent", False), ("feed_forward", "swiglu"),
    ("decoder_final_norm", True), ("lm_head", "factored"), ("locality_bias", True), ("chunk_shortcut", True),
]  # fmt: skip


@pytest.mark.parametrize("field, value", SWITCHES)
def test_each_switch_changes_only_its_part_and_every_parameter_learns(field, value):
    published = tiny_autoencoder(mask_token_id=4)
    switched = tiny_autoencoder(mask_token_id=4, **{field: value})

    def layout(model):
        return {name: tuple(param.shape) for name, param in model.named_parameters()}

    assert layout(published) != layout(switched)
    assert all(getattr(switched.config, f) == getattr(published.config, f) for f, _ in SWITCHES if f != field)
    for model in (published, switched):
        out = model(torch.randint(5, 40, (4, 12)))
        out.loss.backward()
        assert torch.isfinite(out.loss)
        assert [n for n, p in model.named_parameters() if p.grad is None] == []
        assert model.eval().decode(torch.randn(1, 3, 8)).shape == (1, 12, 40)


def test_a_config_saved_before_the_published_form_loads_as_the_original_codec(tmp_path):
    legacy = tiny_autoencoder(codec_version=1)
    saved = legacy.config.to_dict()
    new_fields = [*CODEC_FORMS[1], "codec_version", "mask_token_id"]
    old_dict = {key: value for key, value in saved.items() if key not in new_fields or key in _ORIGINAL_FIELDS}
    assert "couple_heads" not in old_dict and "chunk_shortcut" in old_dict
    config = CosmosLMAutoencoderConfig.from_dict(old_dict)
    assert config.codec_version == 1
    assert {name: getattr(config, name) for name in CODEC_FORMS[1]} == CODEC_FORMS[1]
    assert config.intermediate_size == int(8 * 32 / 3)
    # the original layout: input/output projections, learned slots, SwiGLU, final norm, factored split heads
    keys = set(CosmosLMAutoencoder(config).state_dict())
    assert keys == set(legacy.state_dict())
    assert {
        "activation_proj.weight",
        "to_latents.weight",
        "from_latents.weight",
        "token_slots",
        "compressor.blocks.0.attn.log_slopes",
        "decompressor.norm.weight",
        "lm_head.dense.weight",
        "activation_head.weight",
        "chunk_proj.weight",
        "decompressor.blocks.0.mlp.gate_up_proj.weight",
    } <= keys
    # and a folder saved then (no `codec_version` in its config.json) loads with every weight and the same outputs
    legacy.save_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps(old_dict))
    reloaded = AutoModel.from_pretrained(tmp_path).eval()
    latents = torch.randn(1, 3, 8)
    torch.testing.assert_close(reloaded.decode(latents), legacy.eval().decode(latents))
    assert CosmosLMAutoencoderConfig.from_dict({**old_dict, "codec_version": 2}).couple_heads  # explicit wins


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
