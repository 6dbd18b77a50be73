"""`push_to_hub` on pipelines, models and autoencoders, and `latentlm push`: captured uploads that load back by repo id
from a Hub cache in the snapshot layout, with HF_HUB_OFFLINE=1."""

import pytest
import torch
from huggingface_hub import ModelCard

from fake_hub import allow_uploads, install_fake_hub
from latentlm import AutoModelForTextDiffusion, AutoPipelineForTextGeneration, CosmosLMAutoencoder, ELFPipeline
from latentlm.cli import main
from latentlm.hub import base_model_of, is_hub_dataset_id, model_card
from test_pipeline_cosmos import make_pipeline as make_cosmos_pipeline
from test_pipeline_elf import make_pipeline as make_elf_pipeline


@pytest.fixture
def hub(monkeypatch, tmp_path):
    allow_uploads(monkeypatch)
    return install_fake_hub(monkeypatch, tmp_path)


def sample(pipe):
    pipe.set_progress_bar_config(disable=True)
    return pipe(batch_size=2, gen_length=8, num_inference_steps=2, generator=torch.Generator().manual_seed(0),
                output_type="latent").latents  # fmt: skip


def test_pipeline_push_to_hub_uploads_once_and_loads_back_by_repo_id(tiny_tokenizer, hub):
    pipe = make_elf_pipeline(tiny_tokenizer)
    pipe.push_to_hub("me/elf-tiny", private=True, revision="v1", commit_message="first")

    create, branch, upload = hub.calls
    assert create == ("create_repo", "me/elf-tiny", {"private": True, "exist_ok": True, "repo_type": "model"})
    assert branch == ("create_branch", "me/elf-tiny", "v1")
    assert upload[1] == "me/elf-tiny" and upload[2]["revision"] == "v1" and upload[2]["commit_message"] == "first"
    hub.publish()

    loaded = AutoPipelineForTextGeneration.from_pretrained("me/elf-tiny", revision="v1")  # offline, from the cache
    assert isinstance(loaded, ELFPipeline)
    torch.testing.assert_close(sample(loaded), sample(pipe))
    card = ModelCard.load(hub.uploads[-1][2] / "README.md")
    assert card.data.library_name == "latentlm" and card.data.pipeline_tag == "text-generation"
    assert card.data.tags[:3] == ["latentlm", "text-diffusion", "elf"]
    assert 'AutoPipelineForTextGeneration.from_pretrained("me/elf-tiny")' in card.text


def test_model_and_autoencoder_push_to_hub_write_their_own_cards(tiny_tokenizer, hub):
    cosmos = make_cosmos_pipeline(tiny_tokenizer)
    elf = make_elf_pipeline(tiny_tokenizer).model
    elf.push_to_hub("me/elf-model")
    cosmos.autoencoder.push_to_hub("me/cosmos-ae")

    elf_card = ModelCard.load(hub.uploads[0][2] / "README.md")
    assert elf_card.data.library_name == "latentlm" and elf_card.data.pipeline_tag == "text-generation"
    assert 'AutoModelForTextDiffusion.from_pretrained("me/elf-model")' in elf_card.text
    ae_card = ModelCard.load(hub.uploads[1][2] / "README.md")
    assert ae_card.data.library_name == "latentlm" and ae_card.data.pipeline_tag == "feature-extraction"
    assert "text-autoencoder" in ae_card.data.tags and "text-diffusion" not in ae_card.data.tags

    for index in (0, 1):
        hub.publish(index)
    model = AutoModelForTextDiffusion.from_pretrained("me/elf-model")
    assert model.dtype == torch.float32
    torch.testing.assert_close(model.state_dict(), elf.state_dict())
    autoencoder = CosmosLMAutoencoder.from_pretrained("me/cosmos-ae")
    torch.testing.assert_close(autoencoder.latent_std, cosmos.autoencoder.latent_std)


def test_push_refuses_offline_before_saving_anything(tiny_tokenizer, monkeypatch, tmp_path):
    from huggingface_hub.errors import OfflineModeIsEnabled

    hub = install_fake_hub(monkeypatch, tmp_path)  # uploads not allowed: HF_HUB_OFFLINE=1 in the tests
    with pytest.raises(OfflineModeIsEnabled, match="HF_HUB_OFFLINE"):
        make_elf_pipeline(tiny_tokenizer).push_to_hub("me/x")
    assert hub.calls == []


def test_latentlm_push_cli_uploads_a_saved_pipeline(tiny_tokenizer, hub, tmp_path, capsys):
    make_elf_pipeline(tiny_tokenizer).save_pretrained(tmp_path / "run")
    (tmp_path / "run" / "checkpoints").mkdir()
    (tmp_path / "run" / "checkpoints" / "optimizer.bin").write_bytes(b"x")
    main(["push", str(tmp_path / "run"), "me/run", "--private"])

    assert hub.calls[0][2]["private"] is True
    uploaded = hub.uploads[-1][2]
    assert (uploaded / "model_index.json").is_file() and not (uploaded / "checkpoints").exists()
    assert ModelCard.load(uploaded / "README.md").data.library_name == "latentlm"
    assert "commit" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="holds no LoRA adapter"):
        main(["push", str(tmp_path / "run"), "me/run", "--adapter-only"])


def test_card_metadata_is_hub_valid():
    assert not is_hub_dataset_id("english-prose") and not is_hub_dataset_id("text")
    assert is_hub_dataset_id("Salesforce/wikitext") and not is_hub_dataset_id("/data/x.txt")
    assert base_model_of("user/elf-base") == "user/elf-base"
    assert base_model_of("pretrained:elf-tiny-prose") is None and base_model_of(None) is None

    card = model_card(
        model_name="ft",
        method="elf",
        base_info={},
        datasets=["english-prose", "user/headlines"],
        base_model="user/elf-base",
    )
    assert card.data.datasets == ["user/headlines"] and card.data.base_model == "user/elf-base"
    adapter = model_card(model_name="ft-lora", method="elf", base_info={}, base_model="user/elf-base", adapter=True)
    assert {"lora", "peft"} <= set(adapter.data.tags)
    assert 'from_pretrained("user/elf-base")' in adapter.text and 'load_lora_weights("ft-lora"' in adapter.text
    local = model_card(model_name="x", method="elf", base_info={}, base_model="../base/model")
    assert local.data.base_model is None  # not a Hub id
