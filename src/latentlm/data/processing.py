"""Tokenising text datasets into fixed-length examples, and stacking them into batches.

Conventions (shared by every training loop in latentlm):

- An example is ``{"input_ids": (seq_len,), "attention_mask": (seq_len,)}``, both integer; ``attention_mask`` is
  1 on real tokens (an end-of-document token included) and 0 on padding. Padding is always on the right.
- Documents are tokenised *without* special tokens (no ``[CLS]`` / ``<s>``); an end-of-document id is appended
  (see [`eos_token_id_for`]): the tokenizer's ``eos_token_id``, or ``sep_token_id`` for BERT-like tokenizers.
- Except in *framed* examples (``framing=True``): every example is one document chunk in the tokenizer's own frame of
  special tokens (`frame_tokens`: ``[CLS] chunk [SEP]`` for BERT-family tokenizers, ``chunk </s>`` for T5), padded
  with ``[PAD]`` (``attention_mask`` 0), as Cosmos' official code feeds its frozen BERT
  (``encoder_trainer.py`` ``collate_fn``: ``add_special_tokens=True``, padded, truncated to L). A frozen BERT-family
  encoder then sees the inputs it was trained on; the frame's closing token is the end-of-document id.
- Documents with no tokens are dropped.
- Paired data (sequence to sequence, [`tokenize_pairs`]): the target is ``input_ids`` / ``attention_mask`` of
  exactly ``target_length`` tokens, **padded with the end-of-document id, every position real and supervised** (as
  ELF's conditional configs, ``pad_token: eos``: a diffusion model generates a fixed length, so it must learn to
  fill what follows the text with EOS, which the pipeline then cuts), and the source is
  ``condition_input_ids`` / ``condition_attention_mask``, right-padded, no special tokens — what a pipeline's
  ``source=`` becomes. For causal LMs the two are concatenated as ``source [SEP] target`` with ``labels`` -100 on the
  source part.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ._utils import require_datasets


if TYPE_CHECKING:
    from datasets import Dataset, DatasetDict
    from transformers import PreTrainedTokenizerBase


__all__ = ["DataCollatorForFixedLength", "eos_token_id_for", "frame_tokens", "tokenize_and_chunk", "tokenize_pairs"]

logger = logging.getLogger(__name__)


def eos_token_id_for(tokenizer: PreTrainedTokenizerBase) -> int:
    """The id that ends a document: ``tokenizer.eos_token_id``, else ``sep_token_id`` (BERT-like tokenizers).

    Raises:
        ValueError: if the tokenizer has neither.
    """
    for attribute in ("eos_token_id", "sep_token_id"):
        token_id = getattr(tokenizer, attribute, None)
        if token_id is not None:
            return int(token_id)
    raise ValueError(
        f"`tokenizer` ({type(tokenizer).__name__}) has neither an eos_token nor a sep_token to end documents with; "
        "set one (e.g. `tokenizer.eos_token = ...`) or pass `add_eos=False`."
    )


def frame_tokens(tokenizer: PreTrainedTokenizerBase) -> tuple[list[int], list[int]]:
    """The ids the tokenizer puts before and after one text (``add_special_tokens=True``): ``([CLS], [SEP])`` for
    BERT-family tokenizers, ``([], [</s>])`` for T5, ``([], [])`` for GPT-2.

    Read off the tokenizer's own output for a one-word probe, so any post-processor template is followed.
    """
    for probe in ("a", "the", "x", "0"):
        bare = tokenizer(probe, add_special_tokens=False)["input_ids"]
        if bare:
            break
    else:
        raise ValueError(f"`tokenizer` ({type(tokenizer).__name__}) encodes none of the probe words; cannot frame.")
    full = tokenizer(probe, add_special_tokens=True)["input_ids"]
    for start in range(len(full) - len(bare) + 1):
        if full[start : start + len(bare)] == bare:
            return full[:start], full[start + len(bare) :]
    raise ValueError(
        f"`tokenizer` ({type(tokenizer).__name__}) rewrites text when adding special tokens; cannot frame."
    )


def _encode(tokenizer: PreTrainedTokenizerBase, texts: list[str], max_length: int | None) -> list[list[int]]:
    """Token ids of each text, without special tokens, optionally truncated to ``max_length``."""
    encoded = tokenizer(
        texts,
        add_special_tokens=False,
        truncation=max_length is not None,
        max_length=max_length,
        return_attention_mask=False,
        return_token_type_ids=False,
        verbose=False,  # documents are longer than model_max_length on purpose
    )
    return encoded["input_ids"]


def _tokenize_documents(batch: dict[str, list], tokenizer, text_column: str, eos_id: int | None) -> dict[str, list]:
    """Batched map: one row of ``input_ids`` (EOS appended when ``eos_id`` is set) per non-empty document."""
    rows = []
    for ids in _encode(tokenizer, [text or "" for text in batch[text_column]], None):
        if ids:
            rows.append(ids + [eos_id] if eos_id is not None else ids)
    return {"input_ids": rows}


def _pack_table(table, seq_len: int):
    """Arrow-formatted map over the *whole* split: concatenate every row and cut blocks of exactly ``seq_len``.

    The remainder (fewer than ``seq_len`` tokens at the very end) is dropped.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    stream = pc.list_flatten(table["input_ids"])
    stream = stream.combine_chunks() if isinstance(stream, pa.ChunkedArray) else stream
    n_tokens = len(stream) // seq_len * seq_len
    input_ids = pa.FixedSizeListArray.from_arrays(stream.slice(0, n_tokens).cast(pa.int32()), seq_len)
    mask = pa.FixedSizeListArray.from_arrays(pa.array(np.ones(n_tokens, dtype=np.int8)), seq_len)
    return pa.table({"input_ids": input_ids, "attention_mask": mask})


