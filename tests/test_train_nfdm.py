"""NFDM end to end: trained by the shared loop on a slice of a real corpus, resumed exactly after a crash, exported as
a pipeline, sampled and scored (``latentlm likelihood``) from the command line; the AR peer scored the same way."""

import json
import math

import pytest
import torch
from safetensors.torch import load_file

from conftest import train_killed_after_first_checkpoint
from latentlm import NFDMPipeline
from latentlm.cli import main
from latentlm.evaluation.likelihood import causal_lm_bits_per_token, run_likelihood
from latentlm.training import load_config, train


TINY = dict(
    latent_dim=16, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, forward_hidden_size=16,
    forward_num_layers=1, forward_num_heads=2,
)  # fmt: skip


def nfdm_config(output_dir, **overrides):
    values = dict(
        method="nfdm",
        model=dict(TINY),
        dataset="english-prose",
        seq_len=16,
        max_train_samples=64,
        max_eval_samples=8,
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


def test_nfdm_trains_exports_a_pipeline_samples_and_reports_its_bound_from_the_cli(tmp_path, capsys):
    result = train(nfdm_config(tmp_path / "run"))
    assert result.step == 4 and math.isfinite(result.eval_loss)
    logged = [r for r in log_of(tmp_path / "run") if "loss" in r]
    assert {"elbo_bits_per_token", "reconstruction_loss", "diffusion_loss", "prior_loss"} <= logged[0].keys()

    pipe = NFDMPipeline.from_pretrained(tmp_path / "run")
    assert len(pipe.tokenizer) == pipe.model.config.vocab_size == 30522
    for solver in ("sde", "ancestral"):
        main(["sample", str(tmp_path / "run"), "--num_samples", "2", "--gen_length", "8", "--num_inference_steps", "2",
              "--solver", solver])  # fmt: skip
        printed = capsys.readouterr().out.splitlines()
        assert [line[:4] for line in printed[-2:]] == ["[0] ", "[1] "]
    with pytest.raises(SystemExit, match="`solver` must be one of"):
        main(["sample", str(tmp_path / "run"), "--solver", "ddim"])

    out_file = tmp_path / "likelihood.json"
    args = ["likelihood", str(tmp_path / "run"), "--corpus", "english-prose", "--num-sequences", "4"]
    main([*args, "--num-draws", "2", "--batch-size", "2", "--output", str(out_file)])
    assert "bits/token" in capsys.readouterr().out
    scored = json.loads(out_file.read_text())
    assert scored["kind"] == "elbo" and scored["num_tokens"] == 4 * 16 and scored["seq_len"] == 16
    assert math.isfinite(scored["bits_per_token"]) and scored["standard_error"] > 0


def test_nfdm_run_killed_and_resumed_continues_with_the_same_losses(tmp_path, monkeypatch):
    train(nfdm_config(tmp_path / "a"))

    run_b = nfdm_config(tmp_path / "b", save_steps=2)
    train_killed_after_first_checkpoint(run_b, monkeypatch)
    run_b.resume_from_checkpoint = "latest"
    train(run_b)

    assert log_of(tmp_path / "b") == log_of(tmp_path / "a")
    weights_a = load_file(tmp_path / "a" / "model" / "model.safetensors")
    weights_b = load_file(tmp_path / "b" / "model" / "model.safetensors")
    assert "time_sampler.logits" in weights_a and "forward_process.proj_out.weight" in weights_a
    for name in weights_a:
        torch.testing.assert_close(weights_b[name], weights_a[name], rtol=0, atol=1e-6)


def test_a_causal_lm_gets_its_exact_nll_on_the_same_blocks(tmp_path, tiny_tokenizer):
    from datasets import Dataset, DatasetDict
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tiny_tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=8)  # fmt: skip
    model = LlamaForCausalLM(config).eval()
    model.save_pretrained(tmp_path / "ar")
    tiny_tokenizer.save_pretrained(tmp_path / "ar")
    texts = ["the cat sat on the mat and the dog ran in the park", "a big red bird sang in the small tree"] * 4
    corpus = DatasetDict(test=Dataset.from_dict({"text": texts}))

    result = run_likelihood(tmp_path / "ar", dataset=corpus, num_sequences=3, batch_size=2)
    assert result.kind == "nll" and result.standard_error is None and result.seq_len == 8
    assert result.num_sequences == 3 and result.num_tokens == 3 * 7  # the first token of a block is context only

    from latentlm.evaluation.likelihood import held_out_blocks

    blocks = held_out_blocks(tiny_tokenizer, corpus, "test", 8, 3)
    ids = torch.stack([torch.as_tensor(row["input_ids"]) for row in blocks])
    with torch.no_grad():
        logp = torch.log_softmax(model(ids).logits[:, :-1].double(), -1).gather(-1, ids[:, 1:, None])
    torch.testing.assert_close(result.bits_per_token, -logp.mean().item() / math.log(2), rtol=1e-5, atol=0)
    assert causal_lm_bits_per_token(model, blocks, batch_size=3)[0] == pytest.approx(result.bits_per_token)


def test_likelihood_names_what_it_cannot_score(tmp_path):
    with pytest.raises(SystemExit, match="neither a saved pipeline nor a causal LM"):
        main(["likelihood", str(tmp_path)])
