"""The shared denoiser transformer: what every method relies on."""

import pytest
import torch

from conftest import TINY_ELF
from latentlm import CosmosLMConfig, CosmosLMModel, ELFConfig, ELFModel


def tiny_config(**overrides):
    return ELFConfig(**{**TINY_ELF, **overrides})


def randomized(model):
    """The output head is zero-initialised; give every weight a value so outputs depend on the inputs."""
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.2)
    return model.eval()


def test_untrained_denoiser_predicts_zero():
    model = ELFModel(tiny_config()).eval()
    out = model(torch.randn(2, 5, 16), 0.5, guidance_scale=1.0)
    assert out.sample.shape == (2, 5, 16)
    assert out.last_hidden_state.shape == (2, 5, 32)
    assert torch.count_nonzero(out.sample) == 0


def test_padding_changes_nothing_for_real_tokens():
    model = randomized(ELFModel(tiny_config()))
    real = torch.randn(1, 6, 16)
    padded = torch.cat([real, 100 * torch.randn(1, 4, 16)], dim=1)
    mask = torch.tensor([[1] * 6 + [0] * 4])

    alone = model(real, 0.3, guidance_scale=2.0).sample
    with_padding = model(padded, 0.3, attention_mask=mask, guidance_scale=2.0).sample[:, :6]
    torch.testing.assert_close(with_padding, alone, atol=1e-5, rtol=1e-5)

    # Without the mask the padding would leak into the real tokens.
    unmasked = model(padded, 0.3, guidance_scale=2.0).sample[:, :6]
    assert not torch.allclose(unmasked, alone, atol=1e-3)


def test_control_tokens_condition_the_prediction():
    model = randomized(ELFModel(tiny_config()))
    x = torch.randn(2, 5, 16)
    base = model(x, 0.3, guidance_scale=1.0).sample
    assert not torch.allclose(model(x, 0.7, guidance_scale=1.0).sample, base)
    assert not torch.allclose(model(x, 0.3, guidance_scale=3.0).sample, base)
    assert not torch.allclose(model(x, 0.3, guidance_scale=1.0, mode=1.0).sample, base)
    assert not torch.allclose(model(x, 0.3, guidance_scale=1.0, self_condition=torch.randn_like(x)).sample, base)
    # Per-example scalars: each row only sees its own timestep.
    per_row = model(x, torch.tensor([0.3, 0.7]), guidance_scale=1.0).sample
    torch.testing.assert_close(per_row[0], base[0])


def test_clean_condition_tokens_are_attended_but_not_returned():
    model = randomized(ELFModel(tiny_config()))
    x, cond = torch.randn(2, 5, 16), torch.randn(2, 3, 16)
    out = model(x, 0.5, guidance_scale=1.0, condition_hidden_states=cond).sample
    assert out.shape == (2, 5, 16)
    assert not torch.allclose(out, model(x, 0.5, guidance_scale=1.0).sample)
    # A masked-out condition is not read: its content makes no difference, and it equals no condition at all.
    hidden = torch.zeros(2, 3)
    masked_a = model(x, 0.5, guidance_scale=1.0, condition_hidden_states=cond, condition_attention_mask=hidden).sample
    masked_b = model(x, 0.5, guidance_scale=1.0, condition_hidden_states=-cond, condition_attention_mask=hidden).sample
    torch.testing.assert_close(masked_a, masked_b)
    torch.testing.assert_close(masked_a, model(x, 0.5, guidance_scale=1.0).sample, atol=1e-5, rtol=1e-5)


def test_left_padded_condition_equals_the_unpadded_one():
    """Rotary positions are relative: padding a short condition on the left changes nothing for the real tokens."""
    model = randomized(ELFModel(tiny_config()))
    x, cond = torch.randn(1, 5, 16), torch.randn(1, 2, 16)
    alone = model(x, 0.4, guidance_scale=1.0, condition_hidden_states=cond).sample
    padded = torch.cat([50 * torch.randn(1, 3, 16), cond], dim=1)
    mask = torch.tensor([[0, 0, 0, 1, 1]])
    with_padding = model(
        x, 0.4, guidance_scale=1.0, condition_hidden_states=padded, condition_attention_mask=mask
    ).sample
    torch.testing.assert_close(with_padding, alone, atol=1e-5, rtol=1e-5)


