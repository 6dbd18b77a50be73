"""Cosmos' published denoiser as options of the one backbone (`models/denoiser_conditioning.py`): what each option
builds, that configs without the options behave exactly as before, and that the options combine with the rest."""

import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoConfig

import latentlm
from elf_reference import REFERENCE, bundled_elf_transformer, reference_forward
from latentlm import CosmosLMConfig, CosmosLMForDiffusion, CosmosLMModel
from latentlm.models.denoiser_conditioning import DenoiserOptions, SinusoidalTimesteps


TINY = dict(
    vocab_size=40, num_latents=3, latent_dim=8, max_position_embeddings=12, hidden_size=32, num_hidden_layers=2,
    num_attention_heads=2,
)  # fmt: skip
FIRST_FORM = {**DenoiserOptions().to_dict(), "num_time_tokens": 4, "self_cond_per_batch": False}
NEW_KEYS = (*DenoiserOptions().to_dict(), "self_cond_per_batch")


def cosmos(**overrides) -> CosmosLMModel:
    torch.manual_seed(0)
    return CosmosLMModel(CosmosLMConfig(**{**TINY, **overrides})).eval()


def randomized(model):
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.2)
    return model.eval()


# ---------------------------------------------------------------------------------------------- defaults and old configs


def test_new_cosmos_configs_get_the_published_denoiser():
    config = CosmosLMConfig(**TINY)
    assert DenoiserOptions.from_config(config) == DenoiserOptions("per_layer", 10.0, "per_layer", "add", "norm")
    assert config.num_time_tokens == 0 and config.self_cond_per_batch
    transformer = CosmosLMModel(config).transformer
    assert transformer.time_tokens is None and transformer.self_cond_proj is None and transformer.skip_projs is None
    assert len(transformer.layer_conditioning.time_layers) == len(transformer.layer_conditioning.self_cond_layers) == 2
    # hidden 32 != latent 8: a plain Linear to the latent width, then the RMSNorm whose output is the prediction.
    assert transformer.norm_out.normalized_shape == (8,) and not getattr(transformer.proj_out, "_zero_init", False)
    assert CosmosLMConfig(**TINY, time_injection="tokens").num_time_tokens == 4


def test_old_saved_cosmos_config_without_the_new_keys_keeps_the_first_form(tmp_path):
    saved = CosmosLMConfig(**TINY, **FIRST_FORM).to_dict()
    for key in NEW_KEYS:
        del saved[key]  # a config.json written before the options existed
    (tmp_path / "config.json").write_text(json.dumps(saved))
    for config in (CosmosLMConfig.from_dict(dict(saved)), AutoConfig.from_pretrained(tmp_path)):
        assert {key: getattr(config, key) for key in FIRST_FORM} == FIRST_FORM
    old = CosmosLMModel(AutoConfig.from_pretrained(tmp_path))
    assert old.transformer.time_tokens is not None and old.transformer.layer_conditioning is None
    assert set(old.state_dict()) == set(cosmos(**FIRST_FORM).state_dict())
    # A new config round-trips with its own values: every field is saved.
    new = CosmosLMConfig(**TINY)
    new.save_pretrained(tmp_path / "new")
    loaded = AutoConfig.from_pretrained(tmp_path / "new")
    assert {key: getattr(loaded, key) for key in FIRST_FORM} == {key: getattr(new, key) for key in FIRST_FORM}


def test_bundled_elf_model_without_the_options_is_bit_identical_to_before():
    config = json.loads((Path(latentlm.pretrained_path("elf-tiny-prose")) / "model" / "config.json").read_text())
    assert not set(NEW_KEYS) & set(config)
    transformer = bundled_elf_transformer()
    assert transformer.options == DenoiserOptions()
    out, reference = reference_forward(transformer), load_file(str(REFERENCE))
    # Exact: the first form must run the same operations as before (see `elf_reference.py` for the recording).
    assert torch.equal(out.sample, reference["sample"])
    assert torch.equal(out.last_hidden_state, reference["last_hidden_state"])


# ---------------------------------------------------------------------------------------------------- each option


