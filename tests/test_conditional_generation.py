"""Conditional generation through the one loop: prompts, sources, guidance, as a user relies on them."""

import pytest
import torch

from conftest import TINY_ELF, EmbeddingEncoder
from latentlm import AutoPipelineForTextGeneration, CosmosLMPipeline, LDLMForDiffusion
from latentlm.models.modeling_utils import TextCondition, left_align
from test_pipeline_cosmos import make_pipeline as make_cosmos
from test_pipeline_elf import make_pipeline as make_elf
from test_pipeline_ldlm import make_pipeline as make_ldlm


def conditional_elf(tokenizer, **config):
    """A tiny conditional ELF pipeline whose frozen encoder is an embedding table."""
    pipe = make_elf(tokenizer, **{"max_position_embeddings": 24, "conditional": True, **config})
    pipe.model.set_text_encoder(EmbeddingEncoder(16, len(tokenizer)))
    return pipe


def conditional_cosmos(tokenizer):
    """A tiny Cosmos pipeline reading a condition of the autoencoder's encoder width (16) by cross-attention."""
    pipe = make_cosmos(tokenizer, conditional=True, cross_attention_dim=16)
    with torch.no_grad():
        pipe.autoencoder.activation_std.fill_(1.0)
    pipe.autoencoder.set_text_encoder(EmbeddingEncoder(16, len(tokenizer)))
    return pipe


def conditional_ldlm(tokenizer, **config):
    """A tiny LDLM pipeline whose denoiser cross-attends to its condition's frozen-LM states (width 16); the frozen
    LM is an embedding table and the state statistics are the identity."""
    pipe = make_ldlm(tokenizer, conditional=True, **config)
    with torch.no_grad():
        pipe.model.hidden_mean.zero_()
        pipe.model.hidden_std.fill_(1.0)
    pipe.model.set_text_encoder(EmbeddingEncoder(16, len(tokenizer)))
    return pipe


def seeded(seed=0):
    return torch.Generator().manual_seed(seed)


# ----------------------------------------------------------------------------------------------------- prompts


