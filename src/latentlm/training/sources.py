"""What a training run starts from (``init_from``) and what it reads (``dataset``), however the user names them.

``init_from`` may be

* a bundled model, ``"pretrained:elf-tiny-prose"`` (see `latentlm.list_pretrained`);
* a pipeline folder (``model_index.json``: a ``latentlm train`` output, ``pipe.save_pretrained``): its ``model/``;
* a model folder (``config.json``: ``model.save_pretrained``, a checkpoint's ``model/``);
* a Hub id (``"user/elf-base"``) of either kind, fetched with `huggingface_hub.snapshot_download` (from the cache
  under ``HF_HUB_OFFLINE=1``).

``dataset`` may be, besides a name or a path (`latentlm.data.load_text_dataset`), a ``datasets.Dataset``, a
``datasets.DatasetDict`` or any iterable of strings built in Python.
"""

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


BUNDLED_PREFIX = "pretrained:"
PIPELINE_INDEX = "model_index.json"
MODEL_CONFIG = "config.json"
_CACHE_REPO = re.compile(r"models--(?P<owner>[^/\\]+?)--(?P<name>[^/\\]+)[/\\]snapshots[/\\]")


@dataclass(frozen=True)
class PretrainedSource:
    """A resolved ``init_from``.

    Attributes:
        name: what the user wrote.
        folder: the local folder: a pipeline or a model (the Hub snapshot for Hub ids).
        hub_id: the Hub repository when there is one (also for a folder inside the Hub cache).
        bundled: the bundled model's name (``pretrained:<bundled>``).
    """

    name: str
    folder: Path
    hub_id: str | None = None
    bundled: str | None = None

    @property
    def is_pipeline(self) -> bool:
        return (self.folder / PIPELINE_INDEX).is_file()

    @property
    def model_dir(self) -> Path:
        """The folder ``from_pretrained`` of the training head reads: the pipeline's ``model/`` or the folder."""
        return self.folder / "model" if self.is_pipeline else self.folder

    def component(self, name: str) -> Path | None:
        """A pipeline component's folder (``tokenizer``, ``autoencoder``), if the source is a pipeline that has it."""
        path = self.folder / name
        return path if self.is_pipeline and path.is_dir() else None

    @property
    def base_model(self) -> str | None:
        """The Hub id a model card may name as ``base_model`` (None for local and bundled sources)."""
        return self.hub_id


def resolve_init_from(name: str, revision: str | None = None) -> PretrainedSource:
    """Finds the folder behind an ``init_from`` value (see the module docstring).

    Raises:
        ValueError: naming ``init_from`` when it is none of the accepted forms (a local folder without
            ``model_index.json`` / ``config.json``, an unknown bundled name, or a Hub id neither online nor cached).
    """
    if name.startswith(BUNDLED_PREFIX):
        from .. import pretrained_path

        bundled = name.removeprefix(BUNDLED_PREFIX)
        try:
            return PretrainedSource(name, Path(pretrained_path(bundled)), bundled=bundled)
        except ValueError as err:
            raise ValueError(f"`init_from` ({name!r}): {err}") from err
    path = Path(name).expanduser()
    if path.exists():
        if not ((path / PIPELINE_INDEX).is_file() or (path / MODEL_CONFIG).is_file()):
            raise ValueError(
                f"`init_from` ({name}) must be a pipeline folder (with {PIPELINE_INDEX}) or a model folder (with "
                f"{MODEL_CONFIG}), a Hub id or `pretrained:<name>`; the folder has neither file."
            )
        return PretrainedSource(name, path, hub_id=hub_id_of_cache_path(path))
    return PretrainedSource(name, _download(name, revision), hub_id=name)


