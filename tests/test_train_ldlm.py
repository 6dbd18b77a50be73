"""LDLM end to end in one stage through the shared loop and CLI: joint training on a slice of a real corpus with the
real frozen encoder (states cached), exported as a pipeline of the denoiser and the decoder, sampled from the command
line, any recipe part switched off by an override, and resumed exactly after a crash (the adaptive sampler's moving
averages and the warm-up step included)."""

import json

import pytest
import torch
from safetensors.torch import load_file

from conftest import train_killed_after_first_checkpoint
from latentlm import AutoPipelineForTextGeneration, LDLMPipeline
from latentlm.cli import main
from latentlm.training import load_config, train


TINY = dict(
    num_latents=4, latent_dim=16, codec_hidden_size=32, codec_num_attention_heads=2, num_encoder_layers=1,
    num_decoder_layers=1, num_token_decoder_layers=1, lm_head_dim=16, hidden_size=32, num_hidden_layers=2,
    num_attention_heads=2, encoder_warmup_steps=3, num_timestep_bins=2,
)  # fmt: skip
COMMON = dict(
    method="ldlm",
    model=TINY,
    dataset="english-prose",
    seq_len=32,
    max_train_samples=48,
    max_eval_samples=8,
    cache_encoder_activations=True,
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
)


def log_of(output_dir):
    return [json.loads(line) for line in (output_dir / "train_log.jsonl").read_text().splitlines()]


def config(output_dir, **overrides):
    return load_config(None, {**COMMON, "output_dir": str(output_dir), **overrides})


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    """One uninterrupted run of `COMMON` trained from the command line (also the reference of the resume test)."""
    root = tmp_path_factory.mktemp("ldlm")
    config(root / "run").save(root / "ldlm.yaml")
    main(["train", str(root / "ldlm.yaml")])
    return root / "run"


def test_joint_training_from_the_cli_exports_a_pipeline_that_samples(cli_run, capsys):
    logged = [record for record in log_of(cli_run) if "loss" in record]
    assert {"diffusion_loss", "hidden_mse_loss", "token_ce_loss", "accuracy", "encoder_gamma"} <= logged[0].keys()
    assert (
        logged[0]["encoder_gamma"] == pytest.approx(1e-3) and logged[-1]["encoder_gamma"] > logged[0]["encoder_gamma"]
    )

    pipe = AutoPipelineForTextGeneration.from_pretrained(cli_run)
    assert isinstance(pipe, LDLMPipeline)
    assert pipe.model.config.encoder_dim == 384 and pipe.model.config.vocab_size == 30522
    main(["sample", str(cli_run), "--num_samples", "2", "--num_inference_steps", "4", "--seed", "0"])
    printed = capsys.readouterr().out.splitlines()
    assert [line[:4] for line in printed[-2:]] == ["[0] ", "[1] "]
    main(["sample", str(cli_run), "--num_samples", "1", "--num_inference_steps", "4", "--solver", "ddim"])
    assert capsys.readouterr().out.splitlines()[-1].startswith("[0] ")


def test_naive_joint_turns_every_recipe_part_off_by_override(tmp_path):
    naive = ["--model.mse_decoder_loss", "false", "--model.encoder_warmup", "false", "--model.adaptive_timesteps",
             "false", "--model.decoder_input_noise", "false"]  # fmt: skip
    config(tmp_path / "run").save(tmp_path / "ldlm.yaml")
    main(["train", str(tmp_path / "ldlm.yaml"), "--max_steps", "2", *naive])
    logged = [record for record in log_of(tmp_path / "run") if "loss" in record]
    assert all(record["encoder_gamma"] == 1.0 for record in logged)
    assert logged[0]["loss"] == pytest.approx(logged[0]["diffusion_loss"] + logged[0]["token_ce_loss"], rel=1e-5)
    checkpoint = tmp_path / "run" / "checkpoints" / "checkpoint-2" / "model" / "model.safetensors"
    assert int(load_file(checkpoint)["timestep_sampler.bin_count"].sum()) == 0  # uniform times, no sampler updates


def test_killed_and_resumed_run_continues_with_the_same_losses_and_sampler_state(cli_run, tmp_path, monkeypatch):

    run_b = config(tmp_path / "b", save_steps=2)
    train_killed_after_first_checkpoint(run_b, monkeypatch)
    # At the crash, every time bin had a loss: the steps after the resume sample from the saved moving averages.
    saved = load_file(tmp_path / "b" / "checkpoints" / "checkpoint-2" / "model" / "model.safetensors")
    assert bool((saved["timestep_sampler.bin_count"] > 0).all()) and int(saved["encoder_warmup_step"]) == 2
    run_b.resume_from_checkpoint = "latest"
    train(run_b)

    assert log_of(tmp_path / "b") == log_of(cli_run)
    final = "checkpoints/checkpoint-4/model/model.safetensors"
    weights_a, weights_b = load_file(cli_run / final), load_file(tmp_path / "b" / final)
    assert weights_a.keys() == weights_b.keys() and "timestep_sampler.bin_loss" in weights_a
    for name in weights_a:
        torch.testing.assert_close(weights_b[name], weights_a[name], rtol=0, atol=1e-6)


def test_reconstruct_measures_the_latent_space_of_a_run_with_the_weights_its_export_samples_with(cli_run, tmp_path,
                                                                                                 monkeypatch, capsys):  # fmt: skip
    from latentlm.evaluation.reconstruction import load_autoencoder

    # The run folder: the newest checkpoint's encoder and decoder, with the EMA weights the export was made from.
    codec, tokenizer = load_autoencoder(cli_run, "cpu")
    exported = load_file(cli_run / "decoder" / "model.safetensors")
    for name, value in exported.items():
        torch.testing.assert_close(codec.decoder.state_dict()[name].to(value.dtype), value, rtol=0, atol=0)
    assert len(tokenizer) == 30522
    raw, _ = load_autoencoder(cli_run / "checkpoints" / "checkpoint-4" / "model", "cpu")  # a checkpoint: its weights
    assert not torch.equal(raw.decoder.hidden_head.weight, codec.decoder.hidden_head.weight)

    monkeypatch.setenv("LATENTLM_CACHE", str(tmp_path / "cache"))
    main(["reconstruct", "--autoencoder", f"ldlm={cli_run}", "--num-sequences", "8", "--noise-levels", "0", "1",
          "--batch-size", "4", "--out-dir", str(tmp_path / "out")])  # fmt: skip
    row = json.loads((tmp_path / "out" / "reconstruction.json").read_text())["autoencoders"]["ldlm"]
    assert row["num_latents"] == 4 and row["compression_ratio"] == 8.0 and row["num_tokens"] == 8 * 32
    assert row["latent_statistics"] == "saved with the model"  # LDLM diffuses its latents as encoded
    assert all(0.0 <= value <= 1.0 for value in row["accuracy"].values())
    assert "| ldlm | 4 | 8 | no | 256 |" in capsys.readouterr().out

    with pytest.raises(SystemExit, match="holds LDLM's denoiser, not its encoder"):
        main(["reconstruct", "--autoencoder", f"denoiser={cli_run / 'model'}", "--out-dir", str(tmp_path / "x")])
