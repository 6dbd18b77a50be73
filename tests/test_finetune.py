"""Training from Python and from any starting point: in-memory datasets, `init_from` forms, LoRA checkpoints that
hold the adapter only."""

import dataclasses
import json
import random

import pytest
import torch
import yaml
from datasets import Dataset, DatasetDict

import latentlm
from conftest import WORDS
from latentlm import ELFPipeline
from latentlm.training import TrainingConfig, list_checkpoints, train
from latentlm.training.sources import portable_reference, resolve_init_from
from test_training import TINY_LLAMA, corpus  # noqa: F401  (`corpus` is a fixture)


ELF_MODEL = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, bottleneck_dim=16, decoder_head_dim=16)


def texts(n=48, seed=0):
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 12))) for _ in range(n)]


def ar_config(corpus, output_dir, **overrides):  # noqa: F811
    values = dict(
        method="ar",
        model=dict(TINY_LLAMA),
        tokenizer_name_or_path=corpus["tokenizer_name_or_path"],
        dataset=texts(),
        seq_len=16,
        per_device_train_batch_size=4,
        per_device_eval_batch_size=4,
        max_steps=2,
        eval_batches=1,
        report_to="none",
        output_dir=str(output_dir),
    )
    return TrainingConfig(**{**values, **overrides})


def elf_config(output_dir, **overrides):
    values = dict(
        method="elf",
        model=dict(ELF_MODEL),
        dataset=texts(64),
        seq_len=16,
        packing=False,
        per_device_train_batch_size=4,
        per_device_eval_batch_size=4,
        learning_rate=3e-3,
        max_steps=3,
        eval_batches=1,
        report_to="none",
        seed=0,
        output_dir=str(output_dir),
    )
    return TrainingConfig(**{**values, **overrides})


@pytest.mark.parametrize("kind", ["list", "generator", "Dataset", "DatasetDict"])
def test_train_accepts_python_datasets(corpus, tmp_path, kind):  # noqa: F811
    lines = texts()
    dataset = {
        "list": lines,
        "generator": (line for line in lines),
        "Dataset": Dataset.from_dict({"text": lines}),
        "DatasetDict": DatasetDict(
            train=Dataset.from_dict({"text": lines[:40]}), validation=Dataset.from_dict({"text": lines[40:]})
        ),
    }[kind]
    result = train(ar_config(corpus, tmp_path / kind, dataset=dataset))
    assert result.step == 2 and torch.isfinite(torch.tensor(result.eval_loss))
    saved = yaml.safe_load((tmp_path / kind / "training_config.yaml").read_text())
    assert saved["dataset"].startswith("in-memory")  # described, not dumped


def test_bad_python_datasets_are_refused_with_the_argument_named(corpus, tmp_path):  # noqa: F811
    with pytest.raises(ValueError, match="`dataset` given as an iterable must hold texts"):
        ar_config(corpus, tmp_path, dataset=[1, 2])
    with pytest.raises(ValueError, match="`dataset` must be a corpus name"):
        ar_config(corpus, tmp_path, dataset=3)
    with pytest.raises(ValueError, match="`text_column`='body'"):
        train(ar_config(corpus, tmp_path / "x", dataset=Dataset.from_dict({"text": texts()}), text_column="body"))
    with pytest.raises(ValueError, match="`lora` fine-tunes a pretrained model: set `init_from`"):
        train(ar_config(corpus, tmp_path / "lora", lora={"r": 2}))


def test_init_from_resolves_pipelines_models_bundled_names_and_refuses_others(tmp_path):
    bundled = resolve_init_from("pretrained:elf-tiny-prose")
    assert bundled.is_pipeline and (bundled.model_dir / "config.json").is_file()
    assert bundled.component("tokenizer") is not None and bundled.base_model is None
    model = resolve_init_from(str(bundled.model_dir))
    assert not model.is_pipeline and model.model_dir == bundled.model_dir
    assert portable_reference(bundled.model_dir, tmp_path) == "pretrained:elf-tiny-prose"
    assert portable_reference(tmp_path / "base" / "model", tmp_path / "run" / "adapter") is None  # missing
    (tmp_path / "base").mkdir()
    assert portable_reference(tmp_path / "base", tmp_path / "run" / "adapter") == "../../base"
    assert portable_reference("user/elf-base", tmp_path) == "user/elf-base"

    with pytest.raises(ValueError, match="bundled models"):
        resolve_init_from("pretrained:nope")
    with pytest.raises(ValueError, match="neither file"):
        resolve_init_from(str(tmp_path))
    with pytest.raises(ValueError, match="not a Hub repository that could be fetched"):
        resolve_init_from("nobody/nothing-here")  # offline and not cached


