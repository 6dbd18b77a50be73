"""Reconstruction accuracy of Cosmos autoencoders under latent noise, and ``latentlm reconstruct``."""

import json
import shutil
import sys

import pytest
import torch
import torch.nn.functional as F
from transformers import BertConfig, BertModel

from conftest import NO_AUGMENTATION, TINY_COSMOS_AE, WORDS, EmbeddingEncoder, build_tiny_tokenizer
from latentlm import CosmosLMAutoencoder, CosmosLMAutoencoderConfig
from latentlm.cli import main
from latentlm.evaluation import reconstruction_accuracy
from latentlm.evaluation.reconstruction import augmentation_settings, run_reconstruction


def tiny_autoencoder(seed=0, fit_latents=True, **overrides) -> CosmosLMAutoencoder:
    torch.manual_seed(seed)
    autoencoder = CosmosLMAutoencoder(CosmosLMAutoencoderConfig(**{**TINY_COSMOS_AE, **overrides}))
    autoencoder.set_text_encoder(EmbeddingEncoder())
    autoencoder.fit_activation_statistics([{"input_ids": torch.randint(5, 40, (8, 12))}])
    if fit_latents:
        autoencoder.fit_latent_statistics([{"input_ids": torch.randint(5, 40, (8, 12))}])
    return autoencoder


def batches(num=2, batch=4, seq_len=12, seed=1):
    generator = torch.Generator().manual_seed(seed)
    return [{"input_ids": torch.randint(5, 40, (batch, seq_len), generator=generator)} for _ in range(num)]


def test_accuracy_equals_a_hand_count_over_real_tokens_only():
    autoencoder = tiny_autoencoder()
    input_ids = torch.randint(5, 40, (2, 8))  # shorter than the 12 slots decode returns
    mask = torch.tensor([[1] * 8, [1] * 5 + [0] * 3])
    predicted = input_ids.clone()
    predicted[1, 5:] = 0  # padding: wrong, but not counted
    predicted[0, :3] = 1  # three real tokens wrong
    slots = torch.cat([predicted, torch.zeros(2, 4, dtype=torch.long)], dim=1)
    autoencoder.decode = lambda latents: F.one_hot(slots, 40).float()
    accuracy = reconstruction_accuracy(autoencoder, [{"input_ids": input_ids, "attention_mask": mask}], [0.0, 3.0])
    assert accuracy == {0.0: 10 / 13, 3.0: 10 / 13}  # 13 real tokens, 3 wrong; the fake decode ignores the noise

    predicted[0, :3] = input_ids[0, :3]
    slots[:, :8] = predicted
    assert reconstruction_accuracy(autoencoder, [{"input_ids": input_ids, "attention_mask": mask}]) == {0.0: 1.0}


def test_noise_lowers_the_accuracy_of_a_trained_autoencoder_and_the_training_mode_is_restored():
    autoencoder = tiny_autoencoder(fit_latents=False, **NO_AUGMENTATION)
    data = batches(num=1, batch=8)
    optimizer = torch.optim.Adam(autoencoder.parameters(), lr=1e-2)
    autoencoder.train()
    for _ in range(60):
        loss = autoencoder(**data[0]).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    autoencoder.fit_latent_statistics(data)
    accuracy = reconstruction_accuracy(autoencoder, data, [0.0, 1.0, 100.0])
    assert list(accuracy) == [0.0, 1.0, 100.0]
    assert accuracy[0.0] > 0.5 and accuracy[100.0] < accuracy[0.0] - 0.3
    assert autoencoder.training  # restored


