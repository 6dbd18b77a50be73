"""Helpers shared by the ``latentlm.data`` modules."""

from __future__ import annotations

import importlib


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