def _tokenize_and_pad(
    batch: dict[str, list], tokenizer, text_column: str, seq_len: int, eos_id: int | None, pad_id: int
) -> dict[str, list]:
    """Batched map: one right-padded example per non-empty document, truncated to ``seq_len``, EOS if room."""
    input_ids, attention_mask = [], []
    for ids in _encode(tokenizer, [text or "" for text in batch[text_column]], seq_len):
        if not ids:
            continue
        if eos_id is not None and len(ids) < seq_len:
            ids = ids + [eos_id]
        n_pad = seq_len - len(ids)
        input_ids.append(ids + [pad_id] * n_pad)
        attention_mask.append([1] * len(ids) + [0] * n_pad)
    return {"input_ids": input_ids, "attention_mask": attention_mask}


def _frame(tokenizer, add_eos: bool) -> tuple[list[int], list[int]]:
    """`frame_tokens`, closed by the end-of-document id when the tokenizer adds no closing token (GPT-2)."""
    prefix, suffix = frame_tokens(tokenizer)
    return prefix, suffix or ([eos_token_id_for(tokenizer)] if add_eos else [])


def _frame_documents(
    batch: dict[str, list], seq_len: int, prefix: list[int], suffix: list[int], pad_id: int, split_documents: bool
) -> dict[str, list]:
    """Batched map over tokenised documents: ``prefix + chunk + suffix`` right-padded to ``seq_len``, one example per
    chunk of ``seq_len - len(prefix) - len(suffix)`` consecutive tokens (``split_documents``), or per document (its
    first chunk)."""
    room = seq_len - len(prefix) - len(suffix)
    chunks = (
        ids[start : start + room]
        for ids in batch["input_ids"]
        for start in (range(0, len(ids), room) if split_documents else range(min(len(ids), 1)))
    )
    return _framed_examples(chunks, seq_len, prefix, suffix, pad_id)


def _fill_frames(batch: dict[str, list], seq_len: int, prefix: list[int], suffix: list[int], pad_id: int) -> dict:
    """Batched map over tokenised documents: the batch's documents, each closed by ``suffix`` (``[SEP]``), one
    stream cut into chunks of ``seq_len - len(prefix) - len(suffix)`` tokens, each framed as ``prefix + chunk +
    suffix``; only the batch's last example is padded."""
    room = seq_len - len(prefix) - len(suffix)
    stream = [token for ids in batch["input_ids"] if ids for token in ids + suffix]
    chunks = (stream[start : start + room] for start in range(0, len(stream), room))
    return _framed_examples(chunks, seq_len, prefix, suffix, pad_id)