def test_noise_is_seeded_and_the_same_for_every_autoencoder_of_the_same_shape():
    def noise_seen(autoencoder, seed):
        decoded = []
        decode = autoencoder.decode
        autoencoder.decode = lambda latents: (decoded.append(latents), decode(latents))[1]
        accuracy = reconstruction_accuracy(autoencoder, batches(), [0.0, 2.0], seed=seed)
        clean, noisy = decoded[0::2], decoded[1::2]  # per batch: level 0, then level 2
        normalize = autoencoder.normalize_latents
        return accuracy, [(normalize(n) - normalize(c)) / 2 for c, n in zip(clean, noisy)]

    first, second = tiny_autoencoder(seed=0), tiny_autoencoder(seed=1)
    accuracy, noise = noise_seen(first, seed=0)
    again, same = noise_seen(first, seed=0)
    assert accuracy == again and all(torch.equal(a, b) for a, b in zip(noise, same))
    _, other_model = noise_seen(second, seed=0)
    assert all(torch.allclose(a, b, atol=1e-4) for a, b in zip(noise, other_model))
    _, other_seed = noise_seen(first, seed=1)
    assert not torch.allclose(noise[0], other_seed[0])
    assert not torch.allclose(noise[0], noise[1])  # a fresh draw per batch


def test_errors_say_what_to_do():
    with pytest.raises(ValueError, match="latent statistics are not fitted.*fit_latent_statistics"):
        reconstruction_accuracy(tiny_autoencoder(fit_latents=False), batches())
    with pytest.raises(ValueError, match="non-negative"):
        reconstruction_accuracy(tiny_autoencoder(), batches(), [0.0, -1.0])
    with pytest.raises(ValueError, match="no real tokens"):
        reconstruction_accuracy(tiny_autoencoder(), [])


def test_augmentation_settings_read_the_config():
    assert augmentation_settings(CosmosLMAutoencoderConfig(**TINY_COSMOS_AE))["augmented"]
    assert not augmentation_settings(CosmosLMAutoencoderConfig(**TINY_COSMOS_AE, **NO_AUGMENTATION))["augmented"]
    assert augmentation_settings(
        CosmosLMAutoencoderConfig(**TINY_COSMOS_AE, **{**NO_AUGMENTATION, "latent_dropout": 0.1})
    )["augmented"]


# ---------------------------------------------------------------------------------------------------------- CLI


@pytest.fixture
def saved_autoencoders(tmp_path):
    """Two tiny autoencoders (augmented, without latent statistics; not augmented, with them) over a tiny saved BERT
    encoder, each saved with the tiny tokenizer; a tiny corpus with train and test splits."""
    tokenizer = build_tiny_tokenizer()
    torch.manual_seed(0)
    encoder = BertModel(BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                   intermediate_size=32, max_position_embeddings=16))  # fmt: skip
    encoder.save_pretrained(tmp_path / "encoder")
    fit = [{"input_ids": torch.randint(5, len(tokenizer), (4, 12))}]
    for name, overrides, fit_latents in (("aug", {}, False), ("plain", NO_AUGMENTATION, True)):
        autoencoder = tiny_autoencoder(fit_latents=False, encoder_name_or_path=str(tmp_path / "encoder"), **overrides)
        autoencoder.set_text_encoder(encoder)
        autoencoder.fit_activation_statistics(fit)
        if fit_latents:
            autoencoder.fit_latent_statistics(fit)
        autoencoder.save_pretrained(tmp_path / name)
        tokenizer.save_pretrained(tmp_path / name)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for split, count in (("train", 30), ("test", 12)):
        lines = [" ".join(WORDS[(i + j) % len(WORDS)] for j in range(9)) for i in range(count)]
        (corpus / f"{split}.jsonl").write_text("".join(json.dumps({"text": line}) + "\n" for line in lines))
    return tmp_path


