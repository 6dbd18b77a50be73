"""What transformers' `ModelTesterMixin` expects of any `PreTrainedModel`, run for every latentlm model class.

The classes and their tiny configs live in `tests/conformance.py` (`model_cases`): a new method adds one line there.
"""

import dataclasses
import inspect
import json

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import PreTrainedConfig

import latentlm  # noqa: F401  (registers the Auto classes)
from conformance import model_case_id, model_cases
from latentlm.models.denoiser_conditioning import DenoiserOptions


CASES = model_cases()


def _build(case, **config_overrides):
    config = case.config()
    for key, value in config_overrides.items():
        setattr(config, key, value)
    model = case.model_class(config).eval()
    if case.prepare is not None:
        case.prepare(model)
    return model


def _inputs(case, model, seed=0):
    return case.inputs(model.config, torch.Generator().manual_seed(seed))


def _output(case, model, inputs, seed=0, **kwargs):
    torch.manual_seed(seed)  # the training heads draw their noise levels and noise
    return model(**inputs, **kwargs)[case.output_key]


@pytest.fixture(params=CASES, ids=model_case_id)
def case(request):
    return request.param


@pytest.fixture
def saved(case, tmp_path):
    model = _build(case)
    model.save_pretrained(tmp_path)
    return model, tmp_path


def test_save_and_load_give_identical_weights_and_outputs(case, saved):
    model, path = saved
    loaded = case.model_class.from_pretrained(path).eval()
    original, reloaded = model.state_dict(), loaded.state_dict()
    assert original.keys() == reloaded.keys()
    for key in original:
        assert torch.equal(original[key], reloaded[key]), key
    inputs = _inputs(case, model)
    assert torch.equal(_output(case, model, inputs), _output(case, loaded, inputs))


def test_auto_class_round_trip(case, saved):
    import transformers

    import latentlm.models

    auto = getattr(transformers, case.auto_class, None) or getattr(latentlm.models, case.auto_class, None)
    auto = auto or getattr(latentlm, case.auto_class)
    model, path = saved
    loaded = auto.from_pretrained(path)
    assert type(loaded) is case.model_class
    assert type(auto.from_config(model.config)) is case.model_class


def test_init_is_finite_and_zero_heads_are_zero(case):
    model = _build(case)
    for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
        assert torch.isfinite(tensor).all(), name
    zero_heads = [m for m in model.modules() if getattr(m, "_zero_init", False)]
    for module in zero_heads:
        assert module.weight.abs().sum() == 0 and module.bias.abs().sum() == 0
    if hasattr(model.config, "num_time_tokens") and case.output_key == "sample":
        out = _output(case, model, _inputs(case, model))
        if DenoiserOptions.from_config(model.config).output_head == "norm_linear":
            assert zero_heads, "a denoiser's output head is documented as zero-initialised"
            assert torch.equal(out, torch.zeros_like(out))  # an untrained denoiser predicts 0
        else:  # Cosmos' head: the prediction is an RMSNorm output, unit RMS per token at init (a little less where
            # the norm's eps is not negligible against a small untrained pre-norm vector)
            rms = out.float().square().mean(dim=-1).sqrt()
            assert (rms > 0.95).all() and (rms <= 1.0 + 1e-5).all(), rms


def test_mismatched_load_reinitialises_everything(case, saved):
    # transformers only runs `_init_weights` on what it could not load; what it reinitialises must be sane too.
    model, path = saved
    config = json.loads((path / "config.json").read_text())
    config["latent_dim"] += 8
    if "decoder_head_dim" in config:
        config["decoder_head_dim"] = config["latent_dim"]
    (path / "config.json").write_text(json.dumps(config))
    loaded = case.model_class.from_pretrained(path, ignore_mismatched_sizes=True)
    for name, tensor in [*loaded.named_parameters(), *loaded.named_buffers()]:
        assert torch.isfinite(tensor).all() and tensor.abs().max() < 1e3, name
    for module in loaded.modules():
        if getattr(module, "_zero_init", False):
            assert module.weight.abs().sum() == 0
    if hasattr(loaded, "has_activation_statistics"):  # Cosmos' codec: its saved latent statistics had the old width
        assert not loaded.has_latent_statistics and loaded.has_activation_statistics


def test_missing_weights_are_refused(case, saved):
    model, path = saved
    weights = load_file(path / "model.safetensors")
    dropped = sorted(weights)[0]
    del weights[dropped]
    save_file(weights, path / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ValueError, match="no stored weights"):
        case.model_class.from_pretrained(path)


