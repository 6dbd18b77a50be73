"""Quality metrics for generated text: judge perplexity (of whole samples or of continuations given their prompt),
entropy, MAUVE, diversity, memorisation, BLEU, ROUGE.

Heavy or optional dependencies (``mauve-text`` (GPLv3), ``sacrebleu``, ``rouge-score``, ``gguf``, the judge and
encoder weights) are imported or loaded only inside the functions that need them.

Typical use::

    from latentlm.evaluation import evaluate_texts, load_judge, normalize_reference_texts

    judge = load_judge()  # SmolLM2-135M, converted once, then cached
    refs = normalize_reference_texts(human_texts, generator_tokenizer, max_tokens=128)
    report = evaluate_texts(samples, reference_texts=refs, train_texts=train, judge=judge)
"""

from .features import (
    encoder_features,
    judge_features,
    load_default_encoder,
    mauve_from_features,
    mauve_score,
    text_features,
)
from .judge import DEFAULT_JUDGE_NAME, default_judge_gguf, latentlm_cache_dir, load_judge
from .metrics import (
    NgramIndex,
    bleu,
    diversity,
    memorisation,
    normalize_reference_texts,
    repetition_rates,
    rouge,
    score_ratios,
    task_scores,
    token_entropy,
    unigram_entropy,
    words,
)
from .perplexity import (
    PerplexityResult,
    continuation_nll,
    encode_continuations,
    encode_for_judge,
    generative_nll,
    generative_perplexity,
)
from .report import evaluate_texts


__all__ = [
    "DEFAULT_JUDGE_NAME",
    "NgramIndex",
    "PerplexityResult",
    "bleu",
    "continuation_nll",
    "default_judge_gguf",
    "diversity",
    "encode_continuations",
    "encode_for_judge",
    "encoder_features",
    "evaluate_texts",
    "generative_nll",
    "generative_perplexity",
    "judge_features",
    "latentlm_cache_dir",
    "load_default_encoder",
    "load_judge",
    "mauve_from_features",
    "mauve_score",
    "memorisation",
    "normalize_reference_texts",
    "repetition_rates",
    "rouge",
    "score_ratios",
    "task_scores",
    "text_features",
    "token_entropy",
    "unigram_entropy",
    "words",
]

# Benchmark runner, speed and reconstruction measurements (``latentlm bench`` / ``evaluate`` / ``reconstruct``); they
# import nothing heavy at module level.
from .benchmark import (  # noqa: E402
    BenchmarkSettings,
    QualityEvaluator,
    evaluate_path,
    held_out_references,
    run_benchmark,
)
from .reconstruction import reconstruction_accuracy, run_reconstruction  # noqa: E402
from .speed import (  # noqa: E402
    decode_head_flops,
    denoiser_forward_flops,
    measure_matmul_flops,
    sampling_flops,
    time_call,
)


__all__ += [
    "BenchmarkSettings",
    "QualityEvaluator",
    "decode_head_flops",
    "denoiser_forward_flops",
    "evaluate_path",
    "held_out_references",
    "measure_matmul_flops",
    "reconstruction_accuracy",
    "run_benchmark",
    "run_reconstruction",
    "sampling_flops",
    "time_call",
]
