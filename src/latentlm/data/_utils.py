"""Helpers shared by the ``latentlm.data`` modules."""

from __future__ import annotations

import importlib
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path


def require_datasets():
    """Import and return the ``datasets`` module, with an install hint when it is missing.

    ``datasets`` is an optional dependency (the ``training`` extra), so ``import latentlm.data`` does not import it;
    the functions that need it call this first.
    """
    try:
        return importlib.import_module("datasets")
    except ImportError as error:
        raise ImportError(
            "latentlm.data needs the `datasets` library: `pip install 'latentlm[training]'` or `pip install datasets`."
        ) from error


def load_or_build(path: Path, build: Callable[[], object], rebuild: bool = False):
    """Memory-map the ``DatasetDict`` saved at ``path``, building and saving it first if it is missing (or ``rebuild``).

    The build is written to a temporary sibling folder and moved into place atomically; when a concurrent build got
    there first, its copy is kept.
    """
    from datasets import load_from_disk

    if rebuild or not (path / "dataset_dict.json").is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}-", dir=path.parent))
        try:
            build().save_to_disk(tmp)
            if rebuild and path.exists():
                shutil.rmtree(path)
            try:
                os.replace(tmp, path)
            except OSError:  # a concurrent build got there first: keep it
                if not (path / "dataset_dict.json").is_file():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return load_from_disk(str(path))