def _framed_examples(chunks, seq_len: int, prefix: list[int], suffix: list[int], pad_id: int) -> dict[str, list]:
    input_ids, attention_mask = [], []
    for chunk in chunks:
        ids_row, mask_row = _pad(prefix + chunk + suffix, seq_len, pad_id)
        input_ids.append(ids_row)
        attention_mask.append(mask_row)
    return {"input_ids": input_ids, "attention_mask": attention_mask}


def _fixed_length_features(seq_len: int):
    datasets = require_datasets()
    return datasets.Features(
        {
            "input_ids": datasets.Sequence(datasets.Value("int32"), length=seq_len),
            "attention_mask": datasets.Sequence(datasets.Value("int8"), length=seq_len),
        }
    )


def _check_arguments(dataset, tokenizer, seq_len, packing, framing, text_column, add_eos, num_proc) -> None:
    datasets = require_datasets()
    if not isinstance(dataset, (datasets.Dataset, datasets.DatasetDict)):
        raise TypeError(f"`dataset_dict` must be a datasets.Dataset or DatasetDict, got {type(dataset).__name__}.")
    if isinstance(seq_len, bool) or not isinstance(seq_len, int) or seq_len <= 0:
        raise ValueError(f"`seq_len` must be a positive int, got {seq_len!r}.")
    if num_proc is not None and (isinstance(num_proc, bool) or not isinstance(num_proc, int) or num_proc <= 0):
        raise ValueError(f"`num_proc` must be None or a positive int, got {num_proc!r}.")
    if not callable(tokenizer):
        raise ValueError(f"`tokenizer` must be a transformers tokenizer, got {type(tokenizer).__name__}.")
    if add_eos and not (framing and frame_tokens(tokenizer)[1]):
        eos_token_id_for(tokenizer)
    if (framing or not packing) and getattr(tokenizer, "pad_token_id", None) is None:
        needs = "`framing=True`" if framing else "`packing=False`"
        raise ValueError(
            f"`tokenizer` has no pad token, which {needs} needs; set one (e.g. "
            "`tokenizer.pad_token = tokenizer.eos_token`) or use `packing=True`."
        )
    if framing:
        prefix, suffix = _frame(tokenizer, add_eos)
        if seq_len <= len(prefix) + len(suffix):
            raise ValueError(
                f"`seq_len`={seq_len} leaves no room for text inside the {len(prefix) + len(suffix)} special tokens "
                "of `framing=True`."
            )
    splits = dataset.items() if isinstance(dataset, datasets.DatasetDict) else [("dataset", dataset)]
    for split, ds in splits:
        if text_column not in ds.column_names:
            raise ValueError(
                f"`text_column`={text_column!r} is not a column of split {split!r}; "
                f"available columns: {ds.column_names}."
            )


def _tokenize_documents_once(ds: Dataset, tokenizer, text_column: str, eos_id: int | None, num_proc) -> Dataset:
    """One row of ``input_ids`` per non-empty document (`_tokenize_documents`), cached by ``datasets``."""
    datasets = require_datasets()
    return ds.map(
        _tokenize_documents,
        batched=True,
        num_proc=num_proc,
        remove_columns=ds.column_names,
        features=datasets.Features({"input_ids": datasets.Sequence(datasets.Value("int32"))}),
        fn_kwargs={"tokenizer": tokenizer, "text_column": text_column, "eos_id": eos_id},
        desc="Tokenizing",
    )