def test_lora_fine_tune_from_a_pipeline_folder_keeps_only_the_adapter(tmp_path):
    base = train(elf_config(tmp_path / "base", max_steps=2))
    run = tmp_path / "lora"
    # the attention projections and the interface layers (input bottleneck, self-conditioning, output, head), one
    # at its own rank: what examples/configs/elf-verses-lora.yaml adapts
    targets = ["qkv", "out_proj", "input_proj.0", "input_proj.1", "self_cond_proj", "proj_out", "dense"]
    lora = {"r": 2, "target_modules": targets, "rank_pattern": {"out_proj": 4}, "alpha_pattern": {"out_proj": 8}}
    config = elf_config(run, init_from=str(base.output_dir), lora=lora, save_steps=1)
    result = train(config)

    # The adapter alone: PEFT layout, base named relative to the adapter folder, no full weights in checkpoints.
    adapter = run / "adapter"
    adapter_config = json.loads((adapter / "adapter_config.json").read_text())
    assert adapter_config["base_model_name_or_path"] == "../../base/model"
    assert set(adapter_config["target_modules"]) == set(targets) and adapter_config["rank_pattern"] == {"out_proj": 4}
    assert not (adapter / "README.md").exists()
    adapter_bytes = (adapter / "adapter_model.safetensors").stat().st_size
    checkpoint = list_checkpoints(run)[-1]
    assert (
        not (checkpoint / "model.safetensors").exists() and not (checkpoint / "model" / "model.safetensors").exists()
    )
    model_bytes = sum(f.stat().st_size for f in (checkpoint / "model").iterdir() if f.suffix == ".safetensors")
    assert model_bytes == adapter_bytes
    base_bytes = (base.output_dir / "model" / "model.safetensors").stat().st_size
    assert adapter_bytes < base_bytes / 20

    # The base pipeline + load_lora_weights samples what the merged export samples.
    merged = ELFPipeline.from_pretrained(run)
    pipe = ELFPipeline.from_pretrained(base.output_dir)
    pipe.load_lora_weights(adapter, adapter_name="ft")
    for p in (merged, pipe):
        p.set_progress_bar_config(disable=True)
    generate = dict(batch_size=2, gen_length=8, num_inference_steps=3, output_type="latent")
    expected = merged(generator=torch.Generator().manual_seed(0), **generate).latents
    got = pipe(generator=torch.Generator().manual_seed(0), **generate).latents
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=0)

    # Resuming rebuilds the base from init_from and the adapter from the checkpoint.
    resumed = train(dataclasses.replace(config, resume_from_checkpoint="latest", max_steps=result.step + 1))
    assert resumed.step == result.step + 1
    log = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "loss" in r] == [result.step, result.step + 1]  # logged at the ends


def test_init_from_the_bundled_model_by_name_uses_its_tokenizer(tmp_path):
    config = elf_config(tmp_path / "run", init_from="pretrained:elf-tiny-prose", model={}, max_steps=1, seq_len=16)
    config.lora = {"r": 2, "target_modules": ["qkv"]}
    result = train(config)
    adapter_config = json.loads((result.output_dir / "adapter" / "adapter_config.json").read_text())
    assert adapter_config["base_model_name_or_path"] == "pretrained:elf-tiny-prose"
    pipe = ELFPipeline.from_pretrained(latentlm.pretrained_path("elf-tiny-prose"))
    pipe.load_lora_weights(result.output_dir / "adapter")
    assert pipe.get_active_adapters() == ["default_0"]
