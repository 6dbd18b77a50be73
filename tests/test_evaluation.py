"""Tests of latentlm.evaluation: fast ones on a tiny random Llama judge, one slow one on the real SmolLM2 judge."""

import math
import os
import random
import time

import numpy as np
import pytest
import torch
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
from transformers import BertConfig, BertModel, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from latentlm.evaluation import (
    NgramIndex,
    bleu,
    continuation_nll,
    diversity,
    encode_for_judge,
    evaluate_texts,
    generative_nll,
    generative_perplexity,
    judge_features,
    load_judge,
    mauve_from_features,
    memorisation,
    normalize_reference_texts,
    repetition_rates,
    rouge,
    score_ratios,
    task_scores,
    text_features,
    unigram_entropy,
)
from latentlm.evaluation import judge as judge_module
from latentlm.evaluation.perplexity import _batch_nll, encode_continuations, pad_batch


WORDS = "the a cat dog sat ran on in mat park big small red blue and then . , ! it is was".split()
TEXTS = [
    "the cat sat on the mat .",
    "a dog ran in the park",
    "the big red dog",
    "then it was blue , and small !",
    "cat",
]


@pytest.fixture(scope="module")
def tiny_tokenizer():
    vocab = {"<pad>": 0, "<bos>": 1, "<eos>": 2, "<unk>": 3}
    vocab.update({word: i + 4 for i, word in enumerate(WORDS)})
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.normalizer = normalizers.Lowercase()
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>", unk_token="<unk>"
    )


@pytest.fixture(scope="module")
def tiny_judge(tiny_tokenizer):
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tiny_tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
    )  # fmt: skip
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():  # sharper than the default init, so NLL differences between tokens are visible
        for param in model.parameters():
            if param.ndim == 2:
                param.mul_(8.0)
    return model, tiny_tokenizer