def _process_split(
    ds: Dataset, tokenizer, seq_len, packing, framing, text_column, add_eos, num_proc, fill_frames
) -> Dataset:
    datasets = require_datasets()
    eos_id = eos_token_id_for(tokenizer) if add_eos and not framing else None
    features = _fixed_length_features(seq_len)
    if len(ds) == 0:  # `map` skips empty datasets, so give the empty result its schema here
        return datasets.Dataset.from_dict({name: [] for name in features}, features=features)
    if framing:  # documents tokenised once (cached for every seq_len), then framed
        prefix, suffix = _frame(tokenizer, add_eos)
        frame_kwargs = {"seq_len": seq_len, "prefix": prefix, "suffix": suffix, "pad_id": int(tokenizer.pad_token_id)}
        if not fill_frames:
            frame_kwargs["split_documents"] = packing
        return _tokenize_documents_once(ds, tokenizer, text_column, None, num_proc).map(
            _fill_frames if fill_frames else _frame_documents,
            batched=True,
            remove_columns=["input_ids"],
            features=features,
            fn_kwargs=frame_kwargs,
            desc=f"Framing into examples of {seq_len}",
        )
    if not packing:
        return ds.map(
            _tokenize_and_pad,
            batched=True,
            num_proc=num_proc,
            remove_columns=ds.column_names,
            features=features,
            fn_kwargs={
                "tokenizer": tokenizer,
                "text_column": text_column,
                "seq_len": seq_len,
                "eos_id": eos_id,
                "pad_id": int(tokenizer.pad_token_id),
            },
            desc=f"Tokenizing and padding to {seq_len}",
        )
    tokenized = _tokenize_documents_once(ds, tokenizer, text_column, eos_id, num_proc)
    packed = tokenized.with_format("arrow").map(
        _pack_table,
        batched=True,
        batch_size=None,  # one batch: the remainder is dropped once per split, not once per batch
        remove_columns=tokenized.column_names,
        features=features,
        fn_kwargs={"seq_len": seq_len},
        desc=f"Packing into blocks of {seq_len}",
    )
    if len(packed) == 0:
        logger.warning("A split of %d documents gave no block of seq_len=%d tokens.", len(ds), seq_len)
    return packed.with_format(None)


