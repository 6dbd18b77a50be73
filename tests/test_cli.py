"""The `latentlm` command."""

import json
import runpy
import sys

import pytest
from transformers import LlamaForCausalLM

from conftest import WORDS, build_tiny_tokenizer
from latentlm.cli import main


@pytest.fixture
def config_file(tmp_path):
    tokenizer_dir = tmp_path / "tokenizer"
    build_tiny_tokenizer().save_pretrained(tokenizer_dir)
    data_file = tmp_path / "data.txt"
    data_file.write_text("\n".join([" ".join(WORDS[i : i + 7]) for i in range(14)] * 3) + "\n")
    path = tmp_path / "tiny.yaml"
    path.write_text(
        f"method: ar\nmodel:\n  hidden_size: 64\n  intermediate_size: 64\n  num_hidden_layers: 1\n"
        f"  num_attention_heads: 2\ntokenizer_name_or_path: {tokenizer_dir}\ndataset: {data_file}\n"
        "seq_len: 16\nvalidation_split: 0.2\nper_device_train_batch_size: 4\nper_device_eval_batch_size: 4\n"
        "eval_batches: 1\nlogging_steps: 1\nreport_to: none\nmax_steps: 1000\noutput_dir: unused\n"
    )
    return path


def test_train_end_to_end_with_overrides(config_file, tmp_path):
    out = tmp_path / "run"
    main(["train", str(config_file), "--output_dir", str(out), "--max_steps", "2", "--model.hidden_size=32"])

    assert LlamaForCausalLM.from_pretrained(out).config.hidden_size == 32
    assert (out / "checkpoints" / "checkpoint-2" / "model" / "model.safetensors").is_file()
    assert [json.loads(line)["step"] for line in (out / "train_log.jsonl").read_text().splitlines()] == [1, 2, 2]
    assert "max_steps: 2\n" in (out / "training_config.yaml").read_text()


def test_train_reports_config_errors(config_file, tmp_path):
    with pytest.raises(SystemExit, match="Unknown training config key 'max_step'"):
        main(["train", str(config_file), "--output_dir", str(tmp_path), "--max_step", "2"])
    with pytest.raises(SystemExit, match="`max_steps` must be positive"):
        main(["train", str(config_file), "--max_steps", "0"])


def test_usage_errors_exit_with_status_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([])
    assert exit_info.value.code == 2
    with pytest.raises(SystemExit) as exit_info:
        main(["train"])
    assert exit_info.value.code == 2 and "config" in capsys.readouterr().err


@pytest.mark.filterwarnings("ignore:'latentlm.cli' found in sys.modules:RuntimeWarning")
def test_runs_as_a_module(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["latentlm", "train", "--help"])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_module("latentlm.cli", run_name="__main__")  # what `python -m latentlm.cli` does
    assert exit_info.value.code == 0 and "--model.hidden_size" in capsys.readouterr().out
