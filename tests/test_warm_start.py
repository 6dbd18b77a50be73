"""Warm starts (`init_denoiser_from`): a denoiser built from a pretrained encoder's layers computes exactly what the
encoder's layers compute, its new parts are freshly initialised, and once saved it loads without the encoder."""

import shutil

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModel

from conftest import build_tiny_tokenizer, tiny_pretrained_encoder
from latentlm import ELFPipeline
from latentlm.models import ELFConfig, ELFForFlowMatching, ELFModel
from latentlm.models.registry import get_method
from latentlm.models.warm_start import pretrained_block_kwargs
from latentlm.training import load_config, train
from latentlm.training.builders import build_model, model_config_kwargs
from test_train_elf import elf_config


ELF_AROUND_ENCODER = dict(vocab_size=32, latent_dim=16, bottleneck_dim=8, max_position_embeddings=24)


def warm_elf(path, seed=0, **overrides):
    torch.manual_seed(seed)
    return ELFForFlowMatching(ELFConfig(**{**ELF_AROUND_ENCODER, **pretrained_block_kwargs(path), **overrides})).eval()


@pytest.mark.parametrize("model_type", ["bert", "roberta", "electra", "distilbert"])
def test_copied_blocks_reproduce_the_pretrained_encoder_exactly(model_type):
    path = tiny_pretrained_encoder(model_type)
    encoder = AutoModel.from_pretrained(path).eval()
    denoiser = warm_elf(path).model.transformer
    embeds = torch.randn(2, 7, 32)
    mask = torch.tensor([[1] * 7, [1] * 5 + [0] * 2])
    with torch.no_grad():
        expected = encoder(inputs_embeds=embeds, attention_mask=mask).last_hidden_state
        # The denoiser's embedding stage (positions, embedding LayerNorm) and blocks, on a sequence without control
        # tokens: the very computation of the encoder on the same input embeddings.
        hidden = denoiser.positions(embeds, num_control=0)
        for block in denoiser.blocks:
            hidden = block(hidden, None, mask.bool())
    torch.testing.assert_close(hidden, expected)


def test_only_the_new_parts_are_fresh():
    path = tiny_pretrained_encoder("bert")
    first, second = warm_elf(path, seed=0), warm_elf(path, seed=1)
    first_weights, second_weights = first.state_dict(), second.state_dict()
    copied = [key for key in first_weights if ".blocks." in key or ".positions." in key]
    assert len(copied) == 2 * 12 + 3  # per block: qkv, out_proj, up, down (weight + bias) and two LayerNorms
    for key in copied:
        assert torch.equal(first_weights[key], second_weights[key]), key
    fresh = [key for key in first_weights if key not in copied]
    assert any("time_tokens" in key for key in fresh) and any("input_proj" in key for key in fresh)
    for key in fresh:
        if "proj_out" in key or first_weights[key].abs().sum() == 0 or "norm" in key:
            continue  # the zero-initialised output head, zero biases, unit norm weights
        assert not torch.equal(first_weights[key], second_weights[key]), f"{key} was not freshly initialised"
    transformer = first.model.transformer
    assert transformer.proj_out.weight.abs().sum() == 0  # an untrained denoiser still predicts zeros
    assert 0 < transformer.time_tokens.tokens.std() < 0.1


def test_a_saved_warm_start_loads_without_the_encoder(tmp_path):
    encoder = tmp_path / "encoder"
    shutil.copytree(tiny_pretrained_encoder("bert"), encoder)
    model = warm_elf(str(encoder))
    model.save_pretrained(tmp_path / "model")
    shutil.rmtree(encoder)
    loaded = ELFForFlowMatching.from_pretrained(tmp_path / "model").eval()
    assert loaded.config.init_denoiser_from == str(encoder)  # provenance only
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key
    latents = torch.randn(2, 5, 16)
    with torch.no_grad():
        expected = model.model(latents, torch.tensor([0.3, 0.7]), guidance_scale=1.0).sample
        actual = loaded.model(latents, torch.tensor([0.3, 0.7]), guidance_scale=1.0).sample
    torch.testing.assert_close(actual, expected, rtol=0, atol=0)


def test_a_conditioned_sequence_runs_through_bert_blocks():
    # Control prefix, condition and latents: positions 0.. cover condition then latents, the prefix has none.
    model = warm_elf(tiny_pretrained_encoder("bert")).model
    out = model(
        torch.randn(2, 5, 16),
        torch.tensor([0.2, 0.9]),
        condition_hidden_states=torch.randn(2, 3, 16),
        condition_attention_mask=torch.tensor([[0, 1, 1], [1, 1, 1]]),
        self_condition=torch.randn(2, 5, 16),
        guidance_scale=2.0,
        output_hidden_states=True,
    )
    assert out.sample.shape == (2, 5, 16) and torch.isfinite(out.last_hidden_state).all()
    assert out.hidden_states[0].shape[1] == 12 + 3 + 5  # 4 time + 4 guidance + 4 mode tokens


def test_training_config_takes_the_encoder_sizes_and_builds_a_warm_start(tmp_path):
    path = tiny_pretrained_encoder("bert")
    values = {"method": "elf", "output_dir": str(tmp_path), "seq_len": 16}
    config = load_config(None, {**values, "model": {"init_denoiser_from": path, "latent_dim": 16}})
    tokenizer = build_tiny_tokenizer()
    kwargs = model_config_kwargs(ELFConfig, tokenizer, config)
    assert kwargs["block_type"] == "bert" and kwargs["hidden_size"] == 32 and kwargs["intermediate_size"] == 48
    model = build_model(get_method("elf"), config, tokenizer)
    encoder = AutoModel.from_pretrained(path)
    assert torch.equal(
        model.model.transformer.blocks[1].up_proj.weight, encoder.encoder.layer[1].intermediate.dense.weight
    )


