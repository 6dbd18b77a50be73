"""The training loop, its config, EMA and checkpoints, on a tiny Llama ("ar") and a tiny in-test corpus."""

import json
import random
from pathlib import Path

import pytest
import torch
from datasets import Dataset
from safetensors.torch import load_file
from transformers import LlamaConfig, LlamaForCausalLM

from conftest import WORDS, build_tiny_tokenizer, train_killed_after_first_checkpoint
from latentlm.models.registry import get_method
from latentlm.training import (
    EMA,
    TrainingConfig,
    list_checkpoints,
    load_config,
    parse_overrides,
    resolve_checkpoint,
    save_checkpoint,
    train,
)
from latentlm.training.builders import build_model, eval_subset


TINY_LLAMA = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2}


@pytest.fixture
def corpus(tmp_path) -> dict:
    """A saved WordLevel tokenizer and 60 lines of text; returns the config entries pointing at them."""
    tokenizer_dir = tmp_path / "tokenizer"
    build_tiny_tokenizer().save_pretrained(tokenizer_dir)
    rng = random.Random(0)
    lines = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 12))) for _ in range(60)]
    data_file = tmp_path / "data.txt"
    data_file.write_text("\n".join(lines) + "\n")
    return {"tokenizer_name_or_path": str(tokenizer_dir), "dataset": str(data_file)}


def tiny_config(corpus: dict, output_dir: Path, **overrides) -> TrainingConfig:
    values = {
        "method": "ar",
        "model": dict(TINY_LLAMA),
        "seq_len": 16,
        "validation_split": 0.2,
        "per_device_train_batch_size": 4,
        "per_device_eval_batch_size": 4,
        "learning_rate": 1e-2,
        "logging_steps": 1,
        "eval_batches": 2,
        "report_to": "none",
        "output_dir": str(output_dir),
        **corpus,
    }
    return load_config(None, {**values, **overrides})


def read_log(output_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (output_dir / "train_log.jsonl").read_text().splitlines()]


def train_losses(output_dir: Path) -> dict[int, float]:
    return {record["step"]: record["loss"] for record in read_log(output_dir) if "loss" in record}


# ----------------------------------------------------------------------------------------------------------------------
# The loop
# ----------------------------------------------------------------------------------------------------------------------


def test_train_writes_checkpoints_export_and_logs_and_learns(corpus, tmp_path):
    lines = ["the cat sat on the mat", "a big dog ran in the park", "the red bird sang", "a small house"]
    Path(corpus["dataset"]).write_text("\n".join(lines * 15) + "\n")
    out = tmp_path / "run"
    settings = {"max_steps": 20, "save_steps": 5, "save_total_limit": 2, "eval_steps": 10, "ema_decay": 0.9}
    config = tiny_config(corpus, out, warmup_steps=2, report_to="tensorboard", **settings)

    result = train(config)

    assert result.step == 20 and result.checkpoint == out / "checkpoints" / "checkpoint-20"
    # rotation keeps the newest `save_total_limit` checkpoints; each is a loadable model plus the training state
    assert [p.name for p in list_checkpoints(out)] == ["checkpoint-15", "checkpoint-20"]
    checkpoint_files = {p.name for p in result.checkpoint.iterdir()}
    assert {"model", "optimizer.bin", "scheduler.bin", "random_states_0.pkl", "train_state.json", "manifest.json"} <= (
        checkpoint_files
    )
    assert {"ema.safetensors", "ema.json"} <= checkpoint_files  # the EMA, no pickle of latentlm's own
    assert not any(name.startswith("custom_checkpoint") for name in checkpoint_files)
    assert LlamaForCausalLM.from_pretrained(result.checkpoint / "model").config.hidden_size == 32
    # the export: safetensors model + tokenizer, the resolved config, TensorBoard events
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {p.name for p in out.iterdir()}
    assert not list(out.glob("*.bin")) and not list(out.glob("*.pt"))
    assert load_config(out / "training_config.yaml").to_dict() == config.to_dict()
    assert list((out / "logs").rglob("events.out.tfevents.*"))
    # the log: one training line per step, evaluations at steps 10 and 20, the EMA evaluation at the end
    log = read_log(out)
    losses = train_losses(out)
    assert sorted(losses) == list(range(1, 21))
    assert {"lr", "grad_norm"} <= set(log[0])
    assert [r["step"] for r in log if "eval_loss" in r] == [10, 20]
    assert log[-1]["step"] == 20 and log[-1]["ema_eval_loss"] == pytest.approx(result.eval_loss)
    # it learns the repeated sentences
    assert sum(losses[s] for s in (18, 19, 20)) / 3 < losses[1] - 1.0
    exported = LlamaForCausalLM.from_pretrained(out)
    raw = LlamaForCausalLM.from_pretrained(result.checkpoint / "model")
    assert not torch.equal(exported.model.norm.weight, raw.model.norm.weight)  # the export holds the EMA weights


