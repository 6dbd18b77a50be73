"""ELFPipeline: the sampling loop every method shares, as a user calls it."""

import pytest
import torch

from conftest import TINY_ELF
from latentlm import AutoPipelineForTextGeneration, ELFConfig, ELFForFlowMatching, ELFPipeline, TextPipelineOutput
from latentlm.models.modeling_utils import LatentDiffusionMixin
from latentlm.pipelines import LatentDiffusionTextPipeline
from latentlm.schedulers import FlowMatchEulerSDEScheduler


def make_pipeline(tokenizer, **config):
    torch.manual_seed(0)
    kwargs = dict(
        TINY_ELF,
        vocab_size=len(tokenizer),
        max_position_embeddings=12,
        latent_mean=0.0,
        latent_std=1.0,
        eos_token_id=tokenizer.sep_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    kwargs.update(config)
    model = ELFForFlowMatching(ELFConfig(**kwargs)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.3)
    pipe = ELFPipeline.from_model(model, tokenizer)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def seeded(seed=0):
    return torch.Generator().manual_seed(seed)


def test_generates_text_sequences_and_latents(tiny_tokenizer):
    pipe = make_pipeline(tiny_tokenizer)
    out = pipe(batch_size=3, gen_length=10, num_inference_steps=4, generator=seeded())
    assert isinstance(out, TextPipelineOutput)
    assert out.sequences.shape == (3, 10) and out.latents.shape == (3, 10, 16)
    assert len(out.texts) == 3 and all(isinstance(t, str) for t in out.texts)

    seq = pipe(batch_size=3, gen_length=10, num_inference_steps=4, generator=seeded(), output_type="seq")
    assert seq.texts is None and torch.equal(seq.sequences, out.sequences)
    latent = pipe(batch_size=3, gen_length=10, num_inference_steps=4, generator=seeded(), output_type="latent")
    assert latent.sequences is None and torch.equal(latent.latents, out.latents)

    as_tuple = pipe(batch_size=3, gen_length=10, num_inference_steps=4, generator=seeded(), return_dict=False)
    assert torch.equal(as_tuple[0], out.sequences) and as_tuple[1] == out.texts


def test_gen_length_defaults_to_the_longest_the_model_supports(tiny_tokenizer):
    out = make_pipeline(tiny_tokenizer)(num_inference_steps=2, generator=seeded(), output_type="seq")
    assert out.sequences.shape == (1, 12)


def test_same_generator_same_samples_different_seed_different_samples(tiny_tokenizer):
    pipe = make_pipeline(tiny_tokenizer)
    first = pipe(batch_size=2, gen_length=8, num_inference_steps=4, generator=seeded(1), output_type="latent")
    again = pipe(batch_size=2, gen_length=8, num_inference_steps=4, generator=seeded(1), output_type="latent")
    other = pipe(batch_size=2, gen_length=8, num_inference_steps=4, generator=seeded(2), output_type="latent")
    assert torch.equal(first.latents, again.latents)
    assert not torch.equal(first.latents, other.latents)


def test_one_generator_per_sample_makes_each_row_reproducible_alone(tiny_tokenizer):
    # ODE + uniform grid: the rows only share the (deterministic) grid, not noise draws.
    pipe = make_pipeline(tiny_tokenizer)
    pipe.scheduler = FlowMatchEulerSDEScheduler.from_config(pipe.scheduler.config, gamma=0.0, time_grid="uniform")
    both = pipe(
        batch_size=2, gen_length=8, num_inference_steps=3, generator=[seeded(5), seeded(6)], output_type="latent"
    )
    alone = pipe(batch_size=1, gen_length=8, num_inference_steps=3, generator=[seeded(6)], output_type="latent")
    torch.testing.assert_close(both.latents[1:], alone.latents, atol=1e-5, rtol=1e-5)


def test_save_and_load_gives_bit_identical_samples(tiny_tokenizer, tmp_path):
    pipe = make_pipeline(tiny_tokenizer)
    before = pipe(batch_size=2, gen_length=8, num_inference_steps=4, generator=seeded(3))
    pipe.save_pretrained(tmp_path)
    assert (tmp_path / "model" / "model.safetensors").is_file()
    assert not list(tmp_path.rglob("*.bin")) and not list(tmp_path.rglob("*.pt"))

    for loader in (ELFPipeline, AutoPipelineForTextGeneration):
        loaded = loader.from_pretrained(tmp_path)
        loaded.set_progress_bar_config(disable=True)
        assert isinstance(loaded, ELFPipeline)
        after = loaded(batch_size=2, gen_length=8, num_inference_steps=4, generator=seeded(3))
        assert torch.equal(before.sequences, after.sequences) and before.texts == after.texts
        assert torch.equal(before.latents, after.latents)


class ExactDenoiser(torch.nn.Module, LatentDiffusionMixin):
    """Predicts the true clean latents `target` at every step: the sampler must land on them."""

    def __init__(self, target):
        super().__init__()
        self.target = target
        self.config = type(
            "Config",
            (),
            {"max_position_embeddings": target.shape[1], "vocab_size": 4, "eos_token_id": None, "pad_token_id": 0},
        )()
        self.dtype, self.device = torch.float32, torch.device("cpu")

    def latent_shape(self, gen_length):
        return tuple(self.target.shape[1:])

    def denoise(self, latents, timestep, *, self_condition=None, sc_guidance_scale=None, condition=None):
        return self.target.expand_as(latents)

    def decode_latents(self, latents, *, sc_guidance_scale=None, condition=None):
        return latents[..., :4]


@pytest.mark.parametrize("gamma", [0.0, 1.5])
def test_loop_with_an_exact_denoiser_recovers_the_data(gamma):
    target = torch.randn(1, 6, 8)
    scheduler = FlowMatchEulerSDEScheduler(gamma=gamma)
    pipe = LatentDiffusionTextPipeline(model=ExactDenoiser(target), scheduler=scheduler)
    pipe.set_progress_bar_config(disable=True)
    out = pipe(batch_size=3, num_inference_steps=16, generator=seeded(), output_type="latent")
    torch.testing.assert_close(out.latents, target.expand(3, -1, -1), atol=1e-5, rtol=1e-5)


def test_output_is_cut_at_the_first_end_of_sequence(tiny_tokenizer):
    pipe = make_pipeline(tiny_tokenizer)
    eos, pad = tiny_tokenizer.sep_token_id, tiny_tokenizer.pad_token_id
    words = tiny_tokenizer.convert_tokens_to_ids(["the", "cat", "sat", "dog"])
    sequences = torch.tensor([[words[0], words[1], eos, words[2], eos, words[3]]])
    cut = pipe.cut_at_eos(sequences)
    assert cut.tolist() == [[words[0], words[1], pad, pad, pad, pad]]
    assert pipe.decode_to_text(sequences) == ["the cat"]


def test_callback_sees_every_step_and_may_replace_the_latents(tiny_tokenizer):
    pipe = make_pipeline(tiny_tokenizer)
    steps = []

    def on_step_end(pipeline, i, t, tensors):
        steps.append((i, float(t), tuple(sorted(tensors))))
        return {"latents": torch.zeros_like(tensors["latents"])}

    out = pipe(
        batch_size=1,
        gen_length=6,
        num_inference_steps=3,
        generator=seeded(),
        output_type="latent",
        callback_on_step_end=on_step_end,
        callback_on_step_end_tensor_inputs=["latents", "pred_original_sample"],
    )
    assert [s[0] for s in steps] == [0, 1, 2]
    assert steps[0][2] == ("latents", "pred_original_sample")
    assert torch.count_nonzero(out.latents) == 0


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        (dict(batch_size="2"), "batch_size"),
        (dict(batch_size=0), "batch_size"),
        (dict(num_inference_steps=0), "num_inference_steps"),
        (dict(num_inference_steps=2.5), "num_inference_steps"),
        (dict(gen_length=13), "gen_length"),
        (dict(guidance_scale="high"), "guidance_scale"),
        (dict(guidance_scale=3.0), "guidance_scale"),
        (dict(sc_guidance_scale=float("nan")), "sc_guidance_scale"),
        (dict(output_type="pt"), "output_type"),
        (dict(latents=torch.randn(1, 5, 16)), "latents"),
        (dict(batch_size=2, generator=[torch.Generator()]), "generator"),
        (dict(callback_on_step_end_tensor_inputs=["logits"]), "callback_on_step_end_tensor_inputs"),
    ],
)
def test_bad_input_raises_value_error_naming_the_argument(tiny_tokenizer, kwargs, argument):
    pipe = make_pipeline(tiny_tokenizer)
    call = dict(gen_length=8, num_inference_steps=2)
    call.update(kwargs)
    with pytest.raises(ValueError, match=argument):
        pipe(**call)


def test_a_tokenizer_that_does_not_match_the_model_is_rejected(tiny_tokenizer):
    pipe = make_pipeline(tiny_tokenizer, vocab_size=len(tiny_tokenizer) + 7)
    with pytest.raises(ValueError, match="tokenizer"):
        pipe(gen_length=8, num_inference_steps=2)
    # Token ids need no tokenizer.
    assert pipe(gen_length=8, num_inference_steps=2, output_type="seq").sequences.shape == (1, 8)