@pytest.fixture(scope="module")
def tiny_encoder(tiny_tokenizer):
    torch.manual_seed(1)
    config = BertConfig(
        vocab_size=len(tiny_tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
        num_attention_heads=2, max_position_embeddings=64,
    )  # fmt: skip
    return BertModel(config).eval(), tiny_tokenizer


def hand_perplexity(model, tokenizer, texts):
    """exp(mean token NLL), each text scored alone with BOS, no padding and no mask."""
    nll, count = 0.0, 0
    for text in texts:
        ids = torch.tensor([[tokenizer.bos_token_id] + tokenizer(text, add_special_tokens=False).input_ids])
        with torch.no_grad():
            log_probs = torch.log_softmax(model(ids).logits[0, :-1].double(), dim=-1)
        nll -= log_probs.gather(-1, ids[0, 1:, None]).sum().item()
        count += ids.shape[1] - 1
    return math.exp(nll / count)


# ------------------------------------------------------------------------------------------------- perplexity


def test_perplexity_matches_hand_computation(tiny_judge):
    model, tok = tiny_judge
    texts = TEXTS[:2]
    assert generative_perplexity(texts, model, tok) == pytest.approx(hand_perplexity(model, tok, texts), rel=1e-5)


def test_perplexity_is_batch_size_invariant(tiny_judge):
    model, tok = tiny_judge
    values = [generative_perplexity(TEXTS, model, tok, batch_size=bs) for bs in (1, 2, 3, 16)]
    assert values == pytest.approx([values[0]] * 4, rel=1e-5)
    assert values[0] == pytest.approx(hand_perplexity(model, tok, TEXTS), rel=1e-5)


def test_perplexity_is_padding_invariant(tiny_judge):
    """A short text padded next to a long one scores the same NLL as alone: NLLs add up."""
    model, tok = tiny_judge
    short, long = "the cat", "then it was blue , and small ! the big red dog sat on the mat"
    both = generative_nll([short, long], model, tok, batch_size=2)
    alone = [generative_nll([text], model, tok) for text in (short, long)]
    assert both.nll_sum == pytest.approx(sum(r.nll_sum for r in alone), rel=1e-5)
    assert both.num_tokens == sum(r.num_tokens for r in alone) == 2 + 16


def test_text_after_eos_is_ignored(tiny_judge):
    model, tok = tiny_judge
    reference = generative_perplexity(["the cat sat"], model, tok)
    assert generative_perplexity(["the cat sat <eos> on the mat"], model, tok) == pytest.approx(reference, rel=1e-6)
    assert generative_perplexity(["the cat sat <bos> on the mat"], model, tok) == pytest.approx(reference, rel=1e-6)
    cut = generative_perplexity(["the cat sat ||| on the mat"], model, tok, eos_text="|||")
    assert cut == pytest.approx(reference, rel=1e-6)


def test_bos_prepended_and_optional(tiny_judge):
    model, tok = tiny_judge
    assert encode_for_judge(["the cat"], tok) == [[tok.bos_token_id, 4, 6]]
    assert encode_for_judge(["the cat"], tok, bos_token_id=None) == [[4, 6]]
    with_bos = generative_nll(TEXTS[:3], model, tok)
    without = generative_nll(TEXTS[:3], model, tok, bos_token_id=None)
    assert with_bos.num_tokens - without.num_tokens == 3


def test_nll_chunking_is_exact(tiny_judge):
    model, tok = tiny_judge
    batch = pad_batch(encode_for_judge(TEXTS, tok), tok.pad_token_id, "cpu")
    nll, count = _batch_nll(model, *batch)
    nll_small, count_small = _batch_nll(model, *batch, chunk=3)
    assert count == count_small == sum(len(tok(t).input_ids) for t in TEXTS)
    assert nll_small == pytest.approx(nll, rel=1e-6)


def test_max_length_truncates(tiny_judge):
    model, tok = tiny_judge
    result = generative_nll(["the cat sat on the mat"], model, tok, max_length=3)
    assert result.num_tokens == 2
    assert result.perplexity == pytest.approx(generative_perplexity(["the cat"], model, tok), rel=1e-6)


def test_empty_texts_are_skipped_and_counted(tiny_judge):
    model, tok = tiny_judge
    result = generative_nll(["", "the cat", "   ", "<eos> dog"], model, tok)
    assert (result.num_samples, result.num_empty) == (1, 3)
    with pytest.warns(UserWarning, match="skipped 1 empty"):
        assert generative_perplexity(["", "the cat"], model, tok) == pytest.approx(result.perplexity)
    with pytest.raises(ValueError, match="texts"):
        generative_perplexity(["", " ", "<eos>"], model, tok)


def test_perplexity_bad_inputs(tiny_judge):
    model, tok = tiny_judge
    with pytest.raises(ValueError, match="texts"):
        generative_perplexity("the cat", model, tok)
    with pytest.raises(ValueError, match="texts"):
        generative_perplexity([], model, tok)
    with pytest.raises(ValueError, match=r"texts\[1\]"):
        generative_perplexity(["the cat", 3], model, tok)
    with pytest.raises(ValueError, match="batch_size"):
        generative_perplexity(TEXTS, model, tok, batch_size=0)
    with pytest.raises(ValueError, match="max_length"):
        generative_perplexity(TEXTS, model, tok, max_length=-1)


# ---------------------------------------------------------------------------------------------------- judge


def test_load_judge_from_folder(tmp_path, tiny_judge):
    model, tok = tiny_judge
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    loaded, loaded_tok = load_judge(tmp_path)
    assert not loaded.training and not any(p.requires_grad for p in loaded.parameters())
    assert generative_perplexity(TEXTS, loaded, loaded_tok) == pytest.approx(
        generative_perplexity(TEXTS, model, tok), rel=1e-5
    )


def test_gguf_judge_is_converted_once_and_cached(tmp_path, monkeypatch, tiny_judge):
    """The GGUF conversion is mocked: the test checks the cache logic, the slow test the real conversion."""
    model, tok = tiny_judge
    calls = []

    def fake_load_gguf(path):
        calls.append(path)
        return model, tok

    gguf = tmp_path / "Tiny-Judge.Q4.gguf"
    gguf.write_bytes(b"GGUF")
    monkeypatch.setattr(judge_module, "_load_gguf", fake_load_gguf)
    monkeypatch.setenv("LATENTLM_CACHE", str(tmp_path / "cache"))
    first, _ = load_judge(gguf)
    second, second_tok = load_judge(gguf)
    assert len(calls) == 1
    target = tmp_path / "cache" / "judge" / "tiny-judge.q4"
    assert (target / "latentlm_judge.json").is_file() and (target / "model.safetensors").is_file()
    assert not [p for p in target.parent.iterdir() if p.name.startswith(".")]  # no temp folder left
    assert generative_perplexity(TEXTS, second, second_tok) == pytest.approx(
        generative_perplexity(TEXTS, model, tok), rel=1e-5
    )
    load_judge(gguf, cache_dir=tmp_path / "other")
    assert len(calls) == 2 and (tmp_path / "other" / "tiny-judge.q4" / "config.json").is_file()


def test_load_judge_bad_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="name_or_path"):
        load_judge(tmp_path / "missing.gguf")


