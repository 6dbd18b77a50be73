"""Text quality metrics that need no judge model: entropy, repetition/diversity, memorisation, BLEU, ROUGE, and
the reference-text normalisation used for fair comparisons.

Word tokenisation for the n-gram metrics (repetition, diversity, memorisation): lowercased ``\\w+|[^\\w\\s]``
matches, i.e. words and single punctuation marks (``"It's 5."`` -> ``it ' s 5 .``). The reference code
(``compute_diversity`` / ``compute_memorization`` of the TEncDM / Diffusion-LM-line evaluation utilities, which
the Cosmos line inherits; read in public forks, not in the Cosmos repository itself) uses the spaCy tokenizer
(case kept); spaCy's English model is not available offline, and lowercasing keeps scores comparable between
cased models and uncased WordPiece models (whose decoded output is lowercase).
"""

from __future__ import annotations

import math
import re
import warnings
from collections import Counter
from collections.abc import Iterable, Sequence

from ._utils import check_positive_int, check_same_length, check_texts


_WORD_RE = re.compile(r"\w+|[^\w\s]")
ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")


def words(text: str) -> list[str]:
    """Lowercased words and punctuation marks of ``text`` (the tokenisation of the n-gram metrics)."""
    return _WORD_RE.findall(text.lower())


def ngrams(tokens: Sequence, n: int) -> list[tuple]:
    """All contiguous n-grams of ``tokens`` (empty if ``len(tokens) < n``)."""
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


# --------------------------------------------------------------------------------------------------- entropy


def _sample_tokens(samples: list, tokenizer) -> list[list]:
    """Token lists: strings are tokenised (tokenizer ids without special tokens, else whitespace words); sequences
    of ids (lists, tuples, tensors, arrays) are used as they are."""
    out: list = [None] * len(samples)
    strings = [i for i, sample in enumerate(samples) if isinstance(sample, str)]
    if strings and tokenizer is not None:
        encoded = tokenizer([samples[i] for i in strings], add_special_tokens=False).input_ids
        for i, ids in zip(strings, encoded):
            out[i] = list(ids)
    for i, sample in enumerate(samples):
        if isinstance(sample, str):
            if tokenizer is None:
                out[i] = sample.split()
        elif hasattr(sample, "tolist"):
            out[i] = list(sample.tolist())
        else:
            out[i] = list(sample)
    return out


def token_entropy(tokens: Sequence) -> float:
    """Entropy (nats) of the empirical distribution of ``tokens``; 0.0 for a constant or empty sequence."""
    total = len(tokens)
    if total == 0:
        return 0.0
    return -sum(c / total * math.log(c / total) for c in Counter(tokens).values())


def unigram_entropy(samples, tokenizer=None) -> float:
    """Average unigram entropy (nats): the entropy of each sample's token distribution, averaged over samples.

    This is the ELF / MDLM "entropy" column (there computed on the generator's token ids; OpenWebText data has
    about 5.4 nats at 1024 tokens). The value grows with sample length, so compare samples of the same length.

    Args:
        samples: texts, or token id sequences (lists/tuples/tensors of ints, e.g. the generator's own output ids).
        tokenizer: tokenizer for the texts (ids without special tokens; e.g. the judge's, as
            :func:`evaluate_texts` does). ``None``: whitespace-separated words (``str.split()``, case kept).

    Empty samples are skipped (with a warning).

    Raises:
        ValueError: if ``samples`` is empty, a single string, or every sample is empty.
    """
    if isinstance(samples, (str, bytes)):
        raise ValueError("samples must be a list of texts or token id sequences, not a single string.")
    samples = list(samples)
    if not samples:
        raise ValueError("samples is empty.")
    entropies = [token_entropy(tokens) for tokens in _sample_tokens(samples, tokenizer) if len(tokens)]
    if not entropies:
        raise ValueError(f"samples: all {len(samples)} samples are empty.")
    if len(entropies) < len(samples):
        warnings.warn(
            f"unigram_entropy: skipped {len(samples) - len(entropies)} empty sample(s) of {len(samples)}.",
            stacklevel=2,
        )
    return sum(entropies) / len(entropies)


# ------------------------------------------------------------------------------------------ repetition / diversity


def _check_ns(ns) -> tuple[int, ...]:
    ns = tuple(ns) if not isinstance(ns, int) else (ns,)
    if not ns:
        raise ValueError("ns is empty.")
    for n in ns:
        check_positive_int(n, "ns")
    return ns


def _repetition(token_lists: list[list[str]], n: int, per_sample: bool) -> float:
    """``1 - unique n-grams / total n-grams``, pooled over the corpus or averaged over samples that have n-grams."""
    grams = [ngrams(tokens, n) for tokens in token_lists]
    if per_sample:
        rates = [1.0 - len(set(g)) / len(g) for g in grams if g]
        return sum(rates) / len(rates) if rates else math.nan
    total = sum(len(g) for g in grams)
    return 1.0 - len(set().union(*grams)) / total if total else math.nan


