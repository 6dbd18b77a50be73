"""Model cards and Hub uploads: offline round trips, recorded Hub calls, and the card of a training export."""

import pytest
from huggingface_hub import HfApi, ModelCard, constants
from huggingface_hub.errors import OfflineModeIsEnabled
from transformers import LlamaConfig, LlamaForCausalLM

import latentlm
from latentlm.hub import (
    card_from_folder,
    model_card,
    model_summary,
    push_to_hub,
    save_model_card,
    training_summary,
)
from latentlm.training import load_config, train
from test_training import TINY_LLAMA, corpus, tiny_config  # noqa: F401  (`corpus` is a fixture)


TRAINING = {"dataset": "english-prose", "max_steps": 100, "batch_size": 8, "seq_len": 32, "tokens": 25_600}


def elf_card(**overrides):
    values = dict(
        model_name="elf-test",
        method="elf",
        base_info={"num_parameters": 1_234_567, "hidden_size": 32, "num_hidden_layers": 2},
        training={**TRAINING, "mixed_precision": "bf16", "eval_loss": 1.23456},
        evaluation="| steps | gen. PPL |\n|---|---|\n| 32 | 123.4 |",
        datasets=["english-prose"],
        tags=["lora"],
    )
    return model_card(**{**values, **overrides})


def test_card_round_trips_with_metadata_usage_and_summaries(tmp_path):
    elf_card(repo_id="me/elf-test").save(tmp_path / "README.md")
    card = ModelCard.load(tmp_path / "README.md")

    assert card.data.library_name == "latentlm" and card.data.pipeline_tag == "text-generation"
    assert card.data.tags == ["latentlm", "text-diffusion", "elf", "lora"]
    assert card.data.datasets is None  # a latentlm corpus, not a Hub dataset id
    assert card.data.license == "apache-2.0"
    assert card.data.model_name == "elf-test"
    assert card.text.lstrip().startswith("# elf-test\n")
    assert 'latentlm.AutoPipelineForTextGeneration.from_pretrained("me/elf-test")' in card.text
    assert "| Parameters | 1.23M (1,234,567) |" in card.text and "| Layers | 2 |" in card.text
    assert "| Tokens seen | 25,600 |" in card.text and "| Mixed precision | bf16 |" in card.text
    assert "| Final eval loss | 1.2346 |" in card.text
    assert "## Evaluation\n\n| steps | gen. PPL |" in card.text


def test_ar_card_uses_transformers_generate_and_optional_sections_are_left_out():
    card = model_card(model_name="ar-test", method="ar", base_info={"hidden_size": 32}, license="mit")

    assert card.data.tags == ["latentlm", "causal-lm", "ar"] and card.data.license == "mit"
    assert card.data.library_name == "transformers" and card.data.datasets is None
    assert 'AutoModelForCausalLM.from_pretrained("ar-test")' in card.text and "model.generate(" in card.text
    assert "AutoPipelineForTextGeneration" not in card.text
    assert "## Training" not in card.text and "## Evaluation" not in card.text


def test_save_model_card_writes_readme(tmp_path):
    card = save_model_card(tmp_path, model_name="x", method="elf", base_info={})
    assert ModelCard.load(tmp_path / "README.md").data == card.data
    with pytest.raises(ValueError, match="not a directory"):
        save_model_card(tmp_path / "missing", model_name="x", method="elf", base_info={})


def test_training_summary_counts_the_global_batch_and_tokens(tmp_path):
    config = load_config(
        None,
        {"method": "ar", "output_dir": str(tmp_path), "per_device_train_batch_size": 4, "seq_len": 16},
    )
    config.gradient_accumulation_steps, config.max_steps, config.dataset = 3, 10, str(tmp_path / "data.txt")
    summary = training_summary(config, num_processes=2, eval_loss=2.5)

    assert summary["batch_size"] == 4 * 2 * 3 and summary["tokens"] == 10 * 24 * 16
    assert summary["mixed_precision"] == "no" and summary["eval_loss"] == 2.5
    assert summary["dataset"] == "data.txt"  # local paths are not written into cards
    assert "ema_decay" not in summary and "lora" not in summary


def test_card_from_the_bundled_pipeline_folder_reads_config_and_weights_headers():
    card = card_from_folder(latentlm.pretrained_path("elf-tiny-prose"), repo_id="me/elf")
    assert card.data.tags == ["latentlm", "text-diffusion", "elf"]
    assert "| Architecture | ELFForFlowMatching |" in card.text and "| Parameters | 11.03M" in card.text
    assert "| Frozen encoder | sentence-transformers/all-MiniLM-L6-v2 |" in card.text
    assert 'AutoPipelineForTextGeneration.from_pretrained("me/elf")' in card.text


