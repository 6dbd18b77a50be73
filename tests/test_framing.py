"""Framed examples (`tokenize_and_chunk(framing=True)`): ``[CLS] chunk [SEP] [PAD]...`` for frozen BERT-family
encoders, as the official Cosmos code feeds them; the default of ELF and Cosmos runs."""

import pytest
import torch
from datasets import Dataset
from tokenizers.processors import TemplateProcessing

import latentlm.training.builders as builders
from conftest import build_tiny_tokenizer
from latentlm import AutoPipelineForTextGeneration
from latentlm.data import add_encoder_activations, frame_tokens, tokenize_and_chunk
from latentlm.training import load_config, train


PAD, CLS, SEP = 0, 2, 3


def bert_like_tokenizer():
    """The tiny WordLevel tokenizer with BERT's template: ``[CLS] $A [SEP]``."""
    tokenizer = build_tiny_tokenizer()
    tokenizer.backend_tokenizer.post_processor = TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", CLS), ("[SEP]", SEP)]
    )
    return tokenizer


def column(dataset, name):
    return [row[name].tolist() for row in dataset]


def ids_of(tokenizer, text):
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def test_frame_tokens_follow_the_tokenizer_template():
    assert frame_tokens(bert_like_tokenizer()) == ([CLS], [SEP])
    assert frame_tokens(build_tiny_tokenizer()) == ([], [])  # no template: nothing around the text


def test_framed_examples_split_documents_into_cls_chunk_sep_and_masked_padding():
    tokenizer = bert_like_tokenizer()
    short, long = "the cat sat", "a big dog ran in the park and sang"  # 3 and 9 words; 4 fit in a frame of 6
    out = tokenize_and_chunk(Dataset.from_dict({"text": [short, "", long]}), tokenizer, seq_len=6, framing=True)
    w = ids_of(tokenizer, long)
    assert column(out, "input_ids") == [
        [CLS, *ids_of(tokenizer, short), SEP, PAD],
        [CLS, *w[0:4], SEP],
        [CLS, *w[4:8], SEP],
        [CLS, w[8], SEP, PAD, PAD, PAD],
    ]  # the empty document gives nothing
    assert column(out, "attention_mask") == [[1] * 5 + [0], [1] * 6, [1] * 6, [1] * 3 + [0] * 3]

    first_chunks = tokenize_and_chunk(
        Dataset.from_dict({"text": [short, long]}), tokenizer, seq_len=6, framing=True, packing=False
    )
    assert column(first_chunks, "input_ids") == [[CLS, *ids_of(tokenizer, short), SEP, PAD], [CLS, *w[0:4], SEP]]


def test_filled_frames_pack_several_documents_each_closed_by_sep():
    tokenizer = bert_like_tokenizer()
    a, b, c = "the cat sat", "a dog ran", "the park"  # 3, 3 and 2 words; 4 fit in a frame of 6
    out = tokenize_and_chunk(
        Dataset.from_dict({"text": [a, "", b, c]}), tokenizer, seq_len=6, framing=True, fill_frames=True
    )
    stream = [*ids_of(tokenizer, a), SEP, *ids_of(tokenizer, b), SEP, *ids_of(tokenizer, c), SEP]  # 11 tokens
    assert column(out, "input_ids") == [
        [CLS, *stream[0:4], SEP],
        [CLS, *stream[4:8], SEP],
        [CLS, *stream[8:11], SEP, PAD],
    ]  # the empty document adds no separator; only the last frame is padded
    assert column(out, "attention_mask") == [[1] * 6, [1] * 6, [1] * 5 + [0]]


def test_filled_frames_need_framed_packed_examples():
    data = Dataset.from_dict({"text": ["the cat"]})
    with pytest.raises(ValueError, match="`fill_frames=True`.*framing=False"):
        tokenize_and_chunk(data, bert_like_tokenizer(), seq_len=6, fill_frames=True)
    with pytest.raises(ValueError, match="`fill_frames=True`.*packing=False"):
        tokenize_and_chunk(data, bert_like_tokenizer(), seq_len=6, framing=True, packing=False, fill_frames=True)
    with pytest.raises(ValueError, match="`fill_frames`.*framing=False"):
        load_config(None, {"method": "elf", "output_dir": "runs/x", "framing": False, "fill_frames": True})
    assert load_config(None, {"method": "elf", "output_dir": "runs/x", "fill_frames": True}).fill_frames is True


