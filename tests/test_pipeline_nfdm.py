"""NFDMPipeline: NFDM through the shared sampling loop, with each of its scheduler's solvers."""

import pytest
import torch

from latentlm import AutoPipelineForTextGeneration, LearnedGaussianSDEScheduler, NFDMPipeline, TextPipelineOutput
from test_nfdm import tiny_model


def make_pipeline(tokenizer, solver="sde"):
    model = tiny_model(vocab_size=len(tokenizer), eos_token_id=tokenizer.sep_token_id).eval()
    pipe = NFDMPipeline.from_model(model, tokenizer)
    pipe.scheduler = LearnedGaussianSDEScheduler.from_config(pipe.scheduler.config, solver=solver)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def seeded(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("solver", ["sde", "ode", "ancestral"])
def test_every_solver_generates_text_and_save_load_gives_identical_samples(tiny_tokenizer, tmp_path, solver):
    pipe = make_pipeline(tiny_tokenizer, solver)
    out = pipe(batch_size=2, gen_length=6, num_inference_steps=4, generator=seeded())
    assert isinstance(out, TextPipelineOutput) and out.latents.shape == (2, 6, 8)
    assert len(out.texts) == 2 and torch.isfinite(out.latents).all()

    pipe.save_pretrained(tmp_path)
    loaded = AutoPipelineForTextGeneration.from_pretrained(tmp_path)
    assert isinstance(loaded, NFDMPipeline) and loaded.scheduler.config.solver == solver
    loaded.set_progress_bar_config(disable=True)
    again = loaded(batch_size=2, gen_length=6, num_inference_steps=4, generator=seeded())
    assert torch.equal(again.latents, out.latents) and again.texts == out.texts


def test_the_model_hands_the_scheduler_x_hat_its_process_and_the_volatility(tiny_tokenizer):
    pipe = make_pipeline(tiny_tokenizer)
    model, z = pipe.model, torch.randn(2, 5, 8)
    t = torch.tensor(0.6)
    fields = LearnedGaussianSDEScheduler.unpack_model_output(model.denoise(z, t))
    t2 = t.expand(2)
    torch.testing.assert_close(fields["x_hat"], model.predict_clean(z, t2))
    mean_bar, log_std_bar, mean_bar_dt, _ = model.forward_fields(fields["x_hat"], t2)
    torch.testing.assert_close(fields["mean_bar"], mean_bar)
    torch.testing.assert_close(fields["mean_bar_dt"], mean_bar_dt)
    torch.testing.assert_close(fields["volatility"][:, 0, 0], model.volatility(t2))


@pytest.mark.parametrize(
    "kwargs, argument",
    [(dict(guidance_scale=2.0), "guidance_scale"), (dict(num_inference_steps=0), "num_inference_steps"),
     (dict(gen_length=99), "gen_length")],
)  # fmt: skip
def test_bad_input_raises_value_error_naming_the_argument(tiny_tokenizer, kwargs, argument):
    pipe = make_pipeline(tiny_tokenizer)
    with pytest.raises(ValueError, match=f"`{argument}`"):
        pipe(**{"batch_size": 1, "gen_length": 4, "num_inference_steps": 2, **kwargs})


def test_conditioning_is_refused_until_nfdm_is_trained_with_conditions(tiny_tokenizer):
    pipe = make_pipeline(tiny_tokenizer)
    with pytest.raises(ValueError, match="unconditional"):
        pipe.model.denoise(torch.randn(1, 4, 8), 0.5, condition=torch.randn(1, 2, 8))