# --------------------------------------------------------------------------------------------------- entropy


def test_unigram_entropy():
    assert unigram_entropy(["a a a a"]) == 0.0
    assert unigram_entropy(["a b c d"]) == pytest.approx(math.log(4))
    assert unigram_entropy(["a a a a", "a b c d"]) == pytest.approx(math.log(4) / 2)
    assert unigram_entropy([[5, 5, 7, 7], torch.tensor([1, 2, 3, 4])]) == pytest.approx(
        (math.log(2) + math.log(4)) / 2
    )


def test_unigram_entropy_with_tokenizer_and_empty(tiny_tokenizer):
    assert unigram_entropy(["the cat, the dog"], tiny_tokenizer) == pytest.approx(
        -(0.4 * math.log(0.4) + 3 * 0.2 * math.log(0.2))
    )
    with pytest.warns(UserWarning, match="skipped 1"):
        assert unigram_entropy(["", "a b"]) == pytest.approx(math.log(2))
    for bad in ([], "a b", ["", " "]):
        with pytest.raises(ValueError, match="samples"):
            unigram_entropy(bad)


# ------------------------------------------------------------------------------------- diversity, memorisation


def test_diversity_and_repetition():
    assert diversity(["the cat sat on the mat"]) == 1.0
    repeated = ["the cat the cat the cat the cat"]
    rates = repetition_rates(repeated)
    assert rates[2] == pytest.approx(1 - 2 / 7) and rates[4] == pytest.approx(1 - 2 / 5)
    assert diversity(repeated) == pytest.approx((2 / 7) * (2 / 6) * (2 / 5))
    assert diversity(["The cat sat.", "the cat sat !"]) < 1.0  # pooled, lowercased: samples copying each other
    assert diversity(["The cat sat.", "the cat sat !"], per_sample=True) == 1.0


def test_repetition_too_short_is_nan():
    with pytest.warns(UserWarning, match="n = \\[4\\]"):
        rates = repetition_rates(["a b c"])
    assert rates[2] == 0.0 and math.isnan(rates[4])
    with pytest.raises(ValueError, match="ns"):
        repetition_rates(["a b c"], ns=(0,))
    with pytest.raises(ValueError, match="texts"):
        diversity([])


def test_memorisation():
    train = ["The cat sat on the mat and the dog ran in the park.", "A big red dog."]
    assert memorisation(train, train) == 1.0
    assert memorisation(["green ideas sleep furiously tonight"], train) == 0.0
    # 4-grams of "the cat sat on the moon": 2 of 3 appear in training
    assert memorisation(["The cat sat on the moon"], train) == pytest.approx(2 / 3)
    index = NgramIndex(train, n=4)
    assert memorisation(["the cat sat on the moon"], index) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="train_texts"):
        memorisation(train, "the cat sat on the mat")
    with pytest.raises(ValueError, match="n=3"):
        memorisation(train, index, n=3)
    with pytest.raises(ValueError, match="texts"):
        memorisation("the cat", train)


# ---------------------------------------------------------------------------------------------- BLEU / ROUGE


def test_bleu_and_rouge():
    hyps = ["the cat sat on the mat today", "a dog ran in the park happily"]
    assert bleu(hyps, hyps) == pytest.approx(100.0)
    assert bleu(["The Cat sat on the mat today", hyps[1]], hyps) == pytest.approx(100.0)  # lowercased
    assert bleu(hyps, [[ref] for ref in hyps]) == pytest.approx(100.0)
    assert bleu(hyps, ["completely different words here now", "nothing shared"]) < 5.0
    scores = rouge(hyps, hyps)
    assert scores["rouge1"] == pytest.approx(100.0) and scores["rougeL_se"] == 0.0
    partial = rouge(hyps, ["the cat sat", "a dog ran in the park"])
    assert 0 < partial["rouge2"] < partial["rouge1"] < 100 and partial["rouge1_se"] > 0
    with pytest.raises(ValueError, match="references"):
        bleu(hyps, hyps[:1])
    with pytest.raises(ValueError, match="hypotheses"):
        rouge("the cat", ["the cat"])


