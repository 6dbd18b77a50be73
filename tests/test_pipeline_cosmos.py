"""CosmosLMPipeline: the shared sampling loop with the autoencoder as a registered component."""

import pytest
import torch

from latentlm import (
    AutoPipelineForTextGeneration,
    CosmosLMAutoencoder,
    CosmosLMAutoencoderConfig,
    CosmosLMConfig,
    CosmosLMForDiffusion,
    CosmosLMPipeline,
    EulerMaruyamaVPScheduler,
)


def make_pipeline(tokenizer, num_latents=3, **model_config):
    """A tiny Cosmos pipeline with random weights; `model_config` goes to the denoiser's `CosmosLMConfig`."""
    torch.manual_seed(0)
    shared = dict(vocab_size=len(tokenizer), max_position_embeddings=12, num_latents=num_latents, latent_dim=8,
                  eos_token_id=tokenizer.sep_token_id, pad_token_id=tokenizer.pad_token_id)  # fmt: skip
    autoencoder = CosmosLMAutoencoder(
        CosmosLMAutoencoderConfig(
            **shared,
            encoder_dim=16,
            hidden_size=32,
            num_attention_heads=2,
            num_compressor_layers=1,
            num_decompressor_layers=1,
            lm_head_dim=16,
        )  # fmt: skip
    ).eval()
    model = CosmosLMForDiffusion(
        CosmosLMConfig(**shared, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, **model_config)
    )
    with torch.no_grad():
        for module in (autoencoder, model):
            for p in module.parameters():
                p.normal_(0, 0.3)
        autoencoder.latent_mean.normal_()
        autoencoder.latent_std.uniform_(0.5, 2.0)
    pipe = CosmosLMPipeline(model=model.eval(), autoencoder=autoencoder, scheduler=model.get_default_scheduler(),
                            tokenizer=tokenizer)  # fmt: skip
    pipe.set_progress_bar_config(disable=True)
    return pipe


def seeded(seed=0):
    return torch.Generator().manual_seed(seed)


def test_samples_are_decoded_from_n_latents_for_any_length_up_to_l(tiny_tokenizer):
    pipe = make_pipeline(tiny_tokenizer)
    out = pipe(batch_size=2, num_inference_steps=4, generator=seeded())
    assert out.latents.shape == (2, 3, 8) and out.sequences.shape == (2, 12) and len(out.texts) == 2
    short = pipe(batch_size=2, gen_length=5, num_inference_steps=4, generator=seeded(), output_type="seq")
    assert torch.equal(short.sequences, out.sequences[:, :5])  # a shorter text is the first tokens


def test_decoding_goes_through_the_autoencoder_at_the_data_scale(tiny_tokenizer):
    pipe = make_pipeline(tiny_tokenizer)
    out = pipe(batch_size=2, num_inference_steps=3, generator=seeded(), output_type="seq")
    expected = pipe.autoencoder.decode(pipe.autoencoder.denormalize_latents(out.latents)).argmax(-1)
    assert torch.equal(out.sequences, pipe.cut_at_eos(expected))


def test_an_exact_denoiser_with_ddim_lands_on_the_noised_target_at_t_min(tiny_tokenizer, monkeypatch):
    pipe = make_pipeline(tiny_tokenizer)
    pipe.scheduler = EulerMaruyamaVPScheduler.from_config(pipe.scheduler.config, solver="ddim")
    target = torch.randn(2, 3, 8)
    monkeypatch.setattr(pipe.model, "denoise", lambda latents, t, **kwargs: target)
    start = torch.randn(2, 3, 8)
    out = pipe(batch_size=2, num_inference_steps=7, latents=start.clone(), output_type="latent")
    alpha, sigma = pipe.scheduler.alpha_sigma(torch.tensor(pipe.scheduler.config.t_min))
    torch.testing.assert_close(out.latents, alpha * target + sigma * start)


def test_save_and_load_the_whole_pipeline_gives_the_same_samples(tiny_tokenizer, tmp_path):
    pipe = make_pipeline(tiny_tokenizer)
    expected = pipe(batch_size=2, num_inference_steps=4, generator=seeded(), output_type="seq").sequences
    pipe.save_pretrained(tmp_path)
    assert {"model", "autoencoder", "scheduler", "tokenizer", "model_index.json"} <= {
        p.name for p in tmp_path.iterdir()
    }
    for loader in (CosmosLMPipeline, AutoPipelineForTextGeneration):
        loaded = loader.from_pretrained(tmp_path)
        loaded.set_progress_bar_config(disable=True)
        assert isinstance(loaded, CosmosLMPipeline) and loaded.model.autoencoder is loaded.autoencoder
        again = loaded(batch_size=2, num_inference_steps=4, generator=seeded(), output_type="seq").sequences
        assert torch.equal(again, expected)


def test_cosmos_samples_with_200_steps_unless_told_otherwise(tiny_tokenizer):
    pipe = make_pipeline(tiny_tokenizer)
    pipe(batch_size=1, generator=seeded(), output_type="latent")
    assert pipe.num_timesteps == 200  # Cosmos' N (conf/diffusion/default.yaml)
    pipe(batch_size=1, num_inference_steps=4, generator=seeded(), output_type="latent")
    assert pipe.num_timesteps == 4


def test_the_sampler_is_swapped_through_the_scheduler_config(tiny_tokenizer):
    pipe = make_pipeline(tiny_tokenizer)
    sde = pipe(batch_size=2, num_inference_steps=4, generator=seeded(), output_type="latent").latents
    pipe.scheduler = EulerMaruyamaVPScheduler.from_config(pipe.scheduler.config, solver="probability_flow")
    ode = pipe(batch_size=2, num_inference_steps=4, generator=seeded(), output_type="latent").latents
    assert not torch.allclose(sde, ode)


def test_an_autoencoder_of_another_shape_is_refused(tiny_tokenizer):
    pipe = make_pipeline(tiny_tokenizer)
    other = make_pipeline(tiny_tokenizer, num_latents=4).autoencoder
    with pytest.raises(ValueError, match="num_latents"):
        CosmosLMPipeline(model=pipe.model, autoencoder=other, scheduler=pipe.scheduler)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(gen_length=13), "gen_length"),
        (dict(latents=torch.zeros(2, 12, 8)), "latents"),
        (dict(num_inference_steps=0), "num_inference_steps"),
        (dict(output_type="tokens"), "output_type"),
    ],
)
def test_bad_inputs_name_the_argument(tiny_tokenizer, kwargs, name):
    with pytest.raises(ValueError, match=name):
        make_pipeline(tiny_tokenizer)(batch_size=2, **kwargs)
