"""Cosmos end to end, in two stages through the shared loop and CLI: the autoencoder on a slice of a real corpus
with the real frozen encoder (activations cached), then diffusion on its latents (`--autoencoder`), exported as one
pipeline, sampled from the command line, and resumed exactly after a crash."""

import json

import pytest
import torch
from safetensors.torch import load_file

from conftest import train_killed_after_first_checkpoint
from latentlm import AutoPipelineForTextGeneration, CosmosLMAutoencoder, CosmosLMPipeline
from latentlm.cli import main
from latentlm.training import load_config, train


COMMON = dict(
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
    report_to="none",
    seed=0,
)
TINY_AE = dict(num_latents=4, latent_dim=16, hidden_size=32, num_attention_heads=2, num_compressor_layers=1,
               num_decompressor_layers=1, lm_head_dim=16)  # fmt: skip
TINY_DENOISER = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2)


def log_of(output_dir):
    return [json.loads(line) for line in (output_dir / "train_log.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def autoencoder_dir(tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("cosmos-ae")
    train(
        load_config(None, {**COMMON, "method": "cosmos-autoencoder", "model": TINY_AE, "output_dir": str(output_dir)})
    )
    return output_dir


def diffusion_config(output_dir, autoencoder_dir, **overrides):
    values = {**COMMON, "method": "cosmos", "model": dict(TINY_DENOISER), "ema_decay": 0.9, "autoencoder": str(autoencoder_dir),
              "output_dir": str(output_dir)}  # fmt: skip
    return load_config(None, {**values, **overrides})


def test_stage_one_trains_the_autoencoder_with_its_metrics_and_saves_its_statistics(autoencoder_dir):
    logged = [record for record in log_of(autoencoder_dir) if "loss" in record]
    assert {"ce_loss", "mse_loss", "accuracy"} <= logged[0].keys()
    autoencoder = CosmosLMAutoencoder.from_pretrained(autoencoder_dir)
    assert autoencoder.has_activation_statistics and not autoencoder.has_latent_statistics
    assert autoencoder.config.max_position_embeddings == 32 and autoencoder.config.vocab_size == 30522
    assert (autoencoder_dir / "tokenizer.json").is_file() or (autoencoder_dir / "vocab.txt").is_file()


def test_stage_two_from_the_cli_exports_one_pipeline_that_samples(autoencoder_dir, tmp_path, capsys):
    config = diffusion_config(tmp_path / "run", autoencoder_dir)
    config.save(tmp_path / "cosmos.yaml")
    main(["train", str(tmp_path / "cosmos.yaml"), "--autoencoder", str(autoencoder_dir), "--max_steps", "3"])

    pipe = AutoPipelineForTextGeneration.from_pretrained(tmp_path / "run")
    assert isinstance(pipe, CosmosLMPipeline)
    assert pipe.model.config.num_latents == 4 and pipe.model.config.latent_dim == 16  # read from the autoencoder
    assert pipe.autoencoder.has_latent_statistics  # fitted by stage two, saved with the pipeline
    assert pipe.autoencoder.text_encoder is None  # sampling never needs the frozen encoder

    main(["sample", str(tmp_path / "run"), "--num_samples", "2", "--num_inference_steps", "3", "--seed", "0"])
    printed = capsys.readouterr().out.splitlines()
    assert [line[:4] for line in printed[-2:]] == ["[0] ", "[1] "]
    out = pipe(batch_size=2, gen_length=10, num_inference_steps=3, output_type="seq")
    assert out.sequences.shape == (2, 10)

    main(["sample", str(tmp_path / "run"), "--num_samples", "1", "--num_inference_steps", "3", "--solver", "ddim"])
    assert capsys.readouterr().out.splitlines()[-1].startswith("[0] ")
    with pytest.raises(SystemExit, match="--gamma does not apply"):
        main(["sample", str(tmp_path / "run"), "--gamma", "1.5"])


def test_stage_two_killed_and_resumed_continues_with_the_same_losses(autoencoder_dir, tmp_path, monkeypatch):
    train(diffusion_config(tmp_path / "a", autoencoder_dir))

    run_b = diffusion_config(tmp_path / "b", autoencoder_dir, save_steps=2)
    train_killed_after_first_checkpoint(run_b, monkeypatch)
    run_b.resume_from_checkpoint = "latest"
    train(run_b)

    assert log_of(tmp_path / "b") == log_of(tmp_path / "a")
    weights_a = load_file(tmp_path / "a" / "model" / "model.safetensors")
    weights_b = load_file(tmp_path / "b" / "model" / "model.safetensors")
    for name in weights_a:
        torch.testing.assert_close(weights_b[name], weights_a[name], rtol=0, atol=1e-6)


def test_stage_two_without_an_autoencoder_is_refused_with_the_flag_to_use(tmp_path):
    with pytest.raises(ValueError, match="--autoencoder"):
        train(diffusion_config(tmp_path / "run", None, autoencoder=None))


def test_an_autoencoder_path_that_is_not_one_is_refused_by_name(tmp_path):
    with pytest.raises(ValueError, match="autoencoder"):
        train(diffusion_config(tmp_path / "run", tmp_path / "missing"))


def test_stage_two_trains_a_conditional_model_on_paired_data_with_cached_activations(autoencoder_dir, tmp_path):
    """Sources are read by cross-attention; the cache keeps each dataset's own conditions (its key covers them)."""
    pairs = tmp_path / "pairs.jsonl"
    lines = [{"source": f"word {i}", "target": f"the meaning of word number {i}"} for i in range(24)]
    pairs.write_text("".join(json.dumps(line) + "\n" for line in lines))
    paired = dict(dataset=str(pairs), source_column="source", target_column="target", max_source_length=8,
                  max_train_samples=None, max_eval_samples=None, model={**TINY_DENOISER, "conditional": True})  # fmt: skip
    train(diffusion_config(tmp_path / "run", autoencoder_dir, **paired))

    pipe = CosmosLMPipeline.from_pretrained(tmp_path / "run")
    assert pipe.model.is_conditional

    def sample(sources):
        return pipe(source=sources, num_inference_steps=3, generator=torch.Generator().manual_seed(0))

    out = sample(["word 3", "word 7"])
    assert len(out.texts) == 2 and out.sequences.shape[0] == 2
    assert not torch.allclose(out.latents[0], sample(["a different source", "word 7"]).latents[0])