def test_every_text_and_sequence_begins_with_its_prompt_unchanged(tiny_tokenizer):
    pipe = conditional_elf(tiny_tokenizer)
    prompts = ["the cat sat", "a big red dog ran quickly"]
    out = pipe(prompt=prompts, num_return_sequences=2, max_new_tokens=8, num_inference_steps=3, generator=seeded())
    assert len(out.texts) == 4 and out.latents.shape == (4, 8, 16)
    for i, text in enumerate(out.texts):
        prompt = prompts[i // 2]
        ids = tiny_tokenizer(prompt, add_special_tokens=False)["input_ids"]
        assert text.startswith(prompt)
        assert out.sequences[i, : len(ids)].tolist() == ids
    # Rows of the shorter prompt are padded after their generated tokens, not inside the prompt.
    assert out.sequences.shape == (4, 6 + 8)


def test_the_decoder_never_rewrites_the_prompt(tiny_tokenizer, monkeypatch):
    """Even a model that decodes every position to one token leaves the prompt as the user wrote it."""
    pipe = conditional_elf(tiny_tokenizer)
    word = tiny_tokenizer.convert_tokens_to_ids("bird")

    def always_bird(latents, **kwargs):
        return torch.full(latents.shape[:2], word)

    monkeypatch.setattr(pipe.model, "decode_latents_to_ids", always_bird)
    out = pipe(prompt="the cat sat on the mat", max_new_tokens=3, num_inference_steps=2, generator=seeded())
    assert out.texts == ["the cat sat on the mat bird bird bird"]


def test_padding_of_uneven_prompts_changes_nothing_for_the_real_tokens(tiny_tokenizer):
    pipe = conditional_elf(tiny_tokenizer)
    common = dict(max_new_tokens=6, num_inference_steps=3, output_type="latent")
    both = pipe(prompt=["the cat", "a big red dog sat on the mat"], generator=[seeded(1), seeded(2)], **common)
    alone = pipe(prompt=["the cat"], generator=[seeded(1)], **common)
    torch.testing.assert_close(both.latents[:1], alone.latents, atol=1e-5, rtol=1e-5)


def test_a_prompt_conditions_the_samples(tiny_tokenizer):
    pipe = conditional_elf(tiny_tokenizer)
    common = dict(max_new_tokens=6, num_inference_steps=3, generator=seeded(), output_type="latent")
    assert not torch.allclose(pipe(prompt="the cat", **common).latents, pipe(prompt="a dog ran", **common).latents)


def test_default_length_is_the_rest_of_the_sequence_after_the_prompt(tiny_tokenizer):
    pipe = conditional_elf(tiny_tokenizer)
    out = pipe(prompt="the cat sat", num_inference_steps=2, generator=seeded(), output_type="latent")
    assert out.latents.shape[1] == TINY_ELF["max_position_embeddings"] - 3


# ----------------------------------------------------------------------------------------------------- guidance


def test_guidance_scale_one_equals_the_conditional_prediction(tiny_tokenizer):
    pipe = conditional_elf(tiny_tokenizer)
    ids = torch.tensor([tiny_tokenizer("the cat sat", add_special_tokens=False)["input_ids"]])
    condition = pipe.model.encode_condition(ids)
    latents = torch.randn(1, 5, 16)
    plain = pipe.model.denoise(latents, 0.6, sc_guidance_scale=2.0, condition=condition)
    pipe._do_classifier_free_guidance, pipe._guidance_scale = True, 1.0
    guided = pipe.predict_original_sample(latents, 0.6, None, 2.0, condition, condition.dropped())
    torch.testing.assert_close(guided, plain, atol=1e-5, rtol=1e-5)
    # At scale 0 it is the unconditional prediction; beyond 1 it extrapolates away from it.
    pipe._guidance_scale = 0.0
    unconditional = pipe.model.denoise(latents, 0.6, sc_guidance_scale=2.0, condition=condition.dropped())
    torch.testing.assert_close(
        pipe.predict_original_sample(latents, 0.6, None, 2.0, condition, condition.dropped()), unconditional,
        atol=1e-5, rtol=1e-5,
    )  # fmt: skip


def test_a_dropped_condition_is_exactly_no_condition(tiny_tokenizer):
    pipe = conditional_elf(tiny_tokenizer)
    ids = torch.tensor([tiny_tokenizer("the cat sat", add_special_tokens=False)["input_ids"]])
    dropped = pipe.model.encode_condition(ids).dropped()
    latents = torch.randn(1, 5, 16)
    torch.testing.assert_close(
        pipe.model.denoise(latents, 0.3, condition=dropped), pipe.model.denoise(latents, 0.3), atol=1e-5, rtol=1e-5
    )


def test_guidance_runs_both_halves_in_one_forward_and_the_negative_prompt_replaces_the_empty_branch(tiny_tokenizer):
    pipe = conditional_elf(tiny_tokenizer)
    calls = []
    denoise = pipe.model.denoise
    pipe.model.denoise = lambda latents, t, **kw: calls.append(latents.shape[0]) or denoise(latents, t, **kw)
    common = dict(prompt="the cat", max_new_tokens=5, num_inference_steps=3, generator=seeded(), output_type="latent")
    guided = pipe(guidance_scale=2.0, **common)
    assert calls == [2, 2, 2]
    negative = pipe(guidance_scale=2.0, negative_prompt="a dog", **common)
    assert not torch.allclose(guided.latents, negative.latents)
    assert pipe.do_classifier_free_guidance and pipe.guidance_scale == 2.0 and pipe.num_timesteps == 3


def test_batch_slicing_with_guidance_and_uneven_prompts_gives_the_same_continuations(tiny_tokenizer):
    pipe = conditional_elf(tiny_tokenizer)
    call = dict(prompt=["the cat sat", "a big red dog ran quickly"], num_return_sequences=2, max_new_tokens=6,
                num_inference_steps=3, guidance_scale=2.0)  # fmt: skip
    whole = pipe(**call, generator=seeded())
    pipe.enable_batch_slicing(3)  # the 8-row guidance batch (4 conditional, 4 unconditional) in slices of 3
    sliced = pipe(**call, generator=seeded())
    torch.testing.assert_close(sliced.latents, whole.latents)
    assert sliced.texts == whole.texts


# ----------------------------------------------------------------------------------------------------- training


def test_condition_dropout_reaches_the_unconditional_branch(tiny_tokenizer, monkeypatch):
    model = conditional_elf(tiny_tokenizer).model.train()
    model.config.condition_dropout = 1.0  # every row dropped (the config refuses 1.0: nothing would be conditioned)
    masks = []
    forward = model.model.forward
    monkeypatch.setattr(
        model.model, "forward", lambda *a, **kw: masks.append(kw.get("condition_attention_mask")) or forward(*a, **kw)
    )
    ids = torch.randint(5, len(tiny_tokenizer), (3, 10))
    model(ids, condition_input_ids=ids[:, :4], condition_attention_mask=torch.ones(3, 4))
    assert masks and all(mask is not None and not mask.any() for mask in masks)

    masks.clear()
    model.config.condition_dropout = 0.0
    model(ids, condition_input_ids=ids[:, :4], condition_attention_mask=torch.ones(3, 4))
    assert all(mask.all() for mask in masks)


def test_continuation_training_splits_a_batch_into_prompt_and_target(tiny_tokenizer, monkeypatch):
    model = conditional_elf(tiny_tokenizer, prompt_prob=1.0, condition_dropout=0.0).model.train()
    seen = []
    forward = model.model.forward
    monkeypatch.setattr(
        model.model, "forward", lambda h, t, **kw: seen.append((h.shape[1], kw)) or forward(h, t, **kw)
    )
    ids = torch.randint(5, len(tiny_tokenizer), (2, 16))
    out = model(ids)
    length, kwargs = seen[-1]
    prompt_length = kwargs["condition_hidden_states"].shape[1]
    assert 1 <= prompt_length <= 8 and length == 16 - prompt_length
    assert torch.isfinite(out.loss)
    # The condition is the encoder's embedding of the prefix alone.
    expected = model.encode_text(ids[:, :prompt_length], torch.ones(2, prompt_length))
    torch.testing.assert_close(kwargs["condition_hidden_states"], expected)


def test_an_unconditional_model_rejects_conditions_by_name(tiny_tokenizer):
    pipe = conditional_elf(tiny_tokenizer, conditional=False)
    with pytest.raises(ValueError, match="`prompt` needs a model trained with conditions"):
        pipe(prompt="the cat", num_inference_steps=2)
    ids = torch.ones(1, 4, dtype=torch.long)
    with pytest.raises(ValueError, match="condition_input_ids"):
        pipe.model(ids, condition_input_ids=ids)


# ------------------------------------------------------------------------------------------------ cross-attention


@pytest.mark.parametrize("build", [conditional_cosmos, conditional_ldlm])
def test_cross_attention_models_read_each_source_and_guidance_moves_the_samples(tiny_tokenizer, build):
    pipe = build(tiny_tokenizer)
    first = pipe(source=["the cat sat on the mat", "a dog"], num_inference_steps=3, generator=seeded())
    assert first.sequences.shape == (2, 12) and len(first.texts) == 2
    other = pipe(source=["a bird sang", "a dog"], num_inference_steps=3, generator=seeded())
    assert not torch.allclose(first.latents[0], other.latents[0])
    torch.testing.assert_close(first.latents[1], other.latents[1])  # the same source and noise, whatever the padding
    guided = pipe(source=["the cat sat on the mat", "a dog"], guidance_scale=3.0, num_inference_steps=3,
                  generator=seeded())  # fmt: skip
    assert not torch.allclose(guided.latents, first.latents)


def test_cosmos_continuation_training_re_encodes_the_rest_of_the_window(tiny_tokenizer, monkeypatch):
    pipe = conditional_cosmos(tiny_tokenizer)
    model = pipe.model.train()
    model.config.prompt_prob, model.config.condition_dropout = 1.0, 0.0
    encoded = []
    encode = pipe.autoencoder.encode
    monkeypatch.setattr(
        pipe.autoencoder, "encode", lambda ids, mask, **kw: encoded.append((ids, mask)) or encode(ids, mask, **kw)
    )
    ids = torch.randint(5, len(tiny_tokenizer), (2, 12))
    out = model(ids, torch.ones_like(ids))
    target, mask = encoded[-1]
    split = int(12 - mask[0].sum())
    assert 1 <= split <= 6 and torch.equal(target[:, : 12 - split], ids[:, split:])
    assert torch.isfinite(out.loss)


def test_ldlm_condition_is_the_standardised_states_of_the_frozen_lm(tiny_tokenizer):
    pipe = conditional_ldlm(tiny_tokenizer)
    with torch.no_grad():
        pipe.model.hidden_mean.fill_(0.5)
        pipe.model.hidden_std.fill_(2.0)
    ids = torch.tensor([tiny_tokenizer("the cat sat", add_special_tokens=False)["input_ids"]])
    condition = pipe.model.encode_condition(ids)
    raw = pipe.model.text_encoder(input_ids=ids).last_hidden_state
    torch.testing.assert_close(condition.hidden_states, (raw - 0.5) / 2.0)
    assert condition.attention_mask.all()


def test_ldlm_joint_training_gives_every_denoiser_pass_the_condition_and_drops_it_by_row(tiny_tokenizer, monkeypatch):
    model = LDLMForDiffusion(conditional_ldlm(tiny_tokenizer).model.config)
    model.set_text_encoder(EmbeddingEncoder(16, len(tiny_tokenizer)))
    ids = torch.randint(5, len(tiny_tokenizer), (3, 12))
    model.fit_hidden_statistics([{"input_ids": ids, "attention_mask": torch.ones_like(ids)}])
    torch.testing.assert_close(model.model.hidden_std, model.hidden_std)  # the denoiser standardises alike
    with torch.no_grad():  # as after some training: the zero-initialised output layer passes gradients back
        model.model.transformer.proj_out.weight.normal_(0, 0.1)
    masks = []
    forward = model.model.forward
    monkeypatch.setattr(
        model.model, "forward", lambda *a, **kw: masks.append(kw.get("encoder_attention_mask")) or forward(*a, **kw)
    )
    model.train()
    model.config.condition_dropout = 0.0
    out = model(ids, condition_input_ids=ids[:, :4], condition_attention_mask=torch.ones(3, 4))
    assert len(masks) == 2 and all(mask is not None and mask.all() for mask in masks)  # self-conditioning pass too
    out.loss.backward()
    assert model.model.transformer.blocks[0].cross_attn.kv_proj.weight.grad.abs().sum() > 0
    masks.clear()
    model.config.condition_dropout = 1.0  # every row dropped (the config refuses 1.0: nothing would be conditioned)
    model(ids, condition_input_ids=ids[:, :4], condition_attention_mask=torch.ones(3, 4))
    assert masks and all(not mask.any() for mask in masks)


def test_ldlm_continuation_training_encodes_the_rest_of_the_window_as_the_target(tiny_tokenizer, monkeypatch):
    model = LDLMForDiffusion(conditional_ldlm(tiny_tokenizer, prompt_prob=1.0, condition_dropout=0.0).model.config)
    model.set_text_encoder(EmbeddingEncoder(16, len(tiny_tokenizer)))
    ids = torch.randint(5, len(tiny_tokenizer), (2, 12))
    model.fit_hidden_statistics([{"input_ids": ids, "attention_mask": torch.ones_like(ids)}])
    read = []
    activations = model.encoder_activations
    monkeypatch.setattr(model, "encoder_activations", lambda i, m: read.append((i, m)) or activations(i, m))
    out = model.train()(ids, torch.ones_like(ids), encoder_activations=torch.zeros(2, 12, 16))
    (target, mask), = read  # the cached states of the whole window are not the target's: it is read again
    split = int(12 - mask[0].sum())
    assert 1 <= split <= 6 and torch.equal(target[:, : 12 - split], ids[:, split:]) and not mask[:, 12 - split :].any()
    assert torch.isfinite(out.loss)


# ----------------------------------------------------------------------------------------------------- save / load


@pytest.mark.parametrize("build", [conditional_elf, conditional_cosmos, conditional_ldlm])
def test_conditioned_pipelines_save_and_load(tiny_tokenizer, tmp_path, build):
    pipe = build(tiny_tokenizer)
    call = dict(source="the cat sat", guidance_scale=2.0, num_inference_steps=3, max_new_tokens=6)
    before = pipe(generator=seeded(4), **call)
    pipe.save_pretrained(tmp_path)
    loaded = AutoPipelineForTextGeneration.from_pretrained(tmp_path)
    loaded.set_progress_bar_config(disable=True)
    assert loaded.model.config.conditional
    # The frozen encoder is not saved (it is loaded by name); give the reloaded model the same stand-in.
    owner = loaded.autoencoder if isinstance(loaded, CosmosLMPipeline) else loaded.model
    source = pipe.autoencoder if isinstance(pipe, CosmosLMPipeline) else pipe.model
    owner.set_text_encoder(source.text_encoder)
    after = loaded(generator=seeded(4), **call)
    assert torch.equal(before.sequences, after.sequences) and before.texts == after.texts


# ----------------------------------------------------------------------------------------------------- helpers


def test_left_align_moves_padding_to_the_left_and_keeps_order():
    states = torch.arange(8.0).view(2, 4, 1)
    aligned, mask = left_align(states, torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]]))
    assert mask.tolist() == [[False, False, True, True], [True] * 4]
    assert aligned[:, :, 0].tolist() == [[0, 0, 0, 1], [4, 5, 6, 7]]