def test_cli_writes_json_markdown_and_plot(saved_autoencoders, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LATENTLM_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "out"
    argv = ["reconstruct", "--autoencoder", f"aug={saved_autoencoders / 'aug'}", "--autoencoder",
            f"plain={saved_autoencoders / 'plain'}", "--dataset", str(saved_autoencoders / "corpus"),
            "--num-sequences", "6", "--noise-levels", "0", "0.5", "50", "--fit-batches", "2", "--batch-size", "4",
            "--out-dir", str(out)]  # fmt: skip
    monkeypatch.setattr(sys, "argv", ["latentlm", *argv])
    main(argv)

    record = json.loads((out / "reconstruction.json").read_text())
    assert record["settings"]["noise_levels"] == [0.0, 0.5, 50.0] and record["settings"]["split"] == "test"
    assert record["machine"]["platform"]
    aug, plain = record["autoencoders"]["aug"], record["autoencoders"]["plain"]
    for row in (aug, plain):
        assert set(row["accuracy"]) == {"0", "0.5", "50"}
        assert all(0.0 <= value <= 1.0 for value in row["accuracy"].values())
        assert row["num_sequences"] == 6 and row["num_tokens"] == 6 * 12 and row["split"] == "test"
        assert row["num_latents"] == 3 and row["compression_ratio"] == 4.0 and row["seed"] == 0
    assert aug["augmentation"]["augmented"] and not plain["augmentation"]["augmented"]
    assert aug["latent_statistics"].startswith("fitted on 8 train sequences")
    assert plain["latent_statistics"] == "saved with the model"

    markdown = (out / "reconstruction.md").read_text()
    assert "latentlm " + " ".join(argv) in markdown
    assert f"| aug | 3 | 4 | yes | 72 | {aug['accuracy']['0']:.4f} |" in markdown
    assert (out / "reconstruction.png").stat().st_size > 1000
    assert "| plain | 3 | 4 | no | 72 |" in capsys.readouterr().out


def test_an_autoencoder_is_measured_on_the_sequences_it_was_trained_on(saved_autoencoders, tmp_path, monkeypatch):
    monkeypatch.setenv("LATENTLM_CACHE", str(tmp_path / "cache"))
    shutil.copytree(saved_autoencoders / "plain", saved_autoencoders / "filled")
    (saved_autoencoders / "plain" / "training_config.yaml").write_text("method: cosmos-autoencoder\nframing: true\n")
    (saved_autoencoders / "filled" / "training_config.yaml").write_text(
        "method: cosmos-autoencoder\nframing: true\nfill_frames: true\n"
    )
    results = run_reconstruction(
        {"framed": saved_autoencoders / "plain", "filled": saved_autoencoders / "filled",
         "packed": saved_autoencoders / "aug"},
        dataset=str(saved_autoencoders / "corpus"), num_sequences=6, noise_levels=[0], fit_batches=2, batch_size=4,
        out_dir=tmp_path / "out",
    )  # fmt: skip
    framed, filled, packed = (results["autoencoders"][name] for name in ("framed", "filled", "packed"))
    assert framed["framing"] and not framed["fill_frames"] and filled["framing"] and filled["fill_frames"]
    assert not packed["framing"] and not packed["fill_frames"]
    # one 9-word line per sequence, closed by the tokenizer's end-of-document [SEP], padded to 12: 10 real tokens;
    # filled frames continue with the next line's words instead of padding
    assert framed["num_tokens"] == 6 * 10 and packed["num_tokens"] == 6 * 12
    assert filled["num_tokens"] > framed["num_tokens"]


def test_a_checkpoint_is_measured_on_the_sequences_of_its_run(tmp_path):
    """`RUN/checkpoints/checkpoint-N/model` holds no run config: the layout is the run's (its training_config.yaml)."""
    from latentlm.training.config import trained_sequence_layout

    model = tmp_path / "run" / "checkpoints" / "checkpoint-400" / "model"
    model.mkdir(parents=True)
    assert trained_sequence_layout(model) == (False, False)  # no config anywhere: packed, as older runs
    (tmp_path / "run" / "training_config.yaml").write_text(
        "method: cosmos-autoencoder\nframing: true\nfill_frames: true\n"
    )
    assert trained_sequence_layout(model) == (True, True)
    assert trained_sequence_layout(tmp_path / "run") == (True, True)
