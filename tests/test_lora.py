"""LoRA adapters on pipelines: diffusers' method names and semantics on ELF and Cosmos."""

import json

import pytest
import torch
from peft import LoraConfig, get_peft_model, get_peft_model_state_dict
from safetensors import safe_open

from latentlm import ELFPipeline
from latentlm.pipelines.lora import load_lora_into_model
from test_pipeline_cosmos import make_pipeline as make_cosmos_pipeline
from test_pipeline_elf import make_pipeline as make_elf_pipeline


# Fused and unfused sampling differ by float32 rounding of W + s * B @ A against W x + s * B (A x), accumulated over
# the steps of the sampler.
FUSE_ATOL = 1e-5
ELF_TARGETS = ["qkv", "out_proj"]


def random_lora(model, targets, seed, r=4):
    """A LoRA adapter state dict with non-zero weights (so that it changes the outputs), and its config dict."""
    torch.manual_seed(seed)
    config = LoraConfig(r=r, lora_alpha=2 * r, target_modules=targets, init_lora_weights=False)
    template = get_peft_model(_copy(model), config)
    return get_peft_model_state_dict(template), config.to_dict()


def _copy(model):
    copy = type(model)(model.config)
    copy.load_state_dict(model.state_dict())
    return copy


def sample_latents(pipe, steps=3):
    return pipe(batch_size=2, gen_length=8, num_inference_steps=steps, generator=torch.Generator().manual_seed(0),
                output_type="latent").latents  # fmt: skip


def save_adapter(tmp_path, name, pipe, seed):
    """A diffusers-layout LoRA checkpoint for ``pipe.model`` in ``tmp_path/name``."""
    layers, config = random_lora(pipe.model, ELF_TARGETS, seed)
    type(pipe).save_lora_weights(tmp_path / name, model_lora_layers=layers, model_lora_adapter_metadata=config)
    return tmp_path / name


def test_load_set_fuse_unfuse_unload_on_elf(tiny_tokenizer, tmp_path):
    pipe = make_elf_pipeline(tiny_tokenizer)
    base = sample_latents(pipe)
    path_a, path_b = save_adapter(tmp_path, "a", pipe, seed=1), save_adapter(tmp_path, "b", pipe, seed=2)
    pipe.load_lora_weights(path_a, adapter_name="a")
    pipe.load_lora_weights(path_b, adapter_name="b")

    assert pipe.get_list_adapters() == {"model": ["a", "b"]}
    assert pipe.get_active_adapters() == ["b"]  # the adapter loaded last is the active one
    with_b = sample_latents(pipe)
    assert not torch.allclose(with_b, base, atol=1e-3)

    pipe.set_adapters(["a", "b"], adapter_weights=[0.8, 0.5])
    assert sorted(pipe.get_active_adapters()) == ["a", "b"]
    mixed = sample_latents(pipe)
    pipe.fuse_lora()
    assert pipe.fused_loras == {"a", "b"}
    torch.testing.assert_close(sample_latents(pipe), mixed, atol=FUSE_ATOL, rtol=0)
    pipe.unfuse_lora()
    assert pipe.num_fused_loras == 0
    torch.testing.assert_close(sample_latents(pipe), mixed, atol=FUSE_ATOL, rtol=0)

    pipe.set_adapters("a", adapter_weights=0.0)  # weight 0 switches an adapter off
    torch.testing.assert_close(sample_latents(pipe), base, atol=FUSE_ATOL, rtol=0)

    pipe.delete_adapters("a")
    assert pipe.get_list_adapters() == {"model": ["b"]}
    pipe.unload_lora_weights()
    assert pipe.get_list_adapters() == {}
    # Fusing and unfusing added and subtracted the update: the base weights are back up to rounding.
    torch.testing.assert_close(sample_latents(pipe), base, atol=FUSE_ATOL, rtol=0)


def test_fuse_unload_then_save_pretrained_keeps_the_merged_weights(tiny_tokenizer, tmp_path):
    pipe = make_elf_pipeline(tiny_tokenizer)
    pipe.load_lora_weights(save_adapter(tmp_path, "a", pipe, seed=1), adapter_name="a")
    with_adapter = sample_latents(pipe)

    with pytest.raises(ValueError, match="carry LoRA adapters.*save_lora_adapter.*fuse_lora"):
        pipe.save_pretrained(tmp_path / "pipe")
    pipe.fuse_lora()
    pipe.unload_lora_weights()
    pipe.save_pretrained(tmp_path / "merged")
    reloaded = ELFPipeline.from_pretrained(tmp_path / "merged")
    reloaded.set_progress_bar_config(disable=True)
    torch.testing.assert_close(sample_latents(reloaded), with_adapter, atol=FUSE_ATOL, rtol=0)


def test_a_peft_model_in_a_pipeline_cannot_be_saved_silently(tiny_tokenizer, tmp_path):
    pipe = make_elf_pipeline(tiny_tokenizer)
    pipe.register_modules(model=get_peft_model(pipe.model, LoraConfig(r=2, target_modules=ELF_TARGETS)))
    with pytest.raises(ValueError, match="carry LoRA adapters"):
        pipe.save_pretrained(tmp_path / "pipe")
    assert not (tmp_path / "pipe" / "model_index.json").exists()


