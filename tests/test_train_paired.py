"""Paired data (source -> target) through `latentlm train`: a conditional ELF, a conditional LDLM and the AR peer on the
same pairs."""

import json

import torch

from latentlm import ELFPipeline, LDLMPipeline
from latentlm.cli import main
from latentlm.training import load_config, train
from latentlm.training.builders import build_datasets, collate, load_tokenizer


PAIRS = [
    ("the cat sat on the mat in the park", "cat on mat"),
    ("a big dog ran quickly in the red house", "dog ran"),
    ("the small bird sang in the big tree", "bird sang"),
    ("a red cat ran slowly on the mat", "cat ran"),
] * 8


def write_pairs(path):
    path.write_text("".join(json.dumps({"article": s, "headline": t}) + "\n" for s, t in PAIRS))
    return path


def paired_config(tmp_path, method, model, **overrides):
    values = dict(
        method=method,
        model=model,
        dataset=str(write_pairs(tmp_path / "pairs.jsonl")),
        source_column="article",
        target_column="headline",
        max_source_length=12,
        seq_len=8,
        per_device_train_batch_size=4,
        per_device_eval_batch_size=4,
        validation_split=0.25,
        learning_rate=3e-3,
        max_steps=2,
        eval_batches=1,
        logging_steps=1,
        report_to="none",
        seed=0,
        output_dir=str(tmp_path / method),
    )
    return load_config(None, {**values, **overrides})


TINY_ELF = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, bottleneck_dim=16, decoder_head_dim=16)
TINY_LDLM = dict(
    num_latents=2, latent_dim=16, codec_hidden_size=32, codec_num_attention_heads=2, num_encoder_layers=1,
    num_decoder_layers=1, lm_head_dim=16, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
)  # fmt: skip


def test_diffusion_batches_carry_the_source_as_a_condition(tmp_path):
    config = paired_config(tmp_path, "elf", TINY_ELF)
    tokenizer = load_tokenizer(config)
    train_dataset, _ = build_datasets(config, tokenizer)
    batch = collate([train_dataset[i] for i in range(2)])
    assert batch["input_ids"].shape == (2, 8) and batch["condition_input_ids"].shape == (2, 12)
    source = tokenizer.decode(batch["condition_input_ids"][0][batch["condition_attention_mask"][0].bool()])
    target = batch["input_ids"][0]
    assert batch["attention_mask"].all()  # EOS padding is real and supervised: the model learns where text ends
    text_length = int((target != tokenizer.sep_token_id).sum())
    assert (target[text_length:] == tokenizer.sep_token_id).all()
    assert (source, tokenizer.decode(target[:text_length])) in [(s, t) for s, t in PAIRS]


def test_causal_lm_batches_are_source_sep_target_with_the_loss_on_the_target(tmp_path):
    config = paired_config(tmp_path, "ar", {})
    tokenizer = load_tokenizer(config)
    train_dataset, _ = build_datasets(config, tokenizer)
    batch = collate([train_dataset[0]])
    ids, labels = batch["input_ids"][0], batch["labels"][0]
    sep = (ids == tokenizer.sep_token_id).nonzero()[0].item()
    assert (labels[: sep + 1] == -100).all()
    target = labels[labels != -100]
    assert tokenizer.decode(target[:-1]) in [t for _, t in PAIRS] and target[-1] == tokenizer.sep_token_id
    assert ids.shape == (12 + 1 + 8,)


def test_elf_trained_on_pairs_is_conditional_and_generates_from_sources(tmp_path, capsys):
    train(paired_config(tmp_path, "elf", TINY_ELF))
    pipe = ELFPipeline.from_pretrained(tmp_path / "elf")
    assert pipe.model.config.conditional and pipe.model.config.max_position_embeddings == 12 + 8
    pipe.set_progress_bar_config(disable=True)
    out = pipe(source="the cat sat on the mat", guidance_scale=2.0, max_new_tokens=8, num_inference_steps=2,
               generator=torch.Generator().manual_seed(0))  # fmt: skip
    assert out.sequences.shape == (1, 8) and len(out.texts) == 1
    main(["sample", str(tmp_path / "elf"), "--source", "the cat sat", "--guidance_scale", "2", "--max_new_tokens",
          "4", "--num_inference_steps", "2", "--num_return_sequences", "2"])  # fmt: skip
    assert [line[:4] for line in capsys.readouterr().out.splitlines()[-2:]] == ["[0] ", "[1] "]


def test_ldlm_trained_on_pairs_cross_attends_to_the_source_and_generates_from_sources(tmp_path):
    train(paired_config(tmp_path, "ldlm", TINY_LDLM))
    pipe = LDLMPipeline.from_pretrained(tmp_path / "ldlm")
    config = pipe.model.config
    assert config.conditional and config.cross_attention_dim == config.encoder_dim == 384
    assert config.max_position_embeddings == 8  # the target's length: the source is read by cross-attention
    assert pipe.model.hidden_std.abs().sum() > 0  # the condition's statistics were fitted with the target's
    pipe.set_progress_bar_config(disable=True)
    out = pipe(source=["the cat sat on the mat", "a dog"], guidance_scale=2.0, num_inference_steps=2,
               generator=torch.Generator().manual_seed(0))  # fmt: skip
    assert out.sequences.shape == (2, 8) and len(out.texts) == 2
