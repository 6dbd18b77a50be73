"""Small input checks shared by the evaluation modules."""

from __future__ import annotations

from collections.abc import Sequence


def check_texts(texts, name: str, *, allow_empty_list: bool = False) -> list[str]:
    """Return ``texts`` as a list of strings, or raise ``ValueError`` naming the argument.

    A single string is rejected (it would silently be treated as a list of characters).
    """
    if isinstance(texts, (str, bytes)):
        raise ValueError(f"{name} must be a list of strings, not a single string.")
    if not isinstance(texts, Sequence):
        try:
            texts = list(texts)
        except TypeError:
            raise ValueError(f"{name} must be a list of strings, got {type(texts).__name__}.") from None
    bad = next((i for i, text in enumerate(texts) if not isinstance(text, str)), None)
    if bad is not None:
        raise ValueError(f"{name}[{bad}] must be a string, got {type(texts[bad]).__name__}.")
    if not texts and not allow_empty_list:
        raise ValueError(f"{name} is empty.")
    return list(texts)


def check_positive_int(value, name: str) -> int:
    """Return ``value`` if it is an int >= 1, else raise ``ValueError`` naming the argument."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return value


def check_same_length(a: Sequence, b: Sequence, name_a: str, name_b: str) -> None:
    if len(a) != len(b):
        raise ValueError(f"{name_a} and {name_b} must have the same length, got {len(a)} and {len(b)}.")


def model_device(model):
    """Device of a model's first parameter (CPU for a model without parameters)."""
    import torch

    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")