def repetition_rates(texts, ns: Iterable[int] = (2, 3, 4), *, per_sample: bool = False) -> dict[int, float]:
    """n-gram repetition rates ``rep_n = 1 - unique n-grams / total n-grams`` for each ``n`` in ``ns``.

    Default (``per_sample=False``): pooled over the whole corpus, like ``compute_diversity`` of the reference code
    (module docstring): an n-gram shared by two samples counts as a repetition, so the rate measures
    both degenerate loops inside a sample and samples that copy each other. ``per_sample=True``: the rate of each
    sample, averaged over the samples that have at least one n-gram (loops inside samples only).

    The pooled rate grows with the number and length of samples (60-word BBC News snippets: diversity 0.77 for
    50 samples, 0.60 for 200, 0.44 for 1,000; per sample: 0.96 throughout), so compare pooled values only at equal
    sample count and length.

    Words: see the module docstring. ``rep_n`` is ``nan`` (with a warning) when no sample has ``n`` words.
    """
    texts = check_texts(texts, "texts")
    ns = _check_ns(ns)
    token_lists = [words(text) for text in texts]
    rates = {n: _repetition(token_lists, n, per_sample) for n in ns}
    missing = [n for n, rate in rates.items() if math.isnan(rate)]
    if missing:
        warnings.warn(f"repetition_rates: no sample is long enough for n = {missing}; the rate is nan.", stacklevel=2)
    return rates


def diversity(texts, ns: Iterable[int] = (2, 3, 4), *, per_sample: bool = False) -> float:
    """Diversity ``prod_n (1 - rep_n)`` over ``n`` in ``ns`` (TEncDM / Cosmos-line definition), in ``[0, 1]``:
    1.0 when no n-gram repeats. See :func:`repetition_rates` for ``rep_n`` and ``per_sample``."""
    return math.prod(1.0 - rate for rate in repetition_rates(texts, ns, per_sample=per_sample).values())


# ------------------------------------------------------------------------------------------------ memorisation


class NgramIndex:
    """Set of the (hashed) word n-grams of a training corpus, for :func:`memorisation`.

    Build it once and reuse it across evaluations of a large corpus. It stores 64-bit Python hashes of the
    n-gram tuples (about 60 bytes per distinct n-gram); hashes are salted per process, so an index is not
    meant to be saved. A hash collision could only raise the score, with negligible probability.
    """

    def __init__(self, texts: Iterable[str], n: int = 4):
        self.n = check_positive_int(n, "n")
        self._hashes: set[int] = set()
        self.num_texts = 0
        for text in texts:
            if not isinstance(text, str):
                raise ValueError(f"train_texts[{self.num_texts}] must be a string, got {type(text).__name__}.")
            self._hashes.update(hash(gram) for gram in ngrams(words(text), n))
            self.num_texts += 1

    def __len__(self) -> int:
        return len(self._hashes)

    def __contains__(self, gram: tuple) -> bool:
        return hash(tuple(gram)) in self._hashes


def memorisation(texts, train_texts, n: int = 4) -> float:
    """Share of the generated word n-grams (all occurrences, pooled over samples) that occur in the training texts.

    Same definition as ``compute_memorization`` of the reference code (module docstring; there with 4-grams of
    spaCy tokens); words as in the module docstring. 1.0: everything is copied; 0.0: no 4-gram is seen in training.

    Args:
        texts: generated samples.
        train_texts: the training texts (any iterable of strings, streamed once), or a prebuilt
            :class:`NgramIndex` with the same ``n``.
        n: n-gram order.

    Returns:
        The share in ``[0, 1]``, or ``nan`` (with a warning) if no sample has ``n`` words.
    """
    texts = check_texts(texts, "texts")
    check_positive_int(n, "n")
    if isinstance(train_texts, (str, bytes)):
        raise ValueError("train_texts must be a list of strings or an NgramIndex, not a single string.")
    index = train_texts if isinstance(train_texts, NgramIndex) else NgramIndex(train_texts, n)
    if index.n != n:
        raise ValueError(f"train_texts is an NgramIndex of {index.n}-grams, but n={n}.")
    if not len(index):
        raise ValueError(f"train_texts has no {n}-grams.")
    grams = [gram for text in texts for gram in ngrams(words(text), n)]
    if not grams:
        warnings.warn(f"memorisation: no sample has {n} words; the share is nan.", stacklevel=2)
        return math.nan
    return sum(gram in index for gram in grams) / len(grams)


# ---------------------------------------------------------------------------------------------- BLEU / ROUGE


def _reference_streams(references, num_hypotheses: int) -> list[list[str]]:
    """sacrebleu's layout (one list per reference set) from one reference per hypothesis, or a list of
    reference lists (the same number for every hypothesis)."""
    if isinstance(references, (str, bytes)):
        raise ValueError("references must be a list, not a single string.")
    references = list(references)
    check_same_length(range(num_hypotheses), references, "hypotheses", "references")
    if all(isinstance(ref, str) for ref in references):
        return [references]
    sizes = {len(refs) if not isinstance(refs, str) else -1 for refs in references}
    if -1 in sizes or len(sizes) != 1 or 0 in sizes:
        raise ValueError("references must be strings, or lists of strings with the same (>0) count per hypothesis.")
    streams = [list(stream) for stream in zip(*references)]
    if not all(isinstance(ref, str) for stream in streams for ref in stream):
        raise ValueError("references must contain strings only.")
    return streams


