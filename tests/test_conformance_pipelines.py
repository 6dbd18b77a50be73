"""What diffusers-style code expects of any latentlm pipeline: callback properties, component swaps, round trips.

The pipeline builders come from the per-pipeline test modules; add a new pipeline's builder to `BUILDERS`.
"""

import copy

import pytest
import torch

from latentlm import AutoPipelineForTextGeneration
from test_pipeline_cosmos import make_pipeline as make_cosmos
from test_pipeline_elf import make_pipeline as make_elf
from test_pipeline_ldlm import make_pipeline as make_ldlm
from test_pipeline_nfdm import make_pipeline as make_nfdm


BUILDERS = {
    "ELFPipeline": make_elf,
    "CosmosLMPipeline": make_cosmos,
    "LDLMPipeline": make_ldlm,
    "NFDMPipeline": make_nfdm,
}


@pytest.fixture(params=sorted(BUILDERS))
def pipe(request, tiny_tokenizer):
    return BUILDERS[request.param](tiny_tokenizer)


def _run(pipe, **kwargs):
    call = dict(batch_size=2, gen_length=6, num_inference_steps=3, generator=torch.Generator().manual_seed(0))
    return pipe(**{**call, **kwargs})


def test_callbacks_see_num_timesteps_and_guidance_scale(pipe):
    seen = []

    def callback(p, step, t, kwargs):
        seen.append((p.num_timesteps, p.guidance_scale))
        return kwargs

    _run(pipe, sc_guidance_scale=1.5, callback_on_step_end=callback)
    assert seen == [(3, 1.0)] * 3  # no condition: no classifier-free guidance


def test_save_load_round_trip_gives_identical_samples(pipe, tmp_path):
    pipe.save_pretrained(tmp_path)
    loaded = AutoPipelineForTextGeneration.from_pretrained(tmp_path)
    loaded.set_progress_bar_config(disable=True)
    assert type(loaded) is type(pipe)
    assert torch.equal(_run(pipe, output_type="latent").latents, _run(loaded, output_type="latent").latents)


def test_a_scheduler_without_init_noise_sigma_can_be_swapped_in(pipe):
    scheduler_class = type(pipe.scheduler)

    class NoInitNoiseSigma(scheduler_class):  # like diffusers' flow-matching schedulers
        def __getattribute__(self, name):
            if name == "init_noise_sigma":
                raise AttributeError(name)
            return super().__getattribute__(name)

    pipe.scheduler = NoInitNoiseSigma.from_config(pipe.scheduler.config)
    assert torch.isfinite(_run(pipe, output_type="latent").latents).all()


def test_replacing_the_autoencoder_takes_effect(tiny_tokenizer):
    pipe = make_cosmos(tiny_tokenizer)
    before = _run(pipe, output_type="seq").sequences
    other = copy.deepcopy(pipe.autoencoder)
    cat = tiny_tokenizer.convert_tokens_to_ids("cat")
    bump = torch.zeros(len(tiny_tokenizer))
    bump[cat] = 1e4
    other.lm_head.register_forward_hook(lambda module, args, logits: logits + bump)  # decodes every token as "cat"
    pipe.autoencoder = other
    assert pipe.model.autoencoder is other
    after = _run(pipe, output_type="seq").sequences
    assert not torch.equal(before, after)
    assert (after == cat).all()


def test_call_signature_is_explicit_and_return_dict_false_follows_the_output_fields(pipe):
    """diffusers' signature checks (and `help(pipe)`) see every argument; the tuple is `TextPipelineOutput`'s order."""
    import inspect

    parameters = inspect.signature(pipe.__call__).parameters
    assert not any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in parameters.values())
    for name in ("prompt", "source", "negative_prompt", "num_return_sequences", "max_new_tokens", "gen_length",
                 "num_inference_steps", "guidance_scale", "generator", "latents", "output_type", "return_dict",
                 "callback_on_step_end", "callback_on_step_end_tensor_inputs"):  # fmt: skip
        assert name in parameters
    out = _run(pipe)
    sequences, texts, latents = _run(pipe, return_dict=False)
    assert torch.equal(sequences, out.sequences) and texts == out.texts and torch.equal(latents, out.latents)


def test_latents_without_a_length_set_the_batch_and_the_length(pipe):
    """ELF's latents are one per token (their length is the text's); Cosmos' N latents describe the full L tokens."""
    latents = _run(pipe, output_type="latent").latents
    out = pipe(latents=latents, num_inference_steps=2, output_type="seq")
    fixed_shape = pipe.model.latent_shape(1) == pipe.model.latent_shape(2)
    assert out.sequences.shape == (2, pipe.model.max_gen_length if fixed_shape else latents.shape[1])


def test_batch_slicing_gives_the_same_samples_from_smaller_model_calls(pipe):
    whole = _run(pipe, batch_size=5, output_type="seq")
    rows = []

    def recording(method):
        def call(latents, *args, **kwargs):
            rows.append(latents.shape[0])
            return method(latents, *args, **kwargs)

        return call

    pipe.enable_batch_slicing(2)
    pipe.model.denoise = recording(pipe.model.denoise)
    pipe.model.decode_latents_to_ids = recording(pipe.model.decode_latents_to_ids)
    sliced = _run(pipe, batch_size=5, output_type="seq")
    assert rows == [2, 2, 1] * 4  # 3 steps and the decode, each in slices of at most 2 sequences
    torch.testing.assert_close(sliced.latents, whole.latents)
    assert torch.equal(sliced.sequences, whole.sequences)
    pipe.disable_batch_slicing()
    rows.clear()
    _run(pipe, batch_size=5, output_type="seq")
    assert rows == [5] * 4
    with pytest.raises(ValueError, match="`slice_size` must be a positive integer"):
        pipe.enable_batch_slicing(0)