def test_time_sinusoid_is_cosmos_timestep_embedding():
    """Cosmos' `timestep_embedding(t, dim, max_period)`: ``[cos(t f), sin(t f)]``, ``f_k = max_period^(-k / half)``."""
    t = torch.tensor([0.0, 0.37, 1.0])
    freqs = torch.exp(-math.log(10.0) * torch.arange(4) / 4)
    expected = torch.cat([torch.cos(t[:, None] * freqs), torch.sin(t[:, None] * freqs)], dim=-1)
    torch.testing.assert_close(SinusoidalTimesteps(8, max_period=10.0)(t), expected)


def test_per_layer_time_conditions_every_row_on_its_own_time():
    model = randomized(cosmos(self_conditioning=False))
    x = torch.randn(2, 3, 8)
    base = model(x, 0.3).sample
    assert not torch.allclose(model(x, 0.7).sample, base)
    torch.testing.assert_close(model(x, torch.tensor([0.3, 0.7])).sample[0], base[0])
    # The period changes the features, hence the prediction.
    other = randomized(cosmos(self_conditioning=False, time_embedding_max_period=10000.0))
    assert not torch.allclose(other(x, 0.3).sample, base)


def test_per_layer_self_conditioning_is_read_and_zeros_mean_no_estimate():
    model = randomized(cosmos())
    x = torch.randn(2, 3, 8)
    base = model(x, 0.5).sample
    torch.testing.assert_close(model(x, 0.5, self_condition=torch.zeros_like(x)).sample, base)
    assert not torch.allclose(model(x, 0.5, self_condition=torch.randn_like(x)).sample, base)


def test_per_layer_self_conditioning_with_a_condition_prefix():
    """A clean condition prefix is its own estimate, as with the input concatenation; outputs keep their shape."""
    model = randomized(cosmos())
    x, cond = torch.randn(2, 3, 8), torch.randn(2, 2, 8)
    out = model(x, 0.5, condition_hidden_states=cond, self_condition=torch.randn_like(x)).sample
    assert out.shape == (2, 3, 8) and torch.isfinite(out).all()


@pytest.mark.parametrize("depth", [2, 4, 5])
def test_additive_skips_add_the_input_of_block_i_before_block_depth_minus_1_minus_i(depth):
    model = randomized(cosmos(num_hidden_layers=depth, time_injection="tokens", self_conditioning=False))
    inputs, outputs = {}, {}

    def record(i):
        def hook(module, args, out):
            inputs[i], outputs[i] = args[0], out

        return hook

    for i, block in enumerate(model.transformer.blocks):
        block.register_forward_hook(record(i))
    model(torch.randn(2, 3, 8), 0.5)
    half = depth // 2
    for i in range(depth - half, depth):
        torch.testing.assert_close(inputs[i], outputs[i - 1] + inputs[depth - 1 - i])
    if depth % 2:  # the middle block is not joined
        assert torch.equal(inputs[half], outputs[half - 1])


def test_rmsnorm_output_without_projection_when_widths_match():
    """At ``hidden_size == latent_dim`` the head is Cosmos' own: the prediction is the RMSNorm of the stream."""
    model = randomized(cosmos(latent_dim=32))
    assert model.transformer.proj_out is None
    out = model(torch.randn(2, 3, 32), 0.5, output_hidden_states=True)
    torch.testing.assert_close(out.sample, model.transformer.norm_out(out.last_hidden_state))


def test_each_option_alone_changes_only_its_part():
    first = cosmos(**FIRST_FORM)
    names = set(first.state_dict())
    for key, value in DenoiserOptions("per_layer", 10.0, "per_layer", "add", "norm").to_dict().items():
        extra = {"num_time_tokens": 0} if key == "time_injection" else {}
        changed = set(cosmos(**{**FIRST_FORM, key: value, **extra}).state_dict())
        added, removed = changed - names, names - changed
        parts = {name.split(".")[1] for name in added | removed}
        expected = {
            "time_injection": {"time_tokens", "layer_conditioning"},
            "time_embedding_max_period": set(),
            "self_conditioning_injection": {"self_cond_proj", "layer_conditioning"},
            "long_skip_merge": {"skip_projs"},
            "output_head": {"norm_out"},  # same names, norm_out now of the latent width
        }[key]
        if key == "output_head":
            assert not added and not removed
            assert cosmos(**{**FIRST_FORM, key: value}).transformer.norm_out.normalized_shape == (8,)
        else:
            assert parts == expected, (key, parts)


# ---------------------------------------------------------------------------------------------------- training coin


