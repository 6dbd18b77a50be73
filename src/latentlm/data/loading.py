"""One entry point for text data: offline corpora and paired tasks, ``datasets`` Hub datasets, and local files."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._utils import require_datasets
from .corpora import CORPORA, load_corpus
from .paired import PAIRED_TASKS, load_paired_task


if TYPE_CHECKING:
    from datasets import DatasetDict


__all__ = ["load_text_dataset"]

# Builders that ship inside the `datasets` wheel (so they work offline), by file extension.
_BUILDER_FOR_SUFFIX = {
    ".txt": "text",
    ".text": "text",
    ".json": "json",
    ".jsonl": "json",
    ".parquet": "parquet",
    ".csv": "csv",
}
_VALIDATION_ALIASES = ("valid", "val", "dev")


def _builder_for_file(path: Path) -> str:
    builder = _BUILDER_FOR_SUFFIX.get(path.suffix.lower())
    if builder is None:
        raise ValueError(
            f"`name_or_path`={str(path)!r} has an unsupported extension; supported: {sorted(_BUILDER_FOR_SUFFIX)}."
        )
    return builder


def _load_local(path: Path, data_files: Any, cache_dir: str | None, load_kwargs: dict) -> Any:
    """A local file, a folder of files (splits inferred from names, e.g. ``train.jsonl``), or a saved dataset."""
    datasets = require_datasets()
    if path.is_file():
        return datasets.load_dataset(
            _builder_for_file(path), data_files={"train": str(path)}, cache_dir=cache_dir, **load_kwargs
        )
    if (path / "dataset_dict.json").is_file() or (path / "state.json").is_file():
        return datasets.load_from_disk(str(path))
    if data_files is None and not any(p.suffix.lower() in _BUILDER_FOR_SUFFIX for p in path.rglob("*")):
        raise ValueError(
            f"`name_or_path`={str(path)!r} is a folder without data files; supported: {sorted(_BUILDER_FOR_SUFFIX)}."
        )
    return datasets.load_dataset(str(path), data_files=data_files, cache_dir=cache_dir, **load_kwargs)


def _with_validation(dataset: DatasetDict, validation_split: float | None, seed: int) -> DatasetDict:
    """Rename ``valid``/``val``/``dev`` to ``validation``, or carve it from ``train`` (deterministic for a seed)."""
    datasets = require_datasets()
    if "validation" in dataset:
        return dataset
    for alias in _VALIDATION_ALIASES:
        if alias in dataset:
            return datasets.DatasetDict({("validation" if k == alias else k): v for k, v in dataset.items()})
    if not validation_split or "train" not in dataset:
        return dataset
    train = dataset["train"]
    if len(train) < 2:
        raise ValueError(f"Cannot carve a validation split out of a train split of {len(train)} row(s).")
    n_validation = min(len(train) - 1, max(1, round(validation_split * len(train))))
    parts = train.train_test_split(test_size=n_validation, shuffle=True, seed=seed)
    out = dict(dataset)
    out["train"], out["validation"] = parts["train"], parts["test"]
    return datasets.DatasetDict({k: out[k] for k in ("train", "validation", *dataset) if k in out})


def load_text_dataset(
    name_or_path: str | os.PathLike,
    *,
    config_name: str | None = None,
    text_column: str = "text",
    source_column: str = "source",
    target_column: str = "target",
    data_files: str | list | dict | None = None,
    validation_split: float | None = 0.05,
    seed: int = 42,
    cache_dir: str | os.PathLike | None = None,
    **load_kwargs: Any,
) -> DatasetDict:
    """Load text data as a ``DatasetDict`` that has a ``validation`` split and a ``text_column`` (or, for paired
    data, a ``source_column`` and a ``target_column``).

    ``name_or_path`` may be

    - an offline corpus name (one of [`list_corpora`], e.g. ``"english-prose"``): [`load_corpus`];
    - an offline paired task name (one of [`list_paired_tasks`], e.g. ``"kjv-web"``): [`load_paired_task`], with
      ``source`` and ``target`` columns;
    - a local ``.txt`` / ``.json`` / ``.jsonl`` / ``.parquet`` / ``.csv`` file (it becomes the ``train`` split);
    - a local folder of such files (``datasets`` infers the format, and the splits from names such as
      ``train.jsonl`` / ``validation.jsonl`` / ``test.jsonl``), or a folder written by ``save_to_disk``;
    - anything else ``datasets.load_dataset`` accepts: a Hub dataset id (with ``config_name``), or a builder name
      such as ``"json"`` with ``data_files``.

    ``.txt`` files give one row per line (``datasets``' default); pass ``sample_by="document"`` or
    ``sample_by="paragraph"`` for one row per file or per paragraph.

    Without a ``validation`` split, a split named ``valid`` / ``val`` / ``dev`` is renamed; otherwise a
    ``validation_split`` fraction of ``train`` (at least one row) is carved out with a seeded shuffle, which is
    deterministic for the same data and ``seed``.

    Args:
        name_or_path: corpus name, local path, Hub id or builder name (see above).
        config_name: the dataset configuration (Hub datasets).
        text_column: the column that must hold the text; checked in every split, unless the split has both
            ``source_column`` and ``target_column`` (paired data).
        source_column: the condition column of paired data.
        target_column: the column to generate of paired data.
        data_files: passed to ``datasets.load_dataset``.
        validation_split: fraction of ``train`` to hold out when there is no validation split; ``None`` or 0 to
            leave the splits as they are.
        seed: seed of that hold-out shuffle.
        cache_dir: for corpora and paired tasks the latentlm cache root, otherwise the ``datasets`` cache folder.
        **load_kwargs: passed to ``datasets.load_dataset`` (e.g. ``sample_by``, ``revision``).

    Returns:
        ``datasets.DatasetDict``.

    Raises:
        ValueError: if a split has neither ``text_column`` nor both ``source_column`` and ``target_column`` (the
            message lists the columns), or the path or its extension is not supported.
    """
    datasets = require_datasets()
    if validation_split is not None and not 0 <= validation_split < 1:
        raise ValueError(f"`validation_split` must be in [0, 1), got {validation_split!r}.")
    cache_dir = os.fspath(cache_dir) if cache_dir is not None else None
    name = os.fspath(name_or_path)

    if name in CORPORA and data_files is None and not Path(name).exists():
        dataset = load_corpus(name, cache_dir=cache_dir)
    elif name in PAIRED_TASKS and data_files is None and not Path(name).exists():
        dataset = load_paired_task(name, cache_dir=cache_dir)
    elif Path(name).expanduser().exists():
        dataset = _load_local(Path(name).expanduser(), data_files, cache_dir, load_kwargs)
    else:
        dataset = datasets.load_dataset(name, config_name, data_files=data_files, cache_dir=cache_dir, **load_kwargs)

    if isinstance(dataset, datasets.Dataset):
        dataset = datasets.DatasetDict({"train": dataset})
    if not isinstance(dataset, datasets.DatasetDict):
        raise ValueError(
            f"Expected a DatasetDict from {name!r}, got {type(dataset).__name__} (streaming is not supported here)."
        )
    dataset = _with_validation(dataset, validation_split, seed)

    for split, ds in dataset.items():
        paired = source_column in ds.column_names and target_column in ds.column_names
        if text_column not in ds.column_names and not paired:
            raise ValueError(
                f"`text_column`={text_column!r} is not a column of split {split!r} of {name!r}, nor are both "
                f"`source_column`={source_column!r} and `target_column`={target_column!r}; available columns: "
                f"{ds.column_names}."
            )
    return dataset
