"""The whole story, as a user tells it: train a tiny base -> push it -> load it by repo id -> LoRA fine-tune it on
paired texts -> push the adapter -> load the base by id and the adapter with `load_lora_weights` -> sample.

The Hub is faked (tests/fake_hub.py): uploads are captured by a substitute `HfApi` and published into a temporary
Hub cache, and every load goes through the libraries' real resolution code with HF_HUB_OFFLINE=1.
"""

import json
import random

import torch
from datasets import Dataset
from huggingface_hub import ModelCard

from conftest import WORDS
from fake_hub import allow_uploads, install_fake_hub
from latentlm import ELFPipeline
from latentlm.cli import main
from latentlm.training import TrainingConfig, list_checkpoints, train


TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, bottleneck_dim=16, decoder_head_dim=16)
COMMON = dict(seq_len=16, packing=False, per_device_train_batch_size=4, per_device_eval_batch_size=4,
              eval_batches=1, report_to="none", seed=0)  # fmt: skip


def prose(n, seed=0):
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 12))) for _ in range(n)]


def paired(n, seed=1):
    """A paired task in one sequence (the conditioning interface is another issue): a phrase, then its reverse."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        words = [rng.choice(WORDS) for _ in range(3)]
        rows.append({"text": " ".join(words) + " and " + " ".join(reversed(words))})
    return Dataset.from_list(rows)


def test_train_push_load_by_id_lora_push_adapter_load_and_sample(tmp_path, monkeypatch):
    allow_uploads(monkeypatch)
    hub = install_fake_hub(monkeypatch, tmp_path)

    # 1. A tiny base, trained from Python on a list of texts, pushed with `latentlm push`.
    base_dir = tmp_path / "elf-base"
    train(TrainingConfig(method="elf", model=TINY, dataset=prose(24), max_steps=1, output_dir=str(base_dir), **COMMON))
    main(["push", str(base_dir), "me/elf-base"])
    hub.publish()

    # 2. Loaded by repo id, from the cache.
    base = ELFPipeline.from_pretrained("me/elf-base")
    assert base.model.config.hidden_size == 32

    # 3. A LoRA fine-tune of the Hub id on a datasets.Dataset of paired texts.
    run = tmp_path / "elf-pairs"
    config = TrainingConfig(
        method="elf",
        init_from="me/elf-base",
        dataset=paired(24),
        lora={"r": 4, "target_modules": ["qkv", "out_proj"]},
        learning_rate=3e-3,
        max_steps=2,
        save_steps=1,
        output_dir=str(run),
        **COMMON,
    )
    train(config)
    adapter_config = json.loads((run / "adapter" / "adapter_config.json").read_text())
    assert adapter_config["base_model_name_or_path"] == "me/elf-base"  # the Hub id, not the cache path
    adapter_bytes = (run / "adapter" / "adapter_model.safetensors").stat().st_size
    base_bytes = (base_dir / "model" / "model.safetensors").stat().st_size
    checkpoint_model = [f for f in list_checkpoints(run)[-1].rglob("*.safetensors")]
    assert [f.name for f in checkpoint_model] == ["adapter_model.safetensors"]  # no full weights
    assert checkpoint_model[0].stat().st_size == adapter_bytes < base_bytes / 20

    # 4. The adapter alone, pushed; its card names the base model.
    main(["push", str(run), "me/elf-pairs-lora", "--adapter-only"])
    uploaded = hub.uploads[-1][2]
    assert sorted(p.name for p in uploaded.iterdir()) == [
        "README.md",
        "adapter_config.json",
        "adapter_model.safetensors",
    ]
    card = ModelCard.load(uploaded / "README.md")
    assert card.data.base_model == "me/elf-base" and card.data.library_name == "latentlm"
    assert {"lora", "elf"} <= set(card.data.tags) and card.data.datasets is None
    assert 'load_lora_weights("me/elf-pairs-lora"' in card.text and "| Optimizer steps | 2 |" in card.text
    hub.publish()

    # 5. The base by id + the adapter by id, sampled; the same as the run's merged export.
    pipe = ELFPipeline.from_pretrained("me/elf-base")
    pipe.load_lora_weights("me/elf-pairs-lora", adapter_name="pairs")
    merged = ELFPipeline.from_pretrained(run)
    for p in (pipe, merged):
        p.set_progress_bar_config(disable=True)
    generate = dict(batch_size=2, gen_length=12, num_inference_steps=4)
    out = pipe(generator=torch.Generator().manual_seed(0), **generate)
    assert len(out.texts) == 2 and all(isinstance(text, str) for text in out.texts)
    expected = merged(generator=torch.Generator().manual_seed(0), output_type="latent", **generate).latents
    torch.testing.assert_close(out.latents, expected, atol=1e-4, rtol=0)