def test_save_lora_adapter_round_trips_and_holds_the_adapter_only(tiny_tokenizer, tmp_path):
    pipe = make_elf_pipeline(tiny_tokenizer)
    pipe.load_lora_weights(save_adapter(tmp_path, "a", pipe, seed=1), adapter_name="a")
    expected = sample_latents(pipe)
    pipe.save_lora_adapter(tmp_path / "saved")

    with safe_open(tmp_path / "saved" / "pytorch_lora_weights.safetensors", framework="pt") as f:
        keys, header = list(f.keys()), f.metadata()
    assert keys and all(key.startswith("model.") and ".lora_" in key for key in keys)
    assert json.loads(header["lora_adapter_metadata"])["model.r"] == 4

    fresh = make_elf_pipeline(tiny_tokenizer)
    fresh.load_lora_weights(tmp_path / "saved", adapter_name="again")
    torch.testing.assert_close(sample_latents(fresh), expected, atol=0, rtol=0)


def test_loads_peft_folders_and_state_dicts_and_infers_the_config(tiny_tokenizer, tmp_path):
    pipe = make_elf_pipeline(tiny_tokenizer)
    config = LoraConfig(r=2, lora_alpha=2, target_modules=ELF_TARGETS, init_lora_weights=False)
    peft_model = get_peft_model(_copy(pipe.model), config)
    peft_model.save_pretrained(tmp_path / "peft")  # adapter_config.json + adapter_model.safetensors
    torch.manual_seed(0)
    x = torch.randn(1, 8, 16)
    with torch.no_grad():
        expected = peft_model.base_model.model.denoise(x, 0.5)

    pipe.load_lora_weights(tmp_path / "peft", adapter_name="peft")
    with torch.no_grad():
        torch.testing.assert_close(pipe.model.denoise(x, 0.5), expected)

    # A bare state dict has no config: the rank and the targets come from the keys, lora_alpha = r.
    state_dict = {f"model.{k}": v for k, v in get_peft_model_state_dict(peft_model).items()}
    pipe.load_lora_weights(state_dict, adapter_name="from_dict")
    inferred = pipe.model.peft_config["from_dict"]
    assert inferred.r == 2 and inferred.lora_alpha == 2
    assert all(name.endswith(tuple(ELF_TARGETS)) for name in inferred.target_modules)
    assert pipe.get_active_adapters() == ["from_dict"]
    with torch.no_grad():
        torch.testing.assert_close(pipe.model.denoise(x, 0.5), expected)


def test_bad_checkpoints_and_names_are_refused(tiny_tokenizer, tmp_path):
    pipe = make_elf_pipeline(tiny_tokenizer)
    with pytest.raises(ValueError, match="neither pytorch_lora_weights.safetensors"):
        pipe.load_lora_weights(tmp_path)
    with pytest.raises(ValueError, match="no LoRA weights"):
        pipe.load_lora_weights({"model.x.weight": torch.zeros(1)})
    with pytest.raises(ValueError, match="no weights for this pipeline's components"):
        pipe.load_lora_weights({"unet.x.lora_A.weight": torch.zeros(1, 1)})
    path = save_adapter(tmp_path, "a", pipe, seed=1)
    pipe.load_lora_weights(path, adapter_name="a")
    with pytest.raises(ValueError, match="already in use"):
        pipe.load_lora_weights(path, adapter_name="a")
    with pytest.raises(ValueError, match="not in the list of present adapters"):
        pipe.set_adapters(["nope"])
    with pytest.raises(ValueError, match=r"Unsupported arguments \['hotswap'\]"):
        pipe.load_lora_weights(path, adapter_name="b", hotswap=True)


def test_cosmos_adapters_on_the_denoiser_and_the_autoencoder(tiny_tokenizer, tmp_path):
    pipe = make_cosmos_pipeline(tiny_tokenizer)
    base = pipe(batch_size=2, num_inference_steps=3, generator=torch.Generator().manual_seed(0), output_type="seq")
    model_layers, model_config = random_lora(pipe.model, ELF_TARGETS, seed=1)
    ae_layers, ae_config = random_lora(pipe.autoencoder, ["q_proj", "out_proj"], seed=2)
    type(pipe).save_lora_weights(
        tmp_path / "both",
        model_lora_layers=model_layers,
        autoencoder_lora_layers=ae_layers,
        model_lora_adapter_metadata=model_config,
        autoencoder_lora_adapter_metadata=ae_config,
    )
    pipe.load_lora_weights(tmp_path / "both", adapter_name="both")
    assert pipe.get_list_adapters() == {"model": ["both"], "autoencoder": ["both"]}

    def latents_and_logits():
        out = pipe(
            batch_size=2, num_inference_steps=3, generator=torch.Generator().manual_seed(0), output_type="latent"
        )
        return out.latents, pipe.model.decode_latents(out.latents)

    with torch.no_grad():
        latents, logits = latents_and_logits()
        pipe.fuse_lora()
        fused_latents, fused_logits = latents_and_logits()
    torch.testing.assert_close(fused_latents, latents, atol=FUSE_ATOL, rtol=0)
    torch.testing.assert_close(fused_logits, logits, atol=1e-4, rtol=0)
    pipe.unfuse_lora()
    pipe.unload_lora_weights()
    again = pipe(batch_size=2, num_inference_steps=3, generator=torch.Generator().manual_seed(0), output_type="seq")
    assert torch.equal(again.sequences, base.sequences)


def test_load_lora_into_model_checks_the_weights_fit(tiny_tokenizer):
    model = make_elf_pipeline(tiny_tokenizer).model
    layers, _ = random_lora(model, ELF_TARGETS, seed=0)
    wrong = {k: torch.zeros(v.shape[0] + 1, *v.shape[1:]) for k, v in layers.items()}
    with pytest.raises(Exception, match="size mismatch|do not fit"):
        load_lora_into_model(model, wrong, LoraConfig(r=4, target_modules=ELF_TARGETS), "x")