def test_task_scores_by_hand():
    """Corpus BLEU sums n-gram counts over pairs; ROUGE F1 is a mean over pairs (counts worked out below)."""
    hyps, refs = ["the cat sat on the mat", "a dog ran"], ["the cat sat on a mat", "a dog ran in the park"]
    # pair 1 matches 5/6 unigrams (one "the" clipped), 3/5 bigrams, 2/4 trigrams, 1/3 4-grams, same length: BP = 1
    one = task_scores(hyps[:1], refs[:1])
    assert one["bleu"] == pytest.approx(100 * (5 / 6 * 3 / 5 * 2 / 4 * 1 / 3) ** 0.25)
    assert one["rouge1"] == pytest.approx(100 * 5 / 6) and one["rouge2"] == pytest.approx(60.0)
    assert one["rougeL"] == pytest.approx(100 * 5 / 6)  # LCS "the cat sat on mat"
    # pair 2 adds 3/3, 2/2, 1/1, 0/0 matches; 9 hypothesis words for 12 reference words: BP = exp(1 - 12 / 9)
    both = task_scores(hyps, refs)
    assert both["bleu"] == pytest.approx(100 * math.exp(1 - 12 / 9) * (8 / 9 * 5 / 7 * 3 / 5 * 1 / 3) ** 0.25)
    # pair 2: P = 1, R = 3/6 -> F1 = 2/3 (ROUGE-1 and -L); bigrams P = 1, R = 2/5 -> F1 = 4/7
    assert both["rouge1"] == pytest.approx(100 * (5 / 6 + 2 / 3) / 2) == both["rougeL"]
    assert both["rouge2"] == pytest.approx(100 * (3 / 5 + 4 / 7) / 2)
    assert score_ratios({"bleu": 30.0, "rougeL": 10.0, "rouge1": 5.0}, {"bleu": 20.0, "rougeL": 0.0}, ("bleu", "rougeL",
                        "rouge1")) == {"bleu_ratio": 1.5, "rougeL_ratio": None}  # fmt: skip


def test_continuation_nll_counts_only_the_continuation(tiny_judge):
    """NLL(continuation | prompt) = NLL(prompt + continuation) - NLL(prompt), both with BOS (word-level tokenizer)."""
    model, tok = tiny_judge
    prompts, texts = ["the cat", "a dog ran"], ["the cat sat on the mat .", "a dog ran in the park"]
    whole, alone = generative_nll(texts, model, tok), generative_nll(prompts, model, tok)
    result = continuation_nll(prompts, texts, model, tok, batch_size=1)
    assert result.num_tokens == 5 + 3 and result.num_empty == 0
    assert result.nll_sum == pytest.approx(whole.nll_sum - alone.nll_sum, rel=1e-5)
    assert continuation_nll(prompts, texts, model, tok, batch_size=2).nll_sum == pytest.approx(
        result.nll_sum, rel=1e-5
    )
    # a prompt that ends inside a token: the token it ends in is the continuation's first
    assert encode_continuations(["the ca"], ["the cat sat"], tok) == [([tok.bos_token_id, 4, 6, 8], 2)]
    # nothing after the prompt, or only the judge's EOS: counted as empty
    with pytest.raises(ValueError, match="none of the 2 texts"):
        continuation_nll(["the cat", "the"], ["the cat", "the <eos> mat"], model, tok)
    assert continuation_nll(["the", "the"], ["the <eos> mat", "the cat"], model, tok).num_empty == 1
    with pytest.raises(ValueError, match=r"texts\[0\] does not begin with prompts\[0\]"):
        continuation_nll(["a dog"], ["the cat sat"], model, tok)
    with pytest.raises(ValueError, match="one prompt per text"):
        continuation_nll(["the"], ["the cat", "the dog"], model, tok)


# ----------------------------------------------------------------------------------------------------- MAUVE


def test_mauve_same_distribution_high_shifted_low():
    rng = np.random.default_rng(0)
    p, q = rng.normal(size=(200, 16)), rng.normal(size=(200, 16))
    shifted = rng.normal(size=(200, 16)) + 3.0
    assert mauve_from_features(p, q) > 0.9
    assert mauve_from_features(p, shifted) < 0.1
    assert mauve_from_features(p, q) == mauve_from_features(p, q)  # fixed seed


def test_mauve_bad_inputs():
    features = np.zeros((10, 4))
    with pytest.raises(ValueError, match="p_features"):
        mauve_from_features(np.zeros(10), features)
    with pytest.raises(ValueError, match="same dim"):
        mauve_from_features(features, np.zeros((10, 5)))
    with pytest.raises(ValueError, match="num_buckets"):
        mauve_from_features(features, features, num_buckets=0)
    with pytest.raises(ValueError, match="features"):
        text_features(TEXTS, features="bert")