def test_a_condition_position_offset_puts_every_source_at_the_same_distance_from_the_target():
    """With `condition_position_offset` M, a condition of any length starts at position -M: exactly the default layout
    with the condition right-padded to M tokens. Left padding still changes nothing."""
    offset = 6
    shifted = randomized(ELFModel(tiny_config(condition_position_offset=offset)))
    default = ELFModel(tiny_config())
    default.load_state_dict(shifted.state_dict())
    x = torch.randn(2, 5, 16)
    cond, mask = torch.randn(2, 4, 16), torch.tensor([[0, 0, 1, 1], [1, 1, 1, 1]])  # lengths 2 and 4, left-padded
    out = shifted(x, 0.4, guidance_scale=1.0, condition_hidden_states=cond, condition_attention_mask=mask).sample
    for row, length in enumerate((2, 4)):
        real = cond[row : row + 1, 4 - length :]
        right_padded = torch.cat([real, 50 * torch.randn(1, offset - length, 16)], dim=1)
        right_mask = torch.tensor([[1] * length + [0] * (offset - length)])
        expected = default(x[row : row + 1], 0.4, guidance_scale=1.0, condition_hidden_states=right_padded,
                           condition_attention_mask=right_mask).sample  # fmt: skip
        torch.testing.assert_close(out[row : row + 1], expected, atol=1e-5, rtol=1e-5)
        alone = shifted(x[row : row + 1], 0.4, guidance_scale=1.0, condition_hidden_states=real).sample
        torch.testing.assert_close(out[row : row + 1], alone, atol=1e-5, rtol=1e-5)
    # Without a condition the offset has no effect.
    torch.testing.assert_close(shifted(x, 0.4, guidance_scale=1.0).sample, default(x, 0.4, guidance_scale=1.0).sample)


def test_a_condition_longer_than_its_position_offset_is_refused_by_name():
    model = ELFModel(tiny_config(condition_position_offset=3))
    with pytest.raises(ValueError, match="condition_position_offset"):
        model(torch.randn(1, 5, 16), 0.5, guidance_scale=1.0, condition_hidden_states=torch.randn(1, 4, 16))
    for bad in (0, -2, 2.5, True, "4"):
        with pytest.raises(ValueError, match="condition_position_offset"):
            tiny_config(condition_position_offset=bad)
    with pytest.raises(ValueError, match="condition_position_offset"):
        tiny_config(condition_position_offset=30)  # beyond max_position_embeddings (24)


def test_the_condition_goes_through_the_self_conditioning_projection_as_its_own_estimate():
    """ELF's code feeds condition tokens as `[x_c, x_c]`: a self-condition on the target does not touch them."""
    model = randomized(ELFModel(tiny_config()))
    x, cond = torch.randn(1, 4, 16), torch.randn(1, 3, 16)
    seen = {}
    model.transformer.input_proj.register_forward_hook(lambda module, args, out: seen.update(tokens=out))
    model(x, 0.5, guidance_scale=1.0, condition_hidden_states=cond, self_condition=torch.randn_like(x))
    expected = model.transformer.input_proj(model.transformer.self_cond_proj(torch.cat([cond, cond], dim=-1)))
    torch.testing.assert_close(seen["tokens"][:, :3], expected)


def test_cross_attention_reads_the_condition_and_a_dropped_one_is_the_null_branch():
    config = CosmosLMConfig(
        vocab_size=32, num_latents=5, latent_dim=16, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        conditional=True, cross_attention_dim=12,
    )  # fmt: skip
    model = randomized(CosmosLMModel(config))
    x, context = torch.randn(2, 5, 16), torch.randn(2, 4, 12)
    none = model(x, 0.5).sample
    read = model(x, 0.5, encoder_hidden_states=context).sample
    assert not torch.allclose(read, none)
    masked = model(x, 0.5, encoder_hidden_states=context, encoder_attention_mask=torch.zeros(2, 4)).sample
    torch.testing.assert_close(masked, none, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="cross_attention_dim"):
        randomized(ELFModel(tiny_config()))(x, 0.5, guidance_scale=1.0, encoder_hidden_states=context)


def test_long_skips_are_an_option_of_the_same_backbone():
    plain, skipped = ELFModel(tiny_config()), ELFModel(tiny_config(num_hidden_layers=4, use_long_skips=True))
    assert plain.transformer.skip_projs is None
    assert len(skipped.transformer.skip_projs) == 2
    out = randomized(skipped)(torch.randn(2, 5, 16), 0.5, guidance_scale=1.0).sample
    assert torch.isfinite(out).all()


def test_gradient_checkpointing_gives_the_same_gradients():
    def grads(checkpointing):
        model = randomized(ELFModel(tiny_config())).train()
        if checkpointing:
            model.gradient_checkpointing_enable()
        model(torch.ones(2, 5, 16), 0.5, guidance_scale=1.0).sample.square().sum().backward()
        return [p.grad.clone() for p in model.parameters() if p.grad is not None]

    for plain, checkpointed in zip(grads(False), grads(True)):
        torch.testing.assert_close(plain, checkpointed)


def test_bad_inputs_name_the_argument():
    model = ELFModel(tiny_config())
    with pytest.raises(ValueError, match="max_position_embeddings"):
        model(torch.randn(1, 30, 16), 0.5, guidance_scale=1.0)
    with pytest.raises(ValueError, match="guidance_scale"):
        model(torch.randn(1, 5, 16), 0.5)
    no_self_cond = ELFModel(tiny_config(self_conditioning=False))
    with pytest.raises(ValueError, match="self_condition"):
        no_self_cond(torch.randn(1, 5, 16), 0.5, guidance_scale=1.0, self_condition=torch.randn(1, 5, 16))
    with pytest.raises(ValueError, match="num_attention_heads"):
        tiny_config(hidden_size=30, num_attention_heads=4)
