"""Summarise the AR-overfitting check of benchmarks/corpus/run.sh: validation loss per evaluation on each corpus,
and where the best one falls. Reads ``ar-{prose,large}-train_log.jsonl`` and ``table.json``; writes
``ar-overfitting.md`` and ``ar-overfitting.json``."""

from __future__ import annotations

import json
from pathlib import Path


HERE = Path(__file__).parent
CORPORA = {"prose": "english-prose", "large": "english-large"}
BENCHMARK_TOKENS = 3000 * 128 * 128  # examples/configs/ar-small-*.yaml: 3,000 steps of 128 sequences of 128 tokens


def read_log(path: Path) -> tuple[dict[int, float], dict[int, float]]:
    """``({step: eval_loss}, {step: train loss})`` of a ``train_log.jsonl``."""
    evals, train = {}, {}
    for line in path.read_text().splitlines():
        row = json.loads(line)
        if "eval_loss" in row:
            evals[row["step"]] = row["eval_loss"]
        elif "loss" in row:
            train[row["step"]] = row["loss"]
    return evals, train


def main() -> None:
    table = json.loads((HERE / "table.json").read_text())["totals"]
    logs = {key: read_log(HERE / f"ar-{key}-train_log.jsonl") for key in CORPORA}
    steps = sorted(set().union(*(evals for evals, _ in logs.values())))
    result = {}
    # The loop's eval_loss reads the first eval_batches validation batches: BBC News articles in both mixes.
    lines = ["| step | " + " | ".join(f"run on {name}: loop eval_loss (BBC val)" for name in CORPORA.values()) + " |"]
    lines.append("|---:|" + "---:|" * len(CORPORA))
    for step in steps:
        cells = [f"{logs[key][0][step]:.3f}" if step in logs[key][0] else "" for key in CORPORA]
        lines.append(f"| {step} | " + " | ".join(cells) + " |")
    lines.append("")
    for key, name in CORPORA.items():
        evals, _ = logs[key]
        best = min(evals, key=evals.get)
        train_tokens = table[name]["train"]["tokens"]
        result[name] = {
            "eval_loss": evals,
            "best_step": best,
            "best_eval_loss": evals[best],
            "last_step": max(evals),
            "best_at_last_evaluation": best == max(evals),
            "train_tokens": train_tokens,
            "passes_at_benchmark_budget": BENCHMARK_TOKENS / train_tokens,
        }
        lines.append(
            f"- trained on {name}: best loop eval_loss {evals[best]:.3f} at step {best} of {max(evals)} "
            f"({'the last evaluation' if best == max(evals) else 'before the last evaluation'}); "
            f"{train_tokens:,} training tokens, so the 3,000-step benchmark budget "
            f"({BENCHMARK_TOKENS / 1e6:.1f}M tokens) is {BENCHMARK_TOKENS / train_tokens:.1f} passes."
        )
    (HERE / "ar-overfitting.md").write_text("\n".join(lines) + "\n")
    (HERE / "ar-overfitting.json").write_text(json.dumps(result, indent=1) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
