"""Frozen-encoder activations computed once and stored with the tokenised data.

ELF and Cosmos read a frozen pretrained encoder's hidden states at every training step. For small models on a CPU
that forward costs several times the trained model's own step, and it never changes: `add_encoder_activations` runs
it once over a dataset and stores the result as an ``encoder_activations`` column (float16) in an Arrow file under
``<cache>/encoder-activations/``. The file is named by a hash of the encoder and of the token ids, so every run over
the same sequences with the same encoder (a compression sweep, a resumed run) reuses it.
"""

import hashlib
import os
from collections.abc import Callable

import numpy as np
import torch

from .sources import latentlm_cache_dir


ACTIVATIONS_COLUMN = "encoder_activations"


def activations_cache_key(dataset, encoder_key: str) -> str:
    """Hash of ``encoder_key`` (the encoder's name or path) and of every column of the dataset, names and shapes
    included (the same token stream packed into 4,000 x 64 or 8,000 x 32 rows has the same bytes).

    The cache file stores the whole dataset, so every column is part of the key: paired data whose targets equal
    another dataset's rows (the same glosses, other sources, or none) must not load that dataset's other columns.
    """
    digest = hashlib.sha256(encoder_key.encode())
    for column in sorted(set(dataset.column_names) - {ACTIVATIONS_COLUMN}):
        values = np.asarray(dataset[column])
        digest.update(f"{column}{values.shape}".encode())
        if values.dtype.kind in "biu":  # token columns: the bytes as int64, whatever width the dataset stores
            digest.update(values.astype(np.int64).tobytes())
        else:
            digest.update(repr(values.tolist()).encode())
    return digest.hexdigest()[:24]


def add_encoder_activations(
    dataset,
    encode: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor],
    *,
    encoder_key: str,
    batch_size: int = 64,
    cache_dir: str | os.PathLike | None = None,
):
    """Returns ``dataset`` with an ``encoder_activations`` column of shape `(seq_len, width)` per row, in float16.

    Args:
        dataset: a `datasets.Dataset` of fixed-length ``input_ids`` (and optionally ``attention_mask``) rows.
        encode: ``encode(input_ids, attention_mask) -> (batch, seq_len, width)`` float tensor (the frozen encoder).
        encoder_key: identifies the encoder in the cache key (its name or path); a different encoder, a different file.
        batch_size: rows per encoder forward.
        cache_dir: cache root (default ``$LATENTLM_CACHE`` or ``~/.cache/latentlm``).
    """
    from datasets import Array2D, Features

    if ACTIVATIONS_COLUMN in dataset.column_names:
        return dataset
    if len(dataset) == 0:
        raise ValueError("`dataset` is empty: there is nothing to encode.")
    directory = latentlm_cache_dir(cache_dir) / "encoder-activations"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{activations_cache_key(dataset, encoder_key)}.arrow"

    def encode_batch(rows: dict) -> dict:
        input_ids = torch.as_tensor(rows["input_ids"], dtype=torch.long)
        mask = rows.get("attention_mask")
        mask = None if mask is None else torch.as_tensor(mask, dtype=torch.long)
        with torch.no_grad():
            activations = encode(input_ids, mask)
        return {ACTIVATIONS_COLUMN: activations.to(torch.float16).cpu().numpy()}

    seq_len = len(dataset[0]["input_ids"])
    width = encode_batch(dataset[:1])[ACTIVATIONS_COLUMN].shape[-1]
    features = Features({**dataset.features, ACTIVATIONS_COLUMN: Array2D((seq_len, width), "float16")})
    # numpy rows: one (seq_len, width) array per example, not nested Python lists of seq_len x width floats.
    return dataset.map(
        encode_batch,
        batched=True,
        batch_size=batch_size,
        features=features,
        cache_file_name=str(path),
        load_from_cache_file=True,
        desc="Encoder activations",
    ).with_format("numpy")


def add_model_encoder_activations(dataset, model, *, device="cpu", batch_size: int = 64):
    """`add_encoder_activations` with the frozen encoder of ``model`` (ELF, a Cosmos autoencoder or diffusion model:
    anything with ``load_text_encoder()`` and ``encoder_activations(input_ids, attention_mask)``), run on ``device``
    and keyed by the encoder's class and path."""
    encoder = model.load_text_encoder()
    key = f"{type(encoder).__name__}:{getattr(encoder.config, '_name_or_path', '')}"
    layer = getattr(model, "encoder_layer", -1)
    if layer != -1:  # another hidden state of the same encoder (LDLM reads one layer), another cache file
        key += f":layer{layer}"

    def encode(input_ids, attention_mask):
        mask = None if attention_mask is None else attention_mask.to(device)
        return model.encoder_activations(input_ids.to(device), mask)

    return add_encoder_activations(dataset, encode, encoder_key=key, batch_size=batch_size)
