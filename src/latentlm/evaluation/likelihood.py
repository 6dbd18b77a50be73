"""Likelihood of held-out text in bits per token: a diffusion model's variational bound (NFDM) beside an
autoregressive model's NLL, on the same tokenised blocks (``latentlm likelihood``).

* A saved diffusion pipeline whose model has a bound (``model.compute_bound_terms``, NFDM) gets its ELBO: each
  sequence is scored ``num_draws`` times (fresh times from the model's time sampler, fresh noise), and the result is
  ``sum of per-sequence means / number of tokens / ln 2``. The reported standard error is the Monte Carlo one for this
  held-out set: ``sqrt(sum_i var_i / num_draws) / num_tokens / ln 2`` with ``var_i`` the sample variance of sequence
  ``i``'s draws (it does not include the sampling of the held-out text itself).
* A saved causal LM (the ``ar`` method's output: a transformers model and its tokenizer) gets its exact NLL on the
  same blocks, with the token-weighted helper of `latentlm.evaluation.perplexity`. Position ``j`` predicts token
  ``j + 1``, so the first token of each block is context only: the AR scores ``seq_len - 1`` tokens a block, the
  bound all ``seq_len``. Both are reported per scored token.

Blocks are the held-out split packed into ``seq_len``-token sequences exactly as training packs them; give both
models the same ``--seq-len`` (and tokenizer) to compare them.
"""

from __future__ import annotations

import argparse
import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ._utils import check_positive_int


@dataclass(frozen=True)
class LikelihoodResult:
    """Outcome of :func:`run_likelihood`.

    Attributes:
        path: the model folder.
        kind: ``"elbo"`` (an upper bound on the NLL, diffusion) or ``"nll"`` (exact, autoregressive).
        bits_per_token: the bound or the NLL per scored token, in bits.
        standard_error: Monte Carlo standard error of ``bits_per_token`` (``None`` for the exact NLL).
        num_sequences, num_tokens: held-out blocks and scored tokens.
        num_draws: Monte Carlo draws per sequence (1 for the NLL).
        seq_len, dataset, split: the blocks.
    """

    path: str
    kind: str
    bits_per_token: float
    standard_error: float | None
    num_sequences: int
    num_tokens: int
    num_draws: int
    seq_len: int
    dataset: str
    split: str

    def summary(self) -> str:
        error = "" if self.standard_error is None else f" +- {self.standard_error:.4f} (MC s.e.)"
        return (
            f"{self.path}: {self.kind} {self.bits_per_token:.4f}{error} bits/token on {self.num_tokens} tokens "
            f"({self.num_sequences} x {self.seq_len}-token blocks of {self.dataset}/{self.split}, "
            f"{self.num_draws} draw(s) per block)"
        )


def held_out_blocks(tokenizer, dataset="english-prose", split: str = "test", seq_len: int = 64, num_sequences=256):
    """The first ``num_sequences`` packed ``seq_len``-token blocks of ``split`` (a `datasets.Dataset`)."""
    from ..data import load_text_dataset, tokenize_and_chunk

    corpus = load_text_dataset(dataset, validation_split=None) if isinstance(dataset, (str, os.PathLike)) else dataset
    if split not in corpus:
        raise ValueError(f"`split` must be one of the dataset's splits {sorted(corpus)}, got {split!r}.")
    blocks = tokenize_and_chunk(corpus[split], tokenizer, seq_len)
    if len(blocks) == 0:
        raise ValueError(f"The {split!r} split has no block of {seq_len} tokens.")
    return blocks.select(range(min(num_sequences, len(blocks))))


def _batches(blocks, batch_size: int, device):
    from .reconstruction import iterate_batches

    for batch in iterate_batches(blocks, batch_size):
        yield batch["input_ids"].to(device), batch["attention_mask"].to(device)


@torch.no_grad()
def bound_bits_per_token(model, blocks, *, num_draws: int = 4, batch_size: int = 16, seed: int = 0, device="cpu"):
    """``(bits_per_token, standard_error, num_tokens)`` of a model's variational bound on ``blocks`` (see the module
    docstring); the model's randomness is drawn from ``seed`` without touching the global RNG."""
    check_positive_int(batch_size, "batch_size")
    if isinstance(num_draws, bool) or not isinstance(num_draws, int) or num_draws < 2:
        raise ValueError(f"`num_draws` must be an integer >= 2 (the standard error needs two), got {num_draws!r}.")
    model.eval()
    total, variance, num_tokens = 0.0, 0.0, 0.0
    devices = [] if torch.device(device).type == "cpu" else [torch.device(device)]
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        for input_ids, attention_mask in _batches(blocks, batch_size, device):
            draws, counts = [], None
            for _ in range(num_draws):
                terms = model.compute_bound_terms(input_ids, attention_mask)
                draws.append(terms.total.double())
                counts = terms.num_tokens.double()
            draws = torch.stack(draws)  # (num_draws, batch)
            total += draws.mean(0).sum().item()
            variance += (draws.var(0, unbiased=True) / num_draws).sum().item()
            num_tokens += counts.sum().item()
    return total / num_tokens / math.log(2), math.sqrt(variance) / num_tokens / math.log(2), int(num_tokens)