def test_init_from_and_init_denoiser_from_are_exclusive(tmp_path):
    config = load_config(
        None,
        {
            "method": "elf",
            "output_dir": str(tmp_path),
            "init_from": "pretrained:elf-tiny-prose",
            "model": {"init_denoiser_from": tiny_pretrained_encoder("bert")},
        },
    )
    with pytest.raises(ValueError, match="init_denoiser_from.*init_from"):
        build_model(get_method("elf"), config, build_tiny_tokenizer())


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: pretrained_block_kwargs(tiny_pretrained_encoder("gpt2")), "'gpt2' model.*bert, roberta"),
        (lambda: pretrained_block_kwargs("/nonexistent/encoder"), "init_denoiser_from.*/nonexistent/encoder"),
        (lambda: warm_elf(tiny_pretrained_encoder("bert"), hidden_size=64), "hidden_size"),
        (lambda: warm_elf(tiny_pretrained_encoder("bert"), num_attention_heads=4), "num_attention_heads"),
        (lambda: warm_elf(tiny_pretrained_encoder("bert"), max_position_embeddings=64), "max_position_embeddings"),
        (lambda: ELFConfig(init_denoiser_from=tiny_pretrained_encoder("bert")), "block_type='bert'"),
        (lambda: ELFConfig(block_type="post_norm"), "block_type"),
        (lambda: ELFConfig(block_type="bert", hidden_act="swishy"), "hidden_act"),
    ],
    ids=["architecture", "path", "hidden_size", "heads", "positions", "needs-bert-block", "block_type", "hidden_act"],
)
def test_bad_warm_starts_are_refused_by_name(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_bert_block_without_warm_start_is_a_plain_model():
    model = ELFModel(ELFConfig(**ELF_AROUND_ENCODER, block_type="bert", hidden_size=32, num_attention_heads=2))
    assert model.transformer.rotary is None and model.transformer.positions is not None
    assert type(model.transformer.blocks[0]).__name__ == "BertStyleBlock"


def test_warm_start_trains_saves_alone_and_takes_lora_from_init_from(tmp_path):

    encoder = tmp_path / "encoder"
    shutil.copytree(tiny_pretrained_encoder("bert"), encoder)
    warm = {"init_denoiser_from": str(encoder), "bottleneck_dim": 16, "decoder_head_dim": 16}
    train(elf_config(tmp_path / "warm", model=warm, max_steps=2))
    shutil.rmtree(encoder)  # the export holds every weight: nothing reads the pretrained encoder again
    lora = {"r": 4, "lora_alpha": 8, "target_modules": ["qkv", "out_proj", "up_proj", "down_proj"]}
    train(elf_config(tmp_path / "lora", init_from=str(tmp_path / "warm"), model={}, lora=lora, max_steps=2,
                     learning_rate=5e-2))  # fmt: skip

    base = load_file(tmp_path / "warm" / "model" / "model.safetensors")
    tuned = load_file(tmp_path / "lora" / "model" / "model.safetensors")
    changed = {name for name in base if not torch.equal(base[name], tuned[name])}
    adapted = tuple(f"{target}.weight" for target in lora["target_modules"])
    assert changed and all(".blocks." in name and name.endswith(adapted) for name in changed)
    pipe = ELFPipeline.from_pretrained(tmp_path / "lora")
    assert pipe.model.config.block_type == "bert"
    assert pipe(batch_size=1, gen_length=4, num_inference_steps=2).sequences.shape == (1, 4)


def test_fitted_input_projection_maps_latents_to_the_pretrained_word_embeddings():
    path = tiny_pretrained_encoder("bert")
    model = warm_elf(path, vocab_size=50, latent_dim=32, init_denoiser_fit_projections=True, bottleneck_dim=None)
    model.config.latent_mean, model.config.latent_std = 0.0, 1.0
    table = AutoModel.from_pretrained(path).get_input_embeddings().weight.detach()
    # Latents that are an invertible linear function of the word embeddings: the fit must recover its inverse.
    mixing = torch.randn(32, 32)
    input_ids = torch.randint(0, 50, (6, 10))
    batches = [{"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids),
                "encoder_activations": table[input_ids] @ mixing}]  # fmt: skip
    model.fit_warm_start_projections(batches)
    denoiser = model.model.transformer
    with torch.no_grad():
        latents = table[input_ids] @ mixing
        entered = denoiser.input_proj(denoiser.self_cond_proj(torch.cat([latents, torch.randn_like(latents)], -1)))
    # Exact up to the ridge term; the self-conditioning estimate is ignored at first.
    torch.testing.assert_close(entered, table[input_ids], atol=1e-2, rtol=0)
    assert denoiser.proj_out.weight.abs().sum() == 0


def test_fitting_projections_needs_a_warm_start_and_a_shared_vocabulary():
    with pytest.raises(ValueError, match="init_denoiser_fit_projections.*init_denoiser_from"):
        ELFConfig(init_denoiser_fit_projections=True)
    model = warm_elf(tiny_pretrained_encoder("bert"), init_denoiser_fit_projections=True)  # vocab 32, encoder's 50
    model.config.latent_mean, model.config.latent_std = 0.0, 1.0
    ids = torch.zeros(1, 4, dtype=torch.long)
    with pytest.raises(ValueError, match="init_denoiser_fit_projections.*vocabulary of 50.*32"):
        model.fit_warm_start_projections([{"input_ids": ids, "encoder_activations": torch.zeros(1, 4, 16)}])