@pytest.mark.parametrize("optimizer", ["adamw", "muon"])
def test_resume_continues_exactly_like_an_uninterrupted_run(corpus, tmp_path, monkeypatch, optimizer):
    # dropout, gradient accumulation, a cosine schedule, EMA and the optimizer's state (AdamW's, or Muon's momentum
    # with AdamW's moments) all depend on restored state; 6 steps of 2 micro-batches cross the end of the first
    # epoch (7 batches) and the kill happens mid-epoch
    settings = {
        "optimizer": optimizer,
        "max_steps": 6,
        "gradient_accumulation_steps": 2,
        "lr_scheduler_type": "cosine",
        "warmup_steps": 2,
        "ema_decay": 0.9,
        "eval_steps": 2,
        "model": {**TINY_LLAMA, "attention_dropout": 0.1},
    }
    train(tiny_config(corpus, tmp_path / "a", **settings))

    run_b = tiny_config(corpus, tmp_path / "b", save_steps=3, **settings)
    train_killed_after_first_checkpoint(run_b, monkeypatch)
    assert [p.name for p in list_checkpoints(tmp_path / "b")] == ["checkpoint-3"]
    with (tmp_path / "b" / "train_log.jsonl").open("a") as log:  # the killed run went on a little
        log.write('{"step": 4, "loss": 1.0, "lr": 0.1}\n{"step": 5, "lo')
    partial = tmp_path / "b" / "checkpoints" / ".checkpoint-5.partial"  # a later save that crashed half-way
    partial.mkdir()
    (partial / "optimizer.bin").write_bytes(b"trunc")

    run_b.resume_from_checkpoint = "latest"
    result = train(run_b)

    assert result.step == 6 and not partial.exists()
    assert read_log(tmp_path / "b") == read_log(tmp_path / "a")  # losses of steps 4-6, eval losses, EMA evaluation
    weights_a, weights_b = (
        load_file(tmp_path / "a" / "model.safetensors"),
        load_file(tmp_path / "b" / "model.safetensors"),
    )
    assert weights_a.keys() == weights_b.keys()
    for name in weights_a:
        torch.testing.assert_close(weights_b[name], weights_a[name], rtol=0, atol=1e-6)


def test_lora_fine_tuning_trains_only_the_adapters(corpus, tmp_path):
    tokenizer = build_tiny_tokenizer()
    base_dir = tmp_path / "base"
    LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), **TINY_LLAMA)).save_pretrained(base_dir)
    out = tmp_path / "lora"
    lora = {"r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj"]}
    train(tiny_config(corpus, out, init_from=str(base_dir), lora=lora, max_steps=2, learning_rate=5e-2))

    assert (out / "adapter" / "adapter_model.safetensors").is_file()
    assert {"adapter_config.json", "config.json"} <= {
        p.name for p in (out / "checkpoints" / "checkpoint-2" / "model").iterdir()
    }
    base, tuned = load_file(base_dir / "model.safetensors"), load_file(out / "model.safetensors")  # merged export
    changed = {name for name in base if not torch.equal(base[name], tuned[name])}
    assert changed == {"model.layers.0.self_attn.q_proj.weight", "model.layers.0.self_attn.v_proj.weight"}


def test_unknown_model_key_is_rejected(corpus, tmp_path):
    config = tiny_config(corpus, tmp_path, model={**TINY_LLAMA, "hiden_size": 64})
    with pytest.raises(ValueError, match="hiden_size.*Valid keys:.*hidden_size"):
        build_model(get_method("ar"), config, build_tiny_tokenizer())


def test_model_config_takes_vocab_and_special_tokens_from_the_tokenizer(corpus, tmp_path):
    tokenizer = build_tiny_tokenizer()
    model = build_model(get_method("ar"), tiny_config(corpus, tmp_path, framing=True), tokenizer)
    # a BERT-like tokenizer: cls and sep stand for bos and eos
    assert model.config.vocab_size == len(tokenizer) and model.config.max_position_embeddings == 16
    assert (model.config.pad_token_id, model.config.bos_token_id, model.config.eos_token_id) == (0, 2, 3)


