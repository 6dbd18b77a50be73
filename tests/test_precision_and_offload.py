"""Every model in pure bfloat16 / float16 and under autocast; pipelines moved with `pipe.to(device, dtype)`; model
offload hooks that fire on the sampling interface (`denoise`, `decode_latents`, the autoencoder's `decode`)."""

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

import test_conditional_generation
import test_pipeline_cosmos
import test_pipeline_elf
from conftest import EmbeddingEncoder
from test_cosmos_lm import tiny_autoencoder, tiny_diffusion
from test_elf import tiny_elf


def elf():
    model = tiny_elf()
    model.set_text_encoder(EmbeddingEncoder(hidden_size=16, vocab_size=32))
    return model, torch.randint(5, 32, (2, 6))


def cosmos_autoencoder():
    return tiny_autoencoder(), torch.randint(5, 40, (2, 12))


def cosmos():
    return tiny_diffusion(), torch.randint(5, 40, (2, 12))


def ar():
    config = LlamaConfig(
        vocab_size=40, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2
    )
    return LlamaForCausalLM(config), torch.randint(5, 40, (2, 12))


MODELS = {"elf": elf, "cosmos-autoencoder": cosmos_autoencoder, "cosmos": cosmos, "ar": ar}


def training_step(model, input_ids) -> torch.Tensor:
    """One AdamW step on the training head's loss; returns the loss."""
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    before = [p.detach().clone() for p in trainable]
    optimizer = torch.optim.AdamW(trainable, lr=1e-2)
    loss = model(input_ids=input_ids, attention_mask=torch.ones_like(input_ids), labels=input_ids).loss
    loss.backward()
    for p in trainable:
        assert p.grad is None or (p.grad.dtype == p.dtype and torch.isfinite(p.grad).all())
    optimizer.step()
    assert any(not torch.equal(p, b) for p, b in zip(trainable, before))
    return loss


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
@pytest.mark.parametrize("name", MODELS)
def test_every_model_trains_in_pure_half_precision(name, dtype):
    torch.manual_seed(0)
    model, input_ids = MODELS[name]()
    model.to(dtype)
    assert all(p.dtype == dtype for p in model.parameters())
    assert torch.isfinite(training_step(model, input_ids))


@pytest.mark.parametrize("name", MODELS)
def test_every_model_trains_under_bfloat16_autocast(name):
    torch.manual_seed(0)
    model, input_ids = MODELS[name]()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = training_step(model, input_ids)
    assert torch.isfinite(loss) and all(p.dtype == torch.float32 for p in model.parameters())


PIPELINES = {
    "elf": test_pipeline_elf.make_pipeline,
    "cosmos": test_pipeline_cosmos.make_pipeline,
    "elf-prompt": test_conditional_generation.conditional_elf,
    "cosmos-prompt": test_conditional_generation.conditional_cosmos,
}


def sampling_call(name: str) -> dict:
    if name.endswith("-prompt"):
        return dict(prompt=["the cat", "a big dog"], max_new_tokens=5, num_inference_steps=3)
    return dict(batch_size=2, gen_length=8, num_inference_steps=3)


@pytest.mark.parametrize("name", PIPELINES)
def test_pipe_to_device_and_dtype_moves_every_component_and_samples(name, tiny_tokenizer):
    pipe = PIPELINES[name](tiny_tokenizer).to("cpu", torch.bfloat16)
    for component in pipe.model_cpu_offload_seq.split("->"):
        assert getattr(pipe, component).dtype == torch.bfloat16
    out = pipe(generator=torch.Generator().manual_seed(0), **sampling_call(name))
    assert out.latents.dtype == torch.bfloat16 and torch.isfinite(out.latents.float()).all()
    assert out.sequences.shape[0] == 2


@pytest.mark.parametrize("name", PIPELINES)
def test_model_cpu_offload_hooks_fire_on_the_sampling_interface(name, tiny_tokenizer):
    """`enable_model_cpu_offload` hooks a component's `forward`; the loop calls `denoise` / `decode_latents` and
    Cosmos' autoencoder `decode`, which must fire the hooks too, or the weights would stay off the accelerator."""
    call = sampling_call(name)
    reference = PIPELINES[name](tiny_tokenizer)(generator=torch.Generator().manual_seed(0), **call)
    pipe = PIPELINES[name](tiny_tokenizer)
    pipe.enable_model_cpu_offload(device="cpu")  # the same hooks as on a GPU, with the CPU as the execution device
    fired = {}
    for component in pipe.model_cpu_offload_seq.split("->"):
        hook = getattr(pipe, component)._hf_hook
        pre_forward = hook.pre_forward

        def counting(module, *args, _name=component, _pre_forward=pre_forward, **kwargs):
            fired[_name] = fired.get(_name, 0) + 1
            return _pre_forward(module, *args, **kwargs)

        hook.pre_forward = counting
    out = pipe(generator=torch.Generator().manual_seed(0), **call)
    # `model` fires on each of the 3 denoising steps, the decode and (with a prompt) `encode_condition`; Cosmos'
    # autoencoder on its decode
    assert fired["model"] == 4 + name.endswith("-prompt")
    if name.startswith("cosmos"):
        assert fired["autoencoder"] == 1
    torch.testing.assert_close(out.latents, reference.latents)
    assert torch.equal(out.sequences, reference.sequences)


def test_compile_denoiser_compiles_the_networks_the_sampling_loop_calls_in_place():
    from latentlm.models.backbone import DenoiserTransformer, compile_denoiser

    model, _ = elf()
    names = sorted(model.state_dict())
    assert compile_denoiser(model) is model
    denoisers = [m for m in model.modules() if isinstance(m, DenoiserTransformer)]
    assert denoisers and all(m._compiled_call_impl is not None for m in denoisers)  # compiled at the first call
    assert sorted(model.state_dict()) == names  # saving is unchanged
    with pytest.raises(ValueError, match="holds no DenoiserTransformer"):
        compile_denoiser(ar()[0])