def portable_reference(name_or_path: str | os.PathLike | None, relative_to: str | os.PathLike) -> str | None:
    """How a saved file may name a model without an absolute local path: a Hub id as is (also for a folder in the
    Hub cache), ``pretrained:<name>`` for a bundled model, else the folder relative to ``relative_to``."""
    if not name_or_path:
        return None
    path = Path(name_or_path)
    if not path.exists():
        return None if path.is_absolute() else str(name_or_path)  # a Hub id, or a path that no longer exists
    hub_id = hub_id_of_cache_path(path)
    if hub_id is not None:
        return hub_id
    from .. import _PRETRAINED_DIR

    resolved = path.resolve()
    if resolved.is_relative_to(_PRETRAINED_DIR.resolve()):
        return BUNDLED_PREFIX + resolved.relative_to(_PRETRAINED_DIR.resolve()).parts[0]
    return os.path.relpath(resolved, Path(relative_to).resolve())


def hub_id_of_cache_path(path: str | os.PathLike) -> str | None:
    """``owner/name`` for a folder inside the Hub cache (``.../models--owner--name/snapshots/<commit>/...``)."""
    match = _CACHE_REPO.search(str(Path(path).resolve()))
    return f"{match['owner']}/{match['name']}" if match else None


def _download(repo_id: str, revision: str | None) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        folder = Path(snapshot_download(repo_id, revision=revision))
    except (HfHubHTTPError, LocalEntryNotFoundError, ValueError, OSError) as err:
        raise ValueError(
            f"`init_from` ({repo_id!r}) is not a local folder, not `pretrained:<name>`, and not a Hub repository "
            f"that could be fetched (or found in the cache when offline): {err}"
        ) from err
    if not ((folder / PIPELINE_INDEX).is_file() or (folder / MODEL_CONFIG).is_file()):
        raise ValueError(
            f"`init_from` ({repo_id!r}): the repository holds neither {PIPELINE_INDEX} nor {MODEL_CONFIG}."
        )
    return folder


# ----------------------------------------------------------------------------------------------------------------
# Datasets built in Python
# ----------------------------------------------------------------------------------------------------------------


def is_in_memory_dataset(dataset) -> bool:
    """True for a ``dataset`` built in Python (anything but a name or a path)."""
    return not isinstance(dataset, (str, os.PathLike))


def check_in_memory_dataset(dataset):
    """Validates a Python-built ``dataset``; an iterable of texts is read into a list (so it can be read twice).
    `latentlm.data.load_text_dataset` reads all three forms."""
    import datasets

    if isinstance(dataset, (datasets.IterableDataset, datasets.IterableDatasetDict)):
        raise ValueError(
            "`dataset` is a streaming (iterable) `datasets` dataset; training reads its data twice (statistics, "
            "epochs): pass a `datasets.Dataset` / `DatasetDict`, e.g. `Dataset.from_generator(...)`."
        )
    if isinstance(dataset, (datasets.Dataset, datasets.DatasetDict)):
        return dataset
    if isinstance(dataset, Iterable) and not isinstance(dataset, (bytes, dict)):
        texts = list(dataset)
        bad = next((text for text in texts if not isinstance(text, str)), None)
        if bad is not None or not texts:
            raise ValueError(
                "`dataset` given as an iterable must hold texts (str); "
                + (f"found a {type(bad).__name__}." if texts else "it is empty.")
            )
        return texts
    raise ValueError(
        "`dataset` must be a corpus name, a path, a Hub dataset id, a `datasets.Dataset`, a `datasets.DatasetDict` "
        f"or an iterable of texts, got {type(dataset).__name__}."
    )


def describe_dataset(dataset) -> str:
    """What a saved config and a model card say about a Python-built dataset (no data, no local path)."""
    import datasets

    if isinstance(dataset, datasets.DatasetDict):
        splits = ", ".join(f"{split}: {len(part):,}" for split, part in dataset.items())
        return f"in-memory DatasetDict ({splits} rows)"
    if isinstance(dataset, datasets.Dataset):
        return f"in-memory Dataset ({len(dataset):,} rows)"
    return f"in-memory list of {len(dataset):,} texts"