def tokenize_and_chunk(
    dataset_dict: DatasetDict | Dataset,
    tokenizer: PreTrainedTokenizerBase,
    seq_len: int,
    *,
    packing: bool = True,
    framing: bool = False,
    text_column: str = "text",
    add_eos: bool = True,
    num_proc: int | None = None,
    fill_frames: bool = False,
) -> DatasetDict | Dataset:
    """Tokenise documents into fixed-length training examples.

    - ``packing=True`` (pre-training style): each document is tokenised without special tokens, the end-of-document
      id ([`eos_token_id_for`]) is appended, all documents of a split are concatenated in order, and the stream is cut
      into blocks of exactly ``seq_len`` tokens; the final remainder is dropped. ``attention_mask`` is all ones.
    - ``packing=False``: one example per document, truncated to ``seq_len``; the end-of-document id is appended when
      the document fits in fewer than ``seq_len`` tokens; right-padded with ``tokenizer.pad_token_id``;
      ``attention_mask`` is 0 on padding.
    - ``framing=True``: framed examples, as a frozen BERT-family encoder expects them (module docstring): each is
      ``[CLS] chunk [SEP]`` (the tokenizer's `frame_tokens`) right-padded to ``seq_len`` with ``attention_mask`` 0 on
      padding. With ``packing=True`` every document is split into consecutive chunks of ``seq_len - 2`` tokens (for a
      BERT frame), so all its text is used and only a document's last chunk is padded; with ``packing=False`` each
      document keeps its first chunk (truncated, as the official Cosmos collator). The frame's closing ``[SEP]``
      ends every example; a tokenizer that adds no closing token (GPT-2) gets the end-of-document id there instead
      (with ``add_eos``).
    - ``fill_frames=True`` (with ``framing`` and ``packing``): framed examples filled with consecutive documents,
      BERT pre-training style: every document is closed by the frame's ``[SEP]``, the documents of each batch of
      1,000 are concatenated and the stream is cut into framed chunks, ``[CLS] ...a [SEP] b... [SEP]``, so only the
      last example of a batch is padded. For corpora of short documents: per-document frames of ``english-large``
      (WordNet glosses, fortunes) are half padding, and half of its examples hold under 32 tokens.

    Results are cached by ``datasets`` (fingerprints of the input, the tokenizer and the arguments), so a second call
    on a dataset that lives on disk (e.g. from [`load_corpus`]) reads the cache instead of tokenising again.

    Args:
        dataset_dict: a ``DatasetDict`` (every split is processed) or a single ``Dataset``.
        tokenizer: any transformers tokenizer. Needs an eos or sep token when ``add_eos``, a pad token when
            ``packing=False``.
        seq_len: tokens per example (positive).
        packing: pack documents into full blocks (``True``) or pad each document (``False``); with ``framing``,
            split documents into consecutive framed chunks (``True``) or keep each document's first chunk (``False``).
        framing: frame every example with the tokenizer's special tokens and pad it (see above).
        text_column: the column holding the text.
        add_eos: append the end-of-document id to each document.
        num_proc: processes for tokenisation (packing itself is one vectorised pass per split).
        fill_frames: fill each framed example with several documents instead of one (see above).

    Returns:
        The same container type with exactly the columns ``input_ids`` and ``attention_mask``, each a fixed-length
        sequence of ``seq_len`` ints, formatted for torch: ``ds[i:j]["input_ids"]`` is a ``LongTensor (j - i, seq_len)``.

    Example:
        ```python
        >>> blocks = tokenize_and_chunk(load_corpus("english-prose"), tokenizer, seq_len=128)
        >>> loader = torch.utils.data.DataLoader(blocks["train"], batch_size=32, collate_fn=DataCollatorForFixedLength())
        ```
    """
    datasets = require_datasets()
    _check_arguments(dataset_dict, tokenizer, seq_len, packing, framing, text_column, add_eos, num_proc)
    if fill_frames and not (framing and packing):
        raise ValueError(
            f"`fill_frames=True` fills framed, packed examples; it needs `framing=True` and `packing=True`, got "
            f"framing={framing!r}, packing={packing!r}."
        )
    args = (tokenizer, seq_len, packing, framing, text_column, add_eos, num_proc, fill_frames)
    if isinstance(dataset_dict, datasets.DatasetDict):
        out = datasets.DatasetDict({name: _process_split(ds, *args) for name, ds in dataset_dict.items()})
    else:
        out = _process_split(dataset_dict, *args)
    return out.with_format("torch")


def _pad(ids: list[int], length: int, pad_id: int) -> tuple[list[int], list[int]]:
    return ids + [pad_id] * (length - len(ids)), [1] * len(ids) + [0] * (length - len(ids))


def _tokenize_pair_batch(batch, tokenizer, source_column, target_column, target_length, source_length, concatenate):
    """Batched map over pairs; rows with an empty source or target are dropped."""
    eos_id, pad_id = eos_token_id_for(tokenizer), int(tokenizer.pad_token_id)
    sources = _encode(tokenizer, [text or "" for text in batch[source_column]], source_length)
    targets = _encode(tokenizer, [text or "" for text in batch[target_column]], target_length)
    out = {"input_ids": [], "attention_mask": []}
    if concatenate:
        out["labels"] = []
    else:
        out["condition_input_ids"], out["condition_attention_mask"] = [], []
    for source, target in zip(sources, targets):
        if not source or not target:
            continue
        if len(target) < target_length:
            target = target + [eos_id]
        if not concatenate:  # a diffusion target has a fixed length: it learns to fill the rest with EOS
            target = target + [eos_id] * (target_length - len(target))
        if concatenate:
            ids, mask = _pad(source + [eos_id] + target, source_length + 1 + target_length, pad_id)
            labels = [-100] * (len(source) + 1) + target
            out["labels"].append(labels + [-100] * (len(ids) - len(labels)))
        else:
            ids, mask = _pad(target, target_length, pad_id)
            condition_ids, condition_mask = _pad(source, source_length, pad_id)
            out["condition_input_ids"].append(condition_ids)
            out["condition_attention_mask"].append(condition_mask)
        out["input_ids"].append(ids)
        out["attention_mask"].append(mask)
    return out