def test_text_condition_cat_left_pads_the_shorter_half():
    a = TextCondition(torch.ones(1, 2, 3), torch.ones(1, 2, dtype=torch.bool))
    b = TextCondition(torch.ones(1, 4, 3), torch.ones(1, 4, dtype=torch.bool))
    both = TextCondition.cat([a, b])
    assert both.hidden_states.shape == (2, 4, 3)
    assert both.attention_mask.tolist() == [[False, False, True, True], [True] * 4]


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        (dict(prompt=""), "prompt"),
        (dict(prompt=["the cat", "  "]), "prompt"),
        (dict(prompt=[]), "prompt"),
        (dict(prompt=3), "prompt"),
        (dict(source=["a"], prompt=["b"]), "prompt"),
        (dict(prompt="the cat", batch_size=2), "batch_size"),
        (dict(prompt="the cat", num_return_sequences=0), "num_return_sequences"),
        (dict(prompt="the cat", guidance_scale=float("nan")), "guidance_scale"),
        (dict(prompt="the cat", guidance_scale=-1.0), "guidance_scale"),
        (dict(prompt="the cat", negative_prompt=["a", "b"]), "negative_prompt"),
        (dict(negative_prompt="a dog"), "negative_prompt"),
        (dict(prompt="the cat " * 12), "prompt"),
        (dict(prompt="the cat", max_new_tokens=24), "max_new_tokens"),
        (dict(prompt="the cat", gen_length=5, max_new_tokens=6), "max_new_tokens"),
        (dict(prompt="the cat", max_new_tokens=0), "max_new_tokens"),
        (dict(prompt="the cat", callback_on_step_end="print"), "callback_on_step_end"),
    ],
)
def test_bad_conditional_input_raises_naming_the_argument(tiny_tokenizer, kwargs, argument):
    pipe = conditional_elf(tiny_tokenizer)
    with pytest.raises(ValueError, match=argument):
        pipe(num_inference_steps=2, **kwargs)


def test_the_bundled_continuation_model_continues_prompts_offline():
    import latentlm
    from latentlm import ELFPipeline

    pipe = ELFPipeline.from_pretrained(latentlm.pretrained_path("elf-tiny-prose-continuation"))
    pipe.set_progress_bar_config(disable=True)
    assert pipe.model.is_conditional and pipe.model.dtype == torch.float32
    out = pipe(prompt=["the government said", "she walked"], max_new_tokens=6, num_inference_steps=2,
               guidance_scale=2.0, generator=seeded())  # fmt: skip
    assert out.texts[0].startswith("the government said") and out.texts[1].startswith("she walked")