def _self_condition_inputs(config_overrides, steps=6):
    """The self-conditioning each training step's graded pass receives, and how many passes each step ran."""
    torch.manual_seed(0)
    model = CosmosLMForDiffusion(CosmosLMConfig(**TINY, **config_overrides))
    seen, calls = [], []
    forward = model.model.forward

    def spy(*args, **kwargs):
        calls[-1] += 1
        if "self_condition" in kwargs:
            seen.append(kwargs["self_condition"])
        return forward(*args, **kwargs)

    model.model.forward = spy
    for _ in range(steps):
        calls.append(0)
        model(torch.zeros(4, 12, dtype=torch.long), latents=torch.randn(4, 3, 8))
    return seen, calls


def test_self_conditioning_coin_per_batch_conditions_all_rows_or_none():
    seen, calls = _self_condition_inputs({"self_cond_per_batch": True}, steps=12)
    used = [bool(sc.abs().sum(dim=(1, 2)).ne(0).all()) for sc in seen]
    unused = [bool(sc.eq(0).all()) for sc in seen]
    assert all(u or n for u, n in zip(used, unused))  # never a mix of rows
    assert any(used) and any(unused)
    assert calls == [2 if u else 1 for u in used]  # a failed coin skips the estimating pass
    seen, calls = _self_condition_inputs({"self_cond_per_batch": True, "self_cond_prob": 0.0})
    assert calls == [1] * 6 and all(sc.eq(0).all() for sc in seen)


def test_self_conditioning_coin_per_example_runs_the_estimate_every_step():
    seen, calls = _self_condition_inputs({"self_cond_per_batch": False, "self_cond_prob": 0.5}, steps=4)
    assert calls == [2] * 4
    rows = torch.cat([sc.abs().sum(dim=(1, 2)).ne(0) for sc in seen])
    assert rows.any() and not rows.all()


# ---------------------------------------------------------------------------------------------------- combinations


def test_published_form_with_cross_attention_and_gradient_checkpointing():
    model = randomized(cosmos(cross_attention_dim=6)).train()
    x, context = torch.randn(2, 3, 8), torch.randn(2, 4, 6)

    def grads(checkpointing):
        if checkpointing:
            model.gradient_checkpointing_enable()
        model.zero_grad()
        out = model(x, 0.5, encoder_hidden_states=context, self_condition=torch.randn_like(x))
        out.sample.square().sum().backward()
        return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    torch.manual_seed(1)
    plain = grads(False)
    torch.manual_seed(1)
    checkpointed = grads(True)
    assert plain.keys() == checkpointed.keys()
    assert any("layer_conditioning" in name for name in plain)
    for name in plain:
        torch.testing.assert_close(plain[name], checkpointed[name], msg=name)


def test_lora_adapts_the_per_layer_projections():
    from peft import LoraConfig, get_peft_model

    model = cosmos()
    targets = ["qkv", "self_cond_layers.0", "self_cond_layers.1", "time_layers.0.1", "time_layers.1.1"]
    peft_model = get_peft_model(model, LoraConfig(r=2, target_modules=targets))
    trainable = [name for name, p in peft_model.named_parameters() if p.requires_grad]
    assert any("self_cond_layers" in name for name in trainable) and any("time_layers" in name for name in trainable)
    out = peft_model(torch.randn(2, 3, 8), 0.5, self_condition=torch.randn(2, 3, 8)).sample
    assert out.shape == (2, 3, 8)


def test_time_tokens_form_needs_time_tokens():
    with pytest.raises(ValueError, match="num_time_tokens"):
        CosmosLMConfig(**TINY, time_injection="tokens", num_time_tokens=0)
    # An option set after construction is checked when the backbone is built.
    config = CosmosLMConfig(**TINY)
    config.long_skip_merge = "sum"
    with pytest.raises(ValueError, match="long_skip_merge"):
        CosmosLMModel(config)


@pytest.mark.slow
def test_torch_compile_of_the_published_form_matches_eager():
    from latentlm.models.backbone import compile_denoiser

    model = randomized(cosmos(cross_attention_dim=6))
    x, sc, context = torch.randn(2, 3, 8), torch.randn(2, 3, 8), torch.randn(2, 4, 6)
    eager = model(x, 0.5, self_condition=sc, encoder_hidden_states=context).sample
    compiled = compile_denoiser(model)(x, 0.5, self_condition=sc, encoder_hidden_states=context).sample
    torch.testing.assert_close(compiled, eager, atol=1e-5, rtol=1e-5)
