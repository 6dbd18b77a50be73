"""Compares warm-start ELF runs with their cold-start twin at the same budget, from their ``train_log.jsonl`` files.

For every warm run: the first evaluated step at which its validation loss is at most the cold run's final one (the
issue's target: at most half of the cold run's steps), and its own final validation loss.

    python benchmarks/warm-start/compare.py COLD_LOG warm=WARM_LOG [warm-fit=WARM_LOG ...] --out results.json
"""

import argparse
import json
from pathlib import Path


def read_log(path: str) -> tuple[dict[int, float], dict[int, float]]:
    """(step -> eval_loss, step -> training denoise_loss) of one run."""
    evals, denoise = {}, {}
    for line in Path(path).read_text().splitlines():
        record = json.loads(line)
        if "eval_loss" in record:
            evals[record["step"]] = record["eval_loss"]
        elif "denoise_loss" in record:
            denoise[record["step"]] = record["denoise_loss"]
    return evals, denoise


def steps_to_reach(curve: dict[int, float], target: float) -> int | None:
    return next((step for step in sorted(curve) if curve[step] <= target), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cold")
    parser.add_argument("warm", nargs="+", help="NAME=LOG of each warm run")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    runs = {"cold": read_log(args.cold)}
    for item in args.warm:
        name, path = item.split("=", 1)
        runs[name] = read_log(path)
    cold = runs["cold"][0]
    final_step = max(cold)
    target = cold[final_step]
    result = {"cold_final_step": final_step, "cold_final_eval_loss": target, "warm": {}}
    steps = sorted(set().union(*(curve for curve, _ in runs.values())))
    print(f"{'step':>6} " + " ".join(f"{name:>10}" for name in runs))
    for step in steps:
        print(f"{step:>6} " + " ".join(f"{curve.get(step, float('nan')):>10.4f}" for curve, _ in runs.values()))
    print(f"cold: final validation loss {target:.4f} at step {final_step}")
    for name, (curve, _) in runs.items():
        if name == "cold":
            continue
        reached = steps_to_reach(curve, target)
        ratio = None if reached is None else reached / final_step
        result["warm"][name] = {
            "final_eval_loss": curve[max(curve)],
            "steps_to_reach_cold_final": reached,
            "ratio_to_cold_steps": ratio,
        }
        print(
            f"{name}: reaches it at step {reached}"
            + ("" if ratio is None else f" ({ratio:.2f}x cold's steps)")
            + f"; final validation loss {curve[max(curve)]:.4f}"
        )
    result["eval_loss"] = {name: curve for name, (curve, _) in runs.items()}
    result["train_denoise_loss"] = {name: denoise for name, (_, denoise) in runs.items()}
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