def test_an_ar_model_on_packed_documents_starts_texts_after_the_end_of_document_id(corpus, tmp_path):
    # Packed documents carry no [CLS]: every one follows the previous one's [SEP], so a sample must start there, not
    # from a token the model never saw (its unconditional samples were noise: benchmarks/ldlm-ablation/vs-elf).
    tokenizer = build_tiny_tokenizer()
    model = build_model(get_method("ar"), tiny_config(corpus, tmp_path), tokenizer)
    assert (model.config.bos_token_id, model.config.eos_token_id) == (3, 3)
    assert model.generation_config.bos_token_id == 3


# ----------------------------------------------------------------------------------------------------------------------
# Checkpoints
# ----------------------------------------------------------------------------------------------------------------------


class FakeAccelerator:
    """Single-process stand-in for `save_checkpoint`: `save_state` writes a minimal checkpoint, or dies half-way."""

    is_main_process = True
    crash = False

    def wait_for_everyone(self):
        pass

    def save_state(self, path):
        (Path(path) / "model").mkdir(parents=True)
        (Path(path) / "model" / "config.json").write_text("{}")
        if self.crash:
            raise RuntimeError("killed mid-save")
        (Path(path) / "optimizer.bin").write_bytes(b"state")


def test_save_checkpoint_rotates_and_a_crash_mid_save_keeps_the_previous_ones(tmp_path):
    accelerator = FakeAccelerator()
    for step in (1, 2, 3):
        save_checkpoint(accelerator, tmp_path, step, total_limit=2)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["checkpoint-2", "checkpoint-3"]

    accelerator.crash = True
    with pytest.raises(RuntimeError, match="mid-save"):
        save_checkpoint(accelerator, tmp_path, 4, total_limit=2)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["checkpoint-2", "checkpoint-3"]
    assert resolve_checkpoint(tmp_path, "latest") == tmp_path / "checkpoints" / "checkpoint-3"
    assert (tmp_path / "checkpoints" / "checkpoint-3" / "optimizer.bin").is_file()

    accelerator.crash = False
    save_checkpoint(accelerator, tmp_path, 3, total_limit=None)  # the same step saved again replaces it
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["checkpoint-2", "checkpoint-3"]


def test_resolve_checkpoint(tmp_path):
    assert resolve_checkpoint(tmp_path, None) is None
    assert resolve_checkpoint(tmp_path, "latest") is None  # nothing to resume: a new run
    save_checkpoint(FakeAccelerator(), tmp_path, 7, total_limit=None)
    with pytest.raises(ValueError, match="already holds checkpoints"):
        resolve_checkpoint(tmp_path, None)
    assert resolve_checkpoint(tmp_path, str(tmp_path / "checkpoints" / "checkpoint-7")).name == "checkpoint-7"
    with pytest.raises(ValueError, match="resume_from_checkpoint"):
        resolve_checkpoint(tmp_path, str(tmp_path / "nowhere"))


# ----------------------------------------------------------------------------------------------------------------------
# EMA
# ----------------------------------------------------------------------------------------------------------------------


def test_ema_follows_the_trainable_parameters_with_warmup():
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.LayerNorm(2))
    model[1].requires_grad_(False)
    ema = EMA(model, decay=0.99)
    assert set(ema.shadow) == {"0.weight", "0.bias"}
    start = model[0].weight.detach().clone()

    with torch.no_grad():
        model[0].weight.add_(1.0)
    ema.update(model)  # first update: decay min(0.99, 1 / 10) = 0.1
    torch.testing.assert_close(ema.shadow["0.weight"], start + 0.9)
    assert ema.current_decay() == pytest.approx(2 / 11)

    restored = EMA(model, decay=0.5)
    restored.load_state_dict(ema.state_dict())
    assert restored.num_updates == 1 and restored.decay == 0.99
    restored.copy_to(model)
    torch.testing.assert_close(model[0].weight, start + 0.9)
    with pytest.raises(ValueError, match="do(es)? not match"):
        EMA(torch.nn.Linear(2, 3, bias=False), 0.9).load_state_dict(ema.state_dict())


# ----------------------------------------------------------------------------------------------------------------------
# Config
# ----------------------------------------------------------------------------------------------------------------------