@torch.no_grad()
def causal_lm_bits_per_token(model, blocks, *, batch_size: int = 16, device="cpu"):
    """``(bits_per_token, num_tokens)``: the exact NLL of a causal LM on ``blocks`` (first token of a block unscored)."""
    from .perplexity import _batch_nll

    check_positive_int(batch_size, "batch_size")
    model.eval()
    nll, num_tokens = 0.0, 0
    for input_ids, attention_mask in _batches(blocks, batch_size, device):
        batch_nll, batch_tokens = _batch_nll(model, input_ids, attention_mask)
        nll += batch_nll
        num_tokens += batch_tokens
    return nll / num_tokens / math.log(2), num_tokens


def load_scored_model(path, device="cpu"):
    """``(model, tokenizer, kind)`` for a saved folder: a diffusion pipeline with a bound (``"elbo"``) or a causal
    LM (``"nll"``)."""
    path = str(path)
    if (Path(path) / "model_index.json").is_file():
        from ..pipelines import AutoPipelineForTextGeneration

        pipe = AutoPipelineForTextGeneration.from_pretrained(path, dtype=torch.float32)
        if not hasattr(pipe.model, "compute_bound_terms"):
            raise ValueError(
                f"`path` ({path}) holds a {type(pipe.model).__name__}, which has no likelihood bound; "
                "`latentlm likelihood` scores NFDM pipelines and causal LMs."
            )
        return pipe.model.to(device), pipe.tokenizer, "elbo"
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).to(device)
    except (OSError, ValueError) as err:
        raise ValueError(f"`path` ({path}) is neither a saved pipeline nor a causal LM: {err}") from err
    return model, AutoTokenizer.from_pretrained(path), "nll"


def run_likelihood(
    path,
    *,
    dataset="english-prose",
    split: str = "test",
    seq_len: int | None = None,
    num_sequences: int = 256,
    num_draws: int = 4,
    batch_size: int = 16,
    seed: int = 0,
    device: str = "cpu",
) -> LikelihoodResult:
    """Bits per token of the model saved in ``path`` on held-out text; ``seq_len`` defaults to the model's
    ``max_position_embeddings``. See the module docstring."""
    check_positive_int(num_sequences, "num_sequences")
    model, tokenizer, kind = load_scored_model(path, device)
    seq_len = check_positive_int(seq_len or model.config.max_position_embeddings, "seq_len")
    blocks = held_out_blocks(tokenizer, dataset, split, seq_len, num_sequences)
    if kind == "elbo":
        bits, error, num_tokens = bound_bits_per_token(
            model, blocks, num_draws=num_draws, batch_size=batch_size, seed=seed, device=device
        )
    else:
        bits, num_tokens = causal_lm_bits_per_token(model, blocks, batch_size=batch_size, device=device)
        error, num_draws = None, 1
    name = dataset if isinstance(dataset, (str, os.PathLike)) else "<dataset>"
    return LikelihoodResult(
        str(path), kind, bits, error, len(blocks), num_tokens, num_draws, seq_len, str(name), split
    )


def add_likelihood_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Arguments of ``latentlm likelihood`` (see :func:`run_likelihood`)."""
    parser.add_argument("path", help="a saved NFDM pipeline folder or a causal LM folder (the ar method's output)")
    parser.add_argument("--corpus", "--dataset", dest="dataset", default="english-prose",
                        help="corpus name or local file/folder of texts (default english-prose)")  # fmt: skip
    parser.add_argument("--split", default="test", help="the held-out split (default test)")
    parser.add_argument("--seq-len", type=int, default=None, help="tokens per block (default: the model's maximum)")
    parser.add_argument("--num-sequences", type=int, default=256, help="first packed blocks of the split")
    parser.add_argument("--num-draws", type=int, default=4, help="Monte Carlo draws per block for a bound (>= 2)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--output", help="also write the result to this JSON file")
    return parser


def run_likelihood_from_args(args: argparse.Namespace) -> LikelihoodResult:
    """Run ``latentlm likelihood`` from parsed arguments and print one line."""
    try:
        result = run_likelihood(
            args.path, dataset=args.dataset, split=args.split, seq_len=args.seq_len, num_sequences=args.num_sequences,
            num_draws=args.num_draws, batch_size=args.batch_size, seed=args.seed, device=args.device,
        )  # fmt: skip
    except ValueError as err:
        raise SystemExit(f"latentlm likelihood: error: {err}") from err
    print(result.summary())
    if args.output:
        Path(args.output).write_text(json.dumps(asdict(result), indent=2) + "\n")
    return result


__all__ = [
    "LikelihoodResult",
    "add_likelihood_arguments",
    "bound_bits_per_token",
    "causal_lm_bits_per_token",
    "held_out_blocks",
    "run_likelihood",
    "run_likelihood_from_args",
]