def tokenize_pairs(
    dataset_dict: DatasetDict | Dataset,
    tokenizer: PreTrainedTokenizerBase,
    *,
    source_column: str = "source",
    target_column: str = "target",
    target_length: int = 64,
    source_length: int = 64,
    concatenate: bool = False,
    num_proc: int | None = None,
) -> DatasetDict | Dataset:
    """Tokenise (source, target) pairs into fixed-length training examples (see the module docstring).

    Args:
        dataset_dict: a ``DatasetDict`` or ``Dataset`` with ``source_column`` and ``target_column``.
        tokenizer: any transformers tokenizer with a pad token and an eos or sep token.
        target_length: tokens of a target (truncated; end-of-document id appended when it fits).
        source_length: tokens of a source (truncated).
        concatenate: one causal-LM sequence ``source [SEP] target`` of ``source_length + 1 + target_length``
            tokens with ``labels`` on the target only, instead of separate condition columns.
        num_proc: processes for tokenisation.

    Returns:
        The same container type, formatted for torch.
    """
    datasets = require_datasets()
    for name, value in (("target_length", target_length), ("source_length", source_length)):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"`{name}` must be a positive int, got {value!r}.")
    if getattr(tokenizer, "pad_token_id", None) is None:
        raise ValueError("`tokenizer` has no pad token, which paired data needs; set one.")
    splits = dataset_dict.items() if isinstance(dataset_dict, datasets.DatasetDict) else [("dataset", dataset_dict)]
    for split, ds in splits:
        for argument, column in (("source_column", source_column), ("target_column", target_column)):
            if column not in ds.column_names:
                raise ValueError(
                    f"`{argument}`={column!r} is not a column of split {split!r}; available columns: {ds.column_names}."
                )

    def process(ds):
        return ds.map(
            _tokenize_pair_batch,
            batched=True,
            num_proc=num_proc,
            remove_columns=ds.column_names,
            fn_kwargs=dict(
                tokenizer=tokenizer,
                source_column=source_column,
                target_column=target_column,
                target_length=target_length,
                source_length=source_length,
                concatenate=concatenate,
            ),
            desc="Tokenizing pairs",
        )

    if isinstance(dataset_dict, datasets.DatasetDict):
        out = datasets.DatasetDict({name: process(ds) for name, ds in dataset_dict.items()})
    else:
        out = process(dataset_dict)
    return out.with_format("torch")


@dataclass
class DataCollatorForFixedLength:
    """Stack fixed-length examples into a batch of ``LongTensor (batch, seq_len)``, one per key.

    Examples may hold lists or tensors (e.g. from [`tokenize_and_chunk`]); keys missing from the first example are
    skipped, other keys of the examples are ignored. Unequal lengths raise ``ValueError`` (pad or pack first).
    Cached frozen-encoder activations (``encoder_activations``, see `add_encoder_activations`) are stacked too, as a
    float32 `(batch, seq_len, width)` tensor.

    Args:
        keys: the keys to stack (the token columns of [`tokenize_and_chunk`] and [`tokenize_pairs`]).
    """

    keys: tuple[str, ...] = (
        "input_ids",
        "attention_mask",
        "labels",
        "condition_input_ids",
        "condition_attention_mask",
    )

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        if not features:
            raise ValueError("`features` is empty: cannot collate a batch of zero examples.")
        batch = {}
        for key in self.keys:
            if key not in features[0]:
                continue
            rows = [torch.as_tensor(feature[key], dtype=torch.long) for feature in features]
            shapes = {tuple(row.shape) for row in rows}
            if len(shapes) != 1 or len(next(iter(shapes))) != 1:
                raise ValueError(
                    f"`{key}` must be 1-D and of one length across the batch, got shapes {sorted(shapes)}."
                )
            batch[key] = torch.stack(rows)
        if "encoder_activations" in features[0]:
            activations = [torch.as_tensor(np.asarray(f["encoder_activations"])) for f in features]
            batch["encoder_activations"] = torch.stack(activations).float()
        return batch
