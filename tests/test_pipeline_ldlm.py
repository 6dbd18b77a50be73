"""LDLMPipeline: the shared sampling loop over the denoiser, with the decoder side as a registered component."""

import json

import pytest
import torch
from safetensors.torch import load_file

from latentlm import (
    AutoPipelineForTextGeneration,
    EulerMaruyamaVPScheduler,
    LDLMConfig,
    LDLMDecoder,
    LDLMForDiffusion,
    LDLMModel,
    LDLMPipeline,
)


def make_pipeline(tokenizer, **config) -> LDLMPipeline:
    torch.manual_seed(0)
    config = LDLMConfig(
        vocab_size=len(tokenizer), max_position_embeddings=12, num_latents=3, latent_dim=8, encoder_dim=16,
        codec_hidden_size=32, codec_num_attention_heads=2, num_encoder_layers=1, num_decoder_layers=1,
        lm_head_dim=16, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        eos_token_id=tokenizer.sep_token_id, pad_token_id=tokenizer.pad_token_id, **config,
    )  # fmt: skip
    model = LDLMForDiffusion(config)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.3)
    pipe = LDLMPipeline.from_model(model.eval(), tokenizer)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def seeded(seed=0):
    return torch.Generator().manual_seed(seed)


def test_from_model_keeps_the_denoiser_and_decoder_and_leaves_the_encoder_out(tiny_tokenizer, tmp_path):
    pipe = make_pipeline(tiny_tokenizer)
    assert isinstance(pipe.model, LDLMModel) and isinstance(pipe.decoder, LDLMDecoder)
    assert pipe.scheduler.config.schedule_d == 3.0
    pipe.save_pretrained(tmp_path)
    index = json.loads((tmp_path / "model_index.json").read_text())
    assert index["decoder"][1] == "LDLMDecoder" and index["model"][1] == "LDLMModel"
    saved = [
        *load_file(tmp_path / "model" / "model.safetensors"),
        *load_file(tmp_path / "decoder" / "model.safetensors"),
    ]
    assert saved and not any(name.startswith("encoder.") for name in saved)


def test_samples_are_decoded_from_n_latents_by_the_decoder(tiny_tokenizer):
    pipe = make_pipeline(tiny_tokenizer)
    out = pipe(batch_size=2, num_inference_steps=4, generator=seeded(), output_type="seq")
    assert out.latents.shape == (2, 3, 8) and out.sequences.shape == (2, 12)
    expected = pipe.cut_at_eos(pipe.decoder.decode(out.latents).argmax(-1))
    assert torch.equal(out.sequences, expected)
    short = pipe(batch_size=2, gen_length=5, num_inference_steps=4, generator=seeded(), output_type="seq")
    assert torch.equal(short.sequences, out.sequences[:, :5])
    texts = pipe(batch_size=2, num_inference_steps=4, generator=seeded()).texts
    assert len(texts) == 2 and all(isinstance(text, str) for text in texts)


def test_save_and_load_round_trip_samples_the_same(tiny_tokenizer, tmp_path):
    pipe = make_pipeline(tiny_tokenizer)
    before = pipe(batch_size=3, num_inference_steps=5, generator=seeded(1), output_type="seq")
    pipe.save_pretrained(tmp_path)
    for loaded in (LDLMPipeline.from_pretrained(tmp_path), AutoPipelineForTextGeneration.from_pretrained(tmp_path)):
        assert isinstance(loaded, LDLMPipeline) and loaded.model.text_decoder is loaded.decoder
        loaded.set_progress_bar_config(disable=True)
        after = loaded(batch_size=3, num_inference_steps=5, generator=seeded(1), output_type="seq")
        torch.testing.assert_close(after.latents, before.latents)
        assert torch.equal(after.sequences, before.sequences)


@pytest.mark.parametrize("solver", ["ddim", "probability_flow"])
def test_few_step_solvers_swap_through_the_scheduler_config(tiny_tokenizer, solver):
    pipe = make_pipeline(tiny_tokenizer)
    pipe.scheduler = EulerMaruyamaVPScheduler.from_config(pipe.scheduler.config, solver=solver)
    out = pipe(batch_size=2, num_inference_steps=4, generator=seeded(), output_type="seq")
    assert out.sequences.shape == (2, 12) and torch.isfinite(out.latents).all()


def test_bad_inputs_are_refused_by_name(tiny_tokenizer):
    pipe = make_pipeline(tiny_tokenizer)
    with pytest.raises(ValueError, match="`latents` must be a tensor of shape \\(2, 3, 8\\)"):
        pipe(batch_size=2, latents=torch.randn(2, 4, 8), num_inference_steps=2)
    with pytest.raises(ValueError, match="`gen_length` \\(13\\) is longer"):
        pipe(batch_size=1, gen_length=13, num_inference_steps=2)
    with pytest.raises(ValueError, match="`prompt` needs a model trained with conditions"):
        pipe(prompt="the cat", num_inference_steps=2)  # this LDLM was trained without conditions