def bleu(hypotheses, references, *, lowercase: bool = True, tokenize: str = "13a") -> float:
    """Corpus BLEU (sacrebleu, 0-100), lowercased by default as in ELF's WMT14 De-En evaluation.

    Args:
        hypotheses: generated texts.
        references: one reference string per hypothesis, or one list of references per hypothesis.
        lowercase: case-insensitive BLEU.
        tokenize: sacrebleu tokenizer (``"13a"`` is the WMT standard).
    """
    hypotheses = check_texts(hypotheses, "hypotheses")
    streams = _reference_streams(references, len(hypotheses))
    import sacrebleu

    return float(sacrebleu.corpus_bleu(hypotheses, streams, lowercase=lowercase, tokenize=tokenize).score)


def rouge(hypotheses, references, *, use_stemmer: bool = True, rouge_types: Sequence[str] = ROUGE_TYPES) -> dict:
    """ROUGE F-measures (``rouge-score``, Porter stemmer) in percent, mean and standard error over pairs.

    Returns ``{"rouge1": mean, "rouge1_se": se, "rouge2": ..., "rougeL": ...}`` (as ELF reports XSum). The standard
    error is ``std(ddof=1) / sqrt(n)`` (0.0 for a single pair). ``rouge-score`` lowercases and drops punctuation.
    """
    hypotheses = check_texts(hypotheses, "hypotheses")
    references = check_texts(references, "references")
    check_same_length(hypotheses, references, "hypotheses", "references")
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(list(rouge_types), use_stemmer=use_stemmer)
    scores = [scorer.score(ref, hyp) for hyp, ref in zip(hypotheses, references)]
    out = {}
    for kind in rouge_types:
        values = [100.0 * score[kind].fmeasure for score in scores]
        out[kind], out[f"{kind}_se"] = _mean_and_standard_error(values)
    return out


def task_scores(hypotheses, references) -> dict:
    """The scores of a sequence-to-sequence task, one reference per hypothesis: corpus BLEU (:func:`bleu`,
    lowercased, 13a) and ROUGE-1/2/L F1 (:func:`rouge`, stemmed, mean and standard error), all in percent.

    Returns ``{"bleu", "rouge1", "rouge1_se", "rouge2", "rouge2_se", "rougeL", "rougeL_se"}``.
    """
    return {"bleu": bleu(hypotheses, references), **rouge(hypotheses, references)}


def score_ratios(scores: dict, peer: dict, keys: Iterable[str]) -> dict:
    """``{f"{key}_ratio": scores[key] / peer[key]}`` for each key both have (``None`` where the peer's is 0)."""
    out = {}
    for key in keys:
        value, reference = scores.get(key), peer.get(key)
        if value is not None and reference is not None:
            out[f"{key}_ratio"] = value / reference if reference else None
    return out


def _mean_and_standard_error(values: list[float]) -> tuple[float, float]:
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, 0.0
    variance = sum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, math.sqrt(variance / n)


# --------------------------------------------------------------------------------------- reference normalisation


def normalize_reference_texts(texts, tokenizer, *, max_tokens: int | Sequence[int] | None = None) -> list[str]:
    """Pass reference texts through the generator's tokenizer round trip, for a fair comparison.

    Each text becomes ``tokenizer.decode(ids, skip_special_tokens=True)`` with
    ``ids = tokenizer(text, add_special_tokens=False).input_ids`` (what the model's outputs go through; e.g. an
    uncased WordPiece tokenizer lowercases, strips accents and re-spaces punctuation). With ``max_tokens``, ``ids``
    is first cut to that many tokens, so references are as long as the generated samples.

    Args:
        texts: reference texts.
        tokenizer: the tokenizer of the model whose samples are compared to these references.
        max_tokens: ``None`` (no truncation), one int for all texts, or one int per text (e.g. the token count of
            the matching generated sample).
    """
    texts = check_texts(texts, "texts")
    limits = _token_limits(max_tokens, len(texts))
    ids = tokenizer(texts, add_special_tokens=False).input_ids
    return [tokenizer.decode(list(row)[:limit], skip_special_tokens=True) for row, limit in zip(ids, limits)]


def _token_limits(max_tokens, count: int) -> list[int | None]:
    """One limit per text from ``None``, an int, or a sequence of ints (each >= 0)."""
    if max_tokens is None:
        return [None] * count
    if isinstance(max_tokens, (str, bytes)) or not isinstance(max_tokens, (int, Iterable)):
        raise ValueError(f"max_tokens must be None, an int or a list of ints, got {type(max_tokens).__name__}.")
    limits = [max_tokens] * count if isinstance(max_tokens, int) else list(max_tokens)
    check_same_length(limits, range(count), "max_tokens", "texts")
    for limit in limits:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise ValueError(f"max_tokens must hold non-negative integers, got {limit!r}.")
    return limits