def test_gradient_checkpointing_gives_the_same_gradients(case):
    model = _build(case)
    assert model.supports_gradient_checkpointing
    inputs = _inputs(case, model)
    grads = []
    for checkpointing in (False, True):
        if checkpointing:
            model.gradient_checkpointing_enable()
        model.train()
        model.zero_grad()
        _output(case, model, inputs).float().square().mean().backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    assert model.is_gradient_checkpointing
    assert grads[0].keys() == grads[1].keys() and grads[0]
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name], msg=name)


def test_float64_matches_float32(case):
    model = _build(case)
    inputs = _inputs(case, model)
    out32 = _output(case, model, inputs)
    model64 = model.to(torch.float64)
    inputs64 = {k: v.double() if torch.is_floating_point(v) else v for k, v in inputs.items()}
    out64 = _output(case, model64, inputs64)
    assert model64.dtype == torch.float64
    torch.testing.assert_close(out64.float(), out32, rtol=1e-3, atol=1e-4)


def test_fsdp_wrap_units_are_blocks_the_model_is_built_of(case):
    """Accelerate's FSDP wraps the `_no_split_modules` classes, and refuses a listed class the model does not have."""
    model = _build(case)
    present = {type(module).__name__ for module in model.modules()}
    assert model._no_split_modules and set(model._no_split_modules) <= present, (model._no_split_modules, case.id)
    embeddings = model.get_input_embeddings()  # FSDP shards a token table as its own unit; None: the model has none
    assert embeddings is None or isinstance(embeddings, torch.nn.Embedding)


def test_main_input_name_is_the_first_forward_argument(case):
    params = [p for p in inspect.signature(case.model_class.forward).parameters if p != "self"]
    assert case.model_class.main_input_name == params[0]


def test_return_dict_false_gives_the_tuple(case):
    model = _build(case)
    inputs = _inputs(case, model)
    torch.manual_seed(0)
    as_dict = model(**inputs)
    torch.manual_seed(0)
    as_tuple = model(**inputs, return_dict=False)
    assert isinstance(as_tuple, tuple)
    assert torch.equal(as_tuple[0], as_dict.to_tuple()[0])


def test_output_hidden_states_of_the_bare_denoisers(case):
    if case.output_key != "sample":
        pytest.skip("training heads return losses, not hidden states")
    model = _build(case)
    out = model(**_inputs(case, model), output_hidden_states=True)
    assert len(out.hidden_states) == model.config.num_hidden_layers + 1
    assert out.hidden_states[-1][:, -out.sample.shape[1] :].equal(out.last_hidden_state)
    assert model(**_inputs(case, model)).hidden_states is None


def test_attn_implementation_other_than_sdpa_is_refused(case, saved):
    _, path = saved
    assert case.model_class.from_pretrained(path, attn_implementation="sdpa").config._attn_implementation == "sdpa"
    for name in ("eager", "flash_attention_2"):
        with pytest.raises(ValueError, match="attn_implementation"):
            case.model_class.from_pretrained(path, attn_implementation=name)


def test_config_of_another_model_type_is_refused(case, saved):
    _, path = saved
    config = json.loads((path / "config.json").read_text())
    config["model_type"] = "bert"
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="model_type"):
        case.model_class.from_pretrained(path)


def test_misspelt_config_key_is_refused(case, saved):
    _, path = saved
    config = json.loads((path / "config.json").read_text())
    config["hiden_size"] = config.pop("hidden_size")
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="hiden_size.*hidden_size"):
        case.model_class.from_pretrained(path)


def _own_fields(config_class):
    base = {f.name for f in dataclasses.fields(PreTrainedConfig)}
    return [f for f in dataclasses.fields(config_class) if f.name not in base and not f.name.endswith("_token_id")]


def test_invalid_config_values_are_refused_by_name(case):
    config_class = case.model_class.config_class
    checked = 0
    for field in _own_fields(config_class):
        kinds = str(field.type)
        if "bool" in kinds:
            bad = ["yes"]
        elif "int" in kinds:
            bad = [1.5, "64"]
        elif "float" in kinds:
            bad = [float("nan"), float("inf"), "0.1"]
        else:
            continue
        base = case.config().to_diff_dict()
        for value in bad:
            with pytest.raises(ValueError, match=field.name):
                config_class(**{**base, field.name: value})
            checked += 1
    assert checked >= 10