def write_yaml(tmp_path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_load_config_from_yaml_and_overrides(tmp_path):
    path = write_yaml(
        tmp_path,
        "method: ar\nmodel:\n  hidden_size: 32\n  rms_norm_eps: 1e-5\nlearning_rate: 1e-3\nmixed_precision: no\n"
        "output_dir: runs/x\n",
    )
    overrides = ["--max_steps", "100", "--model.num_hidden_layers=2", "--lora.r", "8", "--gradient_checkpointing"]
    overrides += ["--data_files", "[a.txt, b.txt]", "--save_total_limit", "null", "--adam_beta1", "0.8"]
    config = load_config(path, overrides)

    assert config.method == "ar" and config.max_steps == 100 and config.output_dir == "runs/x"
    assert config.model == {"hidden_size": 32, "rms_norm_eps": 1e-5, "num_hidden_layers": 2}
    assert config.lora == {"r": 8} and config.gradient_checkpointing is True
    assert config.learning_rate == 1e-3 and config.adam_beta1 == 0.8  # "1e-3" is a string to PyYAML
    assert config.mixed_precision == "no"  # an unquoted `no` is False to PyYAML
    assert config.data_files == ["a.txt", "b.txt"] and config.save_total_limit is None

    config.save(tmp_path / "saved.yaml")
    assert load_config(tmp_path / "saved.yaml") == config


def test_parse_overrides():
    assert parse_overrides(["--a", "1", "--b=x", "--c", "--d", "-0.5", "--e-f", "1e-4"]) == {
        "a": 1,
        "b": "x",
        "c": True,
        "d": -0.5,
        "e_f": 1e-4,  # a string to PyYAML
    }
    with pytest.raises(ValueError, match="max_steps"):
        parse_overrides(["max_steps", "3"])


@pytest.mark.parametrize(
    ("values", "match"),
    [
        ({"max_step": 3}, r"Unknown training config key 'max_step'\. Valid keys: .*max_steps"),
        ({"max_steps": 0}, "`max_steps` must be positive"),
        ({"per_device_train_batch_size": -1}, "`per_device_train_batch_size` must be positive"),
        ({"save_steps": 0}, "`save_steps` must be positive"),
        ({"max_steps": "ten"}, "`max_steps` must be int"),
        ({"packing": "yes please"}, "`packing` must be bool"),
        ({"method": "nope"}, "`method` must be one of"),
        ({"mixed_precision": "fp8"}, "`mixed_precision` must be one of"),
        ({"report_to": "wandb"}, "`report_to` must be one of"),
        ({"lr_scheduler_type": "reduce_lr_on_plateau"}, "`lr_scheduler_type` must be one of"),
        ({"ema_decay": 1.0}, r"`ema_decay` must be in \[0, 1\)"),
        ({"output_dir": None}, "`output_dir` is required"),
        ({"seq_len.x": 1}, "`seq_len` must be int"),
        ({"model.hidden_size.x": 1}, "`model.hidden_size` is not a mapping"),
    ],
)
def test_invalid_config_values_name_the_field(values, match):
    with pytest.raises(ValueError, match=match):
        load_config(None, {"method": "ar", "output_dir": "runs/x", "model": {"hidden_size": 8}, **values})


def test_example_ar_config_is_valid():
    config = load_config(Path(__file__).parents[1] / "examples" / "configs" / "ar-tiny.yaml")
    assert config.method == "ar" and config.mixed_precision == "no"
    model = build_model(get_method("ar"), config, build_tiny_tokenizer())
    assert (model.config.hidden_size, model.config.num_hidden_layers, model.config.intermediate_size) == (256, 4, 704)
    assert model.config.tie_word_embeddings and model.config.max_position_embeddings == config.seq_len


def test_logged_means_skip_values_a_batch_did_not_measure():
    from accelerate import Accelerator

    from latentlm.training.metrics_log import RunningMean

    running = RunningMean()
    running.add({"loss": torch.tensor(1.0), "decode_loss": torch.tensor(4.0)})
    running.add({"loss": torch.tensor(3.0), "decode_loss": torch.tensor(float("nan"))})  # no decode rows
    running.add({"loss": torch.tensor(2.0), "unmeasured": torch.tensor(float("nan"))})
    assert running.pop(Accelerator(cpu=True)) == {"loss": 2.0, "decode_loss": 4.0}
    assert running.pop(Accelerator(cpu=True)) == {}


def test_evaluation_reads_batches_spread_over_the_whole_validation_split():
    config = TrainingConfig(method="ar", output_dir="unused", eval_batches=2, per_device_eval_batch_size=3)
    validation = eval_subset(config, Dataset.from_dict({"row": list(range(60))}))
    assert validation["row"] == [0, 10, 20, 30, 40, 50]  # not the first six rows
    assert len(eval_subset(config, Dataset.from_dict({"row": [0, 1, 2]}))) == 3  # a short split: all