def record_hub_calls(monkeypatch) -> list:
    """Records HfApi.create_repo / upload_folder instead of calling the Hub, and lifts offline mode."""
    from huggingface_hub import RepoUrl

    calls = []

    def create_repo(self, repo_id, **kwargs):
        calls.append(("create_repo", repo_id, kwargs))
        return RepoUrl(f"https://huggingface.co/{repo_id}")

    def upload_folder(self, **kwargs):
        calls.append(("upload_folder", kwargs))
        return "commit-info"

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    return calls


@pytest.fixture
def hub_calls(monkeypatch):
    return record_hub_calls(monkeypatch)


def save_tiny_llama(folder):
    LlamaForCausalLM(LlamaConfig(vocab_size=40, **TINY_LLAMA)).save_pretrained(folder)


def test_push_to_hub_creates_the_repo_and_uploads_the_folder_with_a_card(tmp_path, hub_calls):
    folder = tmp_path / "my-model"
    save_tiny_llama(folder)

    assert push_to_hub(folder, "me/my-model", private=True, commit_message="first") == "commit-info"

    (_, repo_id, create_kwargs), (_, upload_kwargs) = hub_calls
    assert repo_id == "me/my-model" and create_kwargs == {"private": True, "exist_ok": True, "repo_type": "model"}
    assert upload_kwargs["repo_id"] == "me/my-model" and upload_kwargs["folder_path"] == str(folder)
    assert upload_kwargs["commit_message"] == "first" and "checkpoints/" in upload_kwargs["ignore_patterns"]
    card = ModelCard.load(folder / "README.md")  # written before the upload
    assert card.data.library_name == "transformers" and "ar" in card.data.tags
    assert 'AutoModelForCausalLM.from_pretrained("me/my-model")' in card.text


def test_push_to_hub_points_an_existing_card_at_the_repo_and_keeps_foreign_cards(tmp_path, hub_calls):
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    for folder in (ours, theirs):
        save_tiny_llama(folder)
    save_model_card(ours, model_name="ours", method="ar", base_info={}, evaluation="custom notes")
    (theirs / "README.md").write_text('---\nlibrary_name: transformers\n---\nfrom_pretrained("theirs")\n')

    push_to_hub(ours, "me/ours")
    push_to_hub(theirs, "me/theirs", ignore_patterns=[])

    text = (ours / "README.md").read_text()
    assert 'from_pretrained("me/ours")' in text and 'from_pretrained("ours")' not in text and "custom notes" in text
    assert (theirs / "README.md").read_text().endswith('from_pretrained("theirs")\n')
    assert hub_calls[-1][1]["ignore_patterns"] is None


def test_push_to_hub_offline_fails_before_any_hub_call(tmp_path, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("the Hub was called")

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(HfApi, "create_repo", no_network)
    monkeypatch.setattr(HfApi, "upload_folder", no_network)
    save_tiny_llama(tmp_path)
    with pytest.raises(OfflineModeIsEnabled, match="HF_HUB_OFFLINE"):
        push_to_hub(tmp_path, "me/x")
    assert not (tmp_path / "README.md").exists()
    with pytest.raises(ValueError, match="no saved pipeline"):
        push_to_hub(tmp_path / "missing", "me/x")


def test_training_export_has_a_model_card(corpus, tmp_path, monkeypatch):  # noqa: F811
    out = tmp_path / "run"
    result = train(tiny_config(corpus, out, max_steps=2, gradient_accumulation_steps=2))

    card = ModelCard.load(out / "README.md")
    assert card.data.library_name == "transformers" and card.data.pipeline_tag == "text-generation"
    assert card.data.tags == ["latentlm", "causal-lm", "ar"] and card.data.datasets is None  # a local file
    assert card.data.model_name == "run" and 'AutoModelForCausalLM.from_pretrained("run")' in card.text
    assert "| Architecture | LlamaForCausalLM |" in card.text and "| Hidden size | 32 |" in card.text
    assert "| Batch (sequences per step) | 8 |" in card.text and "| Tokens seen | 256 |" in card.text
    assert f"| Final eval loss | {result.eval_loss:.4f} |" in card.text
    assert str(tmp_path) not in card.text  # no local paths
    expected = model_summary(LlamaForCausalLM.from_pretrained(out))["num_parameters"]
    assert f"({expected:,})" in card.text

    # without a card, `push_to_hub` rebuilds one from the folder: config, safetensors headers, training config, log
    (out / "README.md").unlink()
    record_hub_calls(monkeypatch)
    push_to_hub(out, "me/run")
    rebuilt = ModelCard.load(out / "README.md")
    assert rebuilt.data.tags == card.data.tags and f"({expected:,})" in rebuilt.text
    assert (
        "| Optimizer steps | 2 |" in rebuilt.text and f"| Final eval loss | {result.eval_loss:.4f} |" in rebuilt.text
    )