def test_a_tokenizer_without_a_closing_token_ends_frames_with_the_end_of_document_id():
    tokenizer = build_tiny_tokenizer()  # adds no special tokens; its end-of-document id is [SEP]
    out = tokenize_and_chunk(Dataset.from_dict({"text": ["the cat sat"]}), tokenizer, seq_len=5, framing=True)
    assert column(out, "input_ids") == [[*ids_of(tokenizer, "the cat sat"), SEP, PAD]]


def test_framing_needs_room_for_text():
    with pytest.raises(ValueError, match="`seq_len`=2 leaves no room"):
        tokenize_and_chunk(Dataset.from_dict({"text": ["the cat"]}), bert_like_tokenizer(), seq_len=2, framing=True)


def test_the_activation_cache_tells_framed_from_packed_data(tmp_path):
    tokenizer = bert_like_tokenizer()
    texts = Dataset.from_dict({"text": ["the cat sat on the mat", "a dog ran"]})
    masks_seen = []

    def encode(input_ids, attention_mask):
        masks_seen.append(attention_mask)
        return input_ids[..., None].float().expand(-1, -1, 4)

    cached = {}
    for framing in (False, True):
        data = tokenize_and_chunk(texts, tokenizer, seq_len=8, framing=framing).with_format(None)
        cached[framing] = add_encoder_activations(data, encode, encoder_key="fake", cache_dir=tmp_path)
    files = {framing: {f["filename"] for f in ds.cache_files} for framing, ds in cached.items()}
    assert files[True] and files[True].isdisjoint(files[False])  # two cache files, one per framing
    assert int(torch.as_tensor(cached[True]["encoder_activations"][0])[0, 0]) == CLS
    assert any((mask == 0).any() for mask in masks_seen)  # the encoder is told where the padding is


def test_the_activation_cache_keeps_the_other_columns_of_paired_data_apart(tmp_path):
    """Two datasets with the same targets but other sources (or none) must not share a cache file: it stores every
    column, so a shared file would hand one dataset the other's conditions."""
    rows = {"input_ids": [[5, 6, 7, 2]], "attention_mask": [[1, 1, 1, 1]]}

    def encode(input_ids, attention_mask):
        return input_ids[..., None].float().expand(-1, -1, 4)

    variants = {
        "unpaired": Dataset.from_dict(rows),
        "source a": Dataset.from_dict({**rows, "condition_input_ids": [[8, 9]]}),
        "source b": Dataset.from_dict({**rows, "condition_input_ids": [[9, 8]]}),
    }
    cached = {name: add_encoder_activations(data, encode, encoder_key="fake", cache_dir=tmp_path)
              for name, data in variants.items()}  # fmt: skip
    files = [next(iter(ds.cache_files))["filename"] for ds in cached.values()]
    assert len(set(files)) == 3
    assert cached["source b"]["condition_input_ids"][0].tolist() == [9, 8]
    assert "condition_input_ids" not in cached["unpaired"].column_names


@pytest.mark.parametrize(
    ("method", "framed"),
    [("elf", True), ("cosmos", True), ("cosmos-autoencoder", True), ("ar", False), ("ldlm", False)],
)
def test_framing_defaults_to_on_for_the_methods_with_a_frozen_bert_encoder(method, framed):
    assert load_config(None, {"method": method, "output_dir": "runs/x"}).framing is framed
    assert load_config(None, {"method": method, "output_dir": "runs/x", "framing": False}).framing is False


def test_framing_is_rejected_for_paired_data_and_non_booleans():
    paired = {"method": "elf", "output_dir": "runs/x", "source_column": "source", "target_column": "target"}
    assert load_config(None, paired).framing is None
    with pytest.raises(ValueError, match="`framing`"):
        load_config(None, {**paired, "framing": True})
    with pytest.raises(ValueError, match="`framing` must be bool"):
        load_config(None, {"method": "elf", "output_dir": "runs/x", "framing": "framed"})


def _record_batches(monkeypatch):
    batches, collate = [], builders.collate

    def recording(examples):
        batch = collate(examples)
        batches.append(batch)
        return batch

    monkeypatch.setattr(builders, "collate", recording)
    return batches


TINY_RUN = dict(dataset="english-prose", seq_len=32, max_train_samples=16, max_eval_samples=4, max_steps=2,
                per_device_train_batch_size=4, per_device_eval_batch_size=4, eval_batches=1, logging_steps=1,
                report_to="none", seed=0)  # fmt: skip


def _check_framed(batches):
    batch = batches[0]
    assert (batch["input_ids"][:, 0] == 101).all()  # MiniLM's [CLS]
    assert ((batch["input_ids"] == 102).sum(dim=1) == 1).all()  # one [SEP] per row
    padding = batch["attention_mask"] == 0
    assert (batch["input_ids"][padding] == 0).all() and (batch["labels"][padding] == -100).all()