def test_judge_features_use_last_real_token(tiny_judge):
    model, tok = tiny_judge
    batched = judge_features(TEXTS, model, tok, batch_size=5)
    alone = np.concatenate([judge_features([text], model, tok) for text in TEXTS])
    assert batched.shape == (5, 32)
    np.testing.assert_allclose(batched, alone, rtol=1e-4, atol=1e-5)
    assert not np.allclose(batched[0], batched[1])
    with pytest.raises(ValueError, match="empty"):
        judge_features(["the cat", ""], model, tok)


def test_encoder_features_padding_invariant(tiny_encoder):
    model, tok = tiny_encoder
    batched = text_features(TEXTS, features="encoder", model=model, tokenizer=tok, batch_size=5)
    alone = np.concatenate([text_features([t], features="encoder", model=model, tokenizer=tok) for t in TEXTS])
    assert batched.shape == (5, 16)
    np.testing.assert_allclose(batched, alone, rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------------------------------- report, references


def test_normalize_reference_texts(tiny_tokenizer):
    assert normalize_reference_texts(["The Cat, sat!"], tiny_tokenizer) == ["the cat , sat !"]
    assert normalize_reference_texts(["The cat sat on the mat"], tiny_tokenizer, max_tokens=3) == ["the cat sat"]
    assert normalize_reference_texts(["The cat sat", "a dog ran"], tiny_tokenizer, max_tokens=[1, 2]) == [
        "the",
        "a dog",
    ]
    with pytest.raises(ValueError, match="max_tokens"):
        normalize_reference_texts(["a", "b"], tiny_tokenizer, max_tokens=[1])
    with pytest.raises(ValueError, match="texts"):
        normalize_reference_texts("a b", tiny_tokenizer)


def test_evaluate_texts(tiny_judge, tiny_encoder):
    model, tok = tiny_judge
    samples = TEXTS * 4 + ["", "the cat ||| sat"]
    report = evaluate_texts(
        samples, judge=(model, tok), reference_texts=list(reversed(TEXTS * 4)), train_texts=TEXTS,
        mauve_features="encoder", encoder=tiny_encoder, eos_text="|||",
    )  # fmt: skip
    assert report["num_samples"] == 22 and report["num_empty"] == 1
    kept = TEXTS * 4 + ["the cat "]
    assert report["gen_ppl"] == pytest.approx(generative_perplexity(kept, model, tok), rel=1e-6)
    assert report["entropy"] == pytest.approx(unigram_entropy(kept, tok))
    assert report["diversity"] == pytest.approx(diversity(kept))
    assert report["memorisation"] == 1.0
    assert 0.0 <= report["mauve"] <= 1.0 and report["mauve_features"] == "encoder"
    with_judge_features = evaluate_texts(samples, judge=(model, tok), reference_texts=TEXTS * 4)
    assert 0.0 <= with_judge_features["mauve"] <= 1.0
    no_judge = evaluate_texts(["a b c d", "a a"], judge=False)
    assert no_judge["gen_ppl"] is None and no_judge["entropy"] == pytest.approx(math.log(4) / 2)
    with pytest.raises(ValueError, match="mauve_features"):
        evaluate_texts(TEXTS, judge=False, reference_texts=TEXTS)
    with pytest.raises(ValueError, match="judge"):
        evaluate_texts(TEXTS, judge="not a (model, tokenizer) pair".split())


# ------------------------------------------------------------------------------------------------- real judge


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("RUN_SLOW"), reason="needs RUN_SLOW=1 (loads the SmolLM2 judge)")
def test_real_judge_prefers_english_to_shuffled_words():
    start = time.perf_counter()
    model, tok = load_judge()
    load_seconds = time.perf_counter() - start
    sentences = [
        "Once upon a time, there was a little girl named Lily. She loved to play in the garden with her dog.",
        "It is a truth universally acknowledged, that a single man in possession of a good fortune, must be in "
        "want of a wife.",
        "The committee will meet on Tuesday morning to discuss the budget for the next financial year.",
    ]
    rng = random.Random(0)
    shuffled = [" ".join(rng.sample(s.split(), len(s.split()))) for s in sentences]
    english = generative_perplexity(sentences, model, tok)
    scrambled = generative_perplexity(shuffled, model, tok)
    print(f"judge load {load_seconds:.1f} s; PPL english {english:.2f}, shuffled {scrambled:.2f}")
    assert english < 40 and scrambled > 5 * english
