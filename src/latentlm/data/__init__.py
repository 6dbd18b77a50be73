"""Data for latentlm: offline corpora and paired tasks, text loading, tokenising and packing, collators.

``import latentlm.data`` is light; ``datasets`` is imported by the functions that need it.

Example:
    ```python
    >>> from transformers import AutoTokenizer
    >>> from latentlm.data import DataCollatorForFixedLength, load_text_dataset, tokenize_and_chunk
    >>> corpus = load_text_dataset("english-prose")  # offline: BBC News + Brown + Jane Austen
    >>> large = load_text_dataset("english-large")  # offline: english-prose + Bibles, Shakespeare, WordNet, ...
    >>> blocks = tokenize_and_chunk(corpus, tokenizer, seq_len=128)  # packed, EOS between documents
    >>> framed = tokenize_and_chunk(corpus, tokenizer, seq_len=128, framing=True)  # [CLS] chunk [SEP] [PAD]...
    >>> batch = DataCollatorForFixedLength()([blocks["train"][i] for i in range(8)])  # LongTensor (8, 128)
    >>> verses = load_text_dataset("kjv-web")  # a paired task: columns source (KJV) and target (WEB)
    ```
"""

from .activations import ACTIVATIONS_COLUMN, add_encoder_activations, add_model_encoder_activations
from .corpora import CORPORA, CORPUS_VERSION, DEFAULT_CORPUS, SPLITS, list_corpora, load_corpus, split_for_id
from .loading import load_text_dataset
from .paired import PAIRED_COLUMNS, PAIRED_TASKS, PAIRED_VERSION, list_paired_tasks, load_paired_task
from .processing import DataCollatorForFixedLength, eos_token_id_for, frame_tokens, tokenize_and_chunk, tokenize_pairs
from .sources import download_corpus_sources, latentlm_cache_dir


__all__ = [
    "ACTIVATIONS_COLUMN",
    "CORPORA",
    "CORPUS_VERSION",
    "DEFAULT_CORPUS",
    "SPLITS",
    "DataCollatorForFixedLength",
    "PAIRED_COLUMNS",
    "PAIRED_TASKS",
    "PAIRED_VERSION",
    "add_encoder_activations",
    "add_model_encoder_activations",
    "download_corpus_sources",
    "eos_token_id_for",
    "frame_tokens",
    "latentlm_cache_dir",
    "list_corpora",
    "list_paired_tasks",
    "load_corpus",
    "load_paired_task",
    "load_text_dataset",
    "split_for_id",
    "tokenize_and_chunk",
    "tokenize_pairs",
]