def test_elf_trains_on_framed_windows_and_samples_clean_text(tmp_path, monkeypatch):
    batches = _record_batches(monkeypatch)
    model = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, bottleneck_dim=16, decoder_head_dim=16)
    result = train(load_config(None, {**TINY_RUN, "method": "elf", "model": model, "output_dir": str(tmp_path)}))
    assert torch.isfinite(torch.tensor(result.eval_loss))
    _check_framed(batches)
    out = AutoPipelineForTextGeneration.from_pretrained(tmp_path)(
        batch_size=2, gen_length=32, num_inference_steps=2, generator=torch.Generator().manual_seed(0)
    )
    assert not any(token in text for text in out.texts for token in ("[CLS]", "[SEP]", "[PAD]"))


def test_elf_trains_on_frames_filled_with_short_documents(tmp_path, monkeypatch):
    batches = _record_batches(monkeypatch)
    glosses = Dataset.from_dict({"text": [f"a short gloss number {i} of a few words" for i in range(200)]})
    model = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, bottleneck_dim=16, decoder_head_dim=16)
    config = {**TINY_RUN, "dataset": glosses, "fill_frames": True, "method": "elf", "model": model,
              "output_dir": str(tmp_path)}  # fmt: skip
    train(load_config(None, config))
    batch = batches[0]
    assert (batch["input_ids"][:, 0] == 101).all()  # one [CLS] opens each row
    assert ((batch["input_ids"] == 102).sum(dim=1) >= 3).all()  # several glosses per row, each closed by [SEP]
    assert batch["attention_mask"].all()  # no padding


def test_the_cosmos_autoencoder_trains_on_framed_windows(tmp_path, monkeypatch):
    batches = _record_batches(monkeypatch)
    model = dict(num_latents=4, latent_dim=8, hidden_size=32, num_attention_heads=2, num_compressor_layers=1,
                 num_decompressor_layers=1, lm_head_dim=16)  # fmt: skip
    config = {**TINY_RUN, "method": "cosmos-autoencoder", "model": model, "output_dir": str(tmp_path)}
    result = train(load_config(None, config))
    assert torch.isfinite(torch.tensor(result.eval_loss))
    _check_framed(batches)


@pytest.mark.parametrize("autoencoder_framing", [True, False])
def test_a_cosmos_diffusion_run_reads_its_autoencoders_framing(tmp_path, autoencoder_framing):
    autoencoder = tmp_path / "autoencoder"
    autoencoder.mkdir()
    (autoencoder / "training_config.yaml").write_text(f"method: cosmos-autoencoder\nframing: {autoencoder_framing}\n")
    config = {"method": "cosmos", "autoencoder": str(autoencoder), "output_dir": str(tmp_path / "run")}
    assert load_config(None, config).framing is autoencoder_framing  # unset: the autoencoder's
    with pytest.raises(ValueError, match="`framing`: the autoencoder"):
        load_config(None, {**config, "framing": not autoencoder_framing})


def test_a_cosmos_diffusion_run_refuses_other_frames_than_its_autoencoders(tmp_path):
    autoencoder = tmp_path / "autoencoder"
    autoencoder.mkdir()
    (autoencoder / "training_config.yaml").write_text("method: cosmos-autoencoder\nframing: true\nfill_frames: true\n")
    config = {"method": "cosmos", "autoencoder": str(autoencoder), "output_dir": str(tmp_path / "run")}
    with pytest.raises(ValueError, match="`fill_frames`: the autoencoder .* fill_frames=True"):
        load_config(None, config)
    assert load_config(None, {**config, "fill_frames": True}).fill_frames is True


def test_a_diffusion_run_on_an_autoencoder_checkpoint_reads_the_frames_of_its_run(tmp_path):
    checkpoint_model = tmp_path / "codec" / "checkpoints" / "checkpoint-400" / "model"
    checkpoint_model.mkdir(parents=True)
    (tmp_path / "codec" / "training_config.yaml").write_text(
        "method: cosmos-autoencoder\nframing: true\nfill_frames: true\n"
    )
    config = {"method": "cosmos", "autoencoder": str(checkpoint_model), "output_dir": str(tmp_path / "run")}
    with pytest.raises(ValueError, match="`fill_frames`: the autoencoder .* fill_frames=True"):
        load_config(None, config)


def test_an_autoencoder_folder_without_a_run_config_leaves_the_methods_default(tmp_path):
    config = load_config(None, {"method": "cosmos", "autoencoder": str(tmp_path), "output_dir": str(tmp_path / "r")})
    assert config.framing is True
