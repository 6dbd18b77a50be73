"""ELF end to end: trained by the shared loop on a slice of a real corpus with its real frozen encoder, resumed
exactly after a crash, exported as a pipeline and sampled from the command line."""

import json

import pytest
import torch
from safetensors.torch import load_file

from conftest import train_killed_after_first_checkpoint
from latentlm import ELFPipeline
from latentlm.cli import main
from latentlm.training import load_config, train


TINY_ELF = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, bottleneck_dim=16, decoder_head_dim=16)


def elf_config(output_dir, **overrides):
    values = dict(
        method="elf",
        model=dict(TINY_ELF),
        dataset="english-prose",
        seq_len=32,
        max_train_samples=64,
        max_eval_samples=16,
        per_device_train_batch_size=4,
        per_device_eval_batch_size=4,
        learning_rate=3e-3,
        max_steps=4,
        eval_steps=2,
        eval_batches=2,
        logging_steps=1,
        ema_decay=0.9,
        report_to="none",
        seed=0,
        output_dir=str(output_dir),
    )
    return load_config(None, {**values, **overrides})


def log_of(output_dir):
    return [json.loads(line) for line in (output_dir / "train_log.jsonl").read_text().splitlines()]


def test_elf_trains_on_english_prose_exports_a_pipeline_and_samples_from_the_cli(tmp_path, capsys):
    result = train(elf_config(tmp_path / "run"))
    assert result.step == 4 and torch.isfinite(torch.tensor(result.eval_loss))
    logged = [r for r in log_of(tmp_path / "run") if "loss" in r]
    assert {"denoise_loss", "decode_loss"} <= set().union(*logged)  # a step without decode rows omits decode_loss

    pipe = ELFPipeline.from_pretrained(tmp_path / "run")
    assert pipe.model.config.latent_std > 0  # fitted on the data before training, saved with the model
    assert pipe.model.text_encoder is None  # sampling never needs the encoder
    assert len(pipe.tokenizer) == pipe.model.config.vocab_size == 30522

    main(
        [
            "sample",
            str(tmp_path / "run"),
            "--num_samples",
            "2",
            "--gen_length",
            "8",
            "--num_inference_steps",
            "2",
            "--seed",
            "0",
        ]
    )
    printed = capsys.readouterr().out.splitlines()
    assert [line[:4] for line in printed[-2:]] == ["[0] ", "[1] "]


def test_elf_run_killed_and_resumed_continues_with_the_same_losses(tmp_path, monkeypatch):
    train(elf_config(tmp_path / "a"))

    run_b = elf_config(tmp_path / "b", save_steps=2)
    train_killed_after_first_checkpoint(run_b, monkeypatch)
    run_b.resume_from_checkpoint = "latest"
    train(run_b)

    assert log_of(tmp_path / "b") == log_of(tmp_path / "a")
    weights_a = load_file(tmp_path / "a" / "model" / "model.safetensors")
    weights_b = load_file(tmp_path / "b" / "model" / "model.safetensors")
    for name in weights_a:
        torch.testing.assert_close(weights_b[name], weights_a[name], rtol=0, atol=1e-6)


def test_lora_fine_tuning_of_a_trained_elf_changes_only_the_adapted_layers(tmp_path):
    train(elf_config(tmp_path / "base", max_steps=2))
    lora = {"r": 4, "lora_alpha": 8, "target_modules": ["qkv", "out_proj"]}
    train(elf_config(tmp_path / "lora", init_from=str(tmp_path / "base" / "model"), lora=lora, max_steps=2,
                     learning_rate=5e-2))  # fmt: skip

    base = load_file(tmp_path / "base" / "model" / "model.safetensors")
    tuned = load_file(tmp_path / "lora" / "model" / "model.safetensors")  # the merged export
    changed = {name for name in base if not torch.equal(base[name], tuned[name])}
    assert changed and all(name.endswith(("qkv.weight", "out_proj.weight")) for name in changed)
    assert ELFPipeline.from_pretrained(tmp_path / "lora").model.config.latent_std == pytest.approx(
        ELFPipeline.from_pretrained(tmp_path / "base").model.config.latent_std
    )
