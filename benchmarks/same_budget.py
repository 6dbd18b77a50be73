"""Trains variants of one config at the same budget and seed, and tabulates their validation-loss curves.

    python benchmarks/same_budget.py CONFIG.yaml --output_dir runs/x --results benchmarks/<topic> \
        --variant adamw: --variant muon:optimizer=muon [--set max_steps=400 --set eval_steps=50 ...] [--samples 4]

Every variant is ``latentlm train CONFIG`` with the shared ``--set`` overrides, then its own (``name:key=value,...``),
run one after the other in this process. Writes ``results.json`` (per variant: the overrides, the ``eval_loss`` curve,
the final EMA evaluation, the training wall time, and with ``--samples N`` N texts sampled from the export with seed
0) and ``RESULTS.md`` (the curves side by side) into ``--results``.
"""

import argparse
import json
import platform
import time
from pathlib import Path

import torch
import yaml

from latentlm.training import load_config, train


def parse_variant(text: str) -> tuple[str, dict]:
    name, _, rest = text.partition(":")
    overrides = {}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        overrides[key] = yaml.safe_load(value)
    return name, overrides


def run_variant(config_path: str, output_dir: Path, shared: dict, overrides: dict) -> dict:
    config = load_config(config_path, {**shared, **overrides, "output_dir": str(output_dir), "report_to": "none"})
    start = time.perf_counter()
    result = train(config)
    seconds = time.perf_counter() - start
    records = [json.loads(line) for line in (output_dir / "train_log.jsonl").read_text().splitlines()]
    return {
        "overrides": overrides,
        "eval_loss": {r["step"]: r["eval_loss"] for r in records if "eval_loss" in r},
        "ema_eval_loss": next((r["ema_eval_loss"] for r in records if "ema_eval_loss" in r), None),
        "final_train_loss": result.train_loss,
        "train_seconds": round(seconds, 1),
    }


def sample_texts(output_dir: Path, num_samples: int, gen_length: int) -> list[str]:
    from latentlm import AutoPipelineForTextGeneration

    pipe = AutoPipelineForTextGeneration.from_pretrained(output_dir)
    out = pipe(batch_size=num_samples, gen_length=gen_length, generator=torch.Generator().manual_seed(0))
    return list(out.texts)


def write_markdown(path: Path, command: str, results: dict) -> None:
    names = list(results["variants"])
    steps = sorted({int(s) for v in results["variants"].values() for s in v["eval_loss"]})
    lines = [
        f"Machine: {results['machine']}. Command:",
        "",
        f"    {command}",
        "",
        "| step | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for step in steps:
        cells = [results["variants"][n]["eval_loss"].get(step) for n in names]
        lines.append(f"| {step} | " + " | ".join("" if c is None else f"{c:.4f}" for c in cells) + " |")
    for label, key in (("EMA export", "ema_eval_loss"), ("train seconds", "train_seconds")):
        cells = [results["variants"][n][key] for n in names]
        lines.append(f"| {label} | " + " | ".join("" if c is None else f"{c:.4g}" for c in cells) + " |")
    for name in names:
        for i, text in enumerate(results["variants"][name].get("samples", [])):
            lines += ["", f"{name} sample {i}:", "", f"> {text}"]
    path.write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config")
    parser.add_argument("--output_dir", required=True, help="runs go to OUTPUT_DIR/<variant>")
    parser.add_argument("--results", required=True, help="folder for results.json and RESULTS.md")
    parser.add_argument("--variant", action="append", required=True, help="name:key=value,key=value")
    parser.add_argument("--set", action="append", default=[], help="key=value shared by every variant")
    parser.add_argument("--samples", type=int, default=0, help="texts to sample from each export (seed 0)")
    parser.add_argument("--gen_length", type=int, default=64)
    args = parser.parse_args()

    shared = parse_variant("shared:" + ",".join(args.set))[1]
    results_dir = Path(args.results)
    results_dir.mkdir(parents=True, exist_ok=True)
    results = {
        "config": args.config,
        "shared": shared,
        "machine": f"{platform.machine()} CPU, {torch.get_num_threads()} torch threads (2 cores shared by 6 users)",
        "variants": {},
    }
    for name, overrides in map(parse_variant, args.variant):
        output_dir = Path(args.output_dir) / name
        results["variants"][name] = run_variant(args.config, output_dir, shared, overrides)
        if args.samples:
            results["variants"][name]["samples"] = sample_texts(output_dir, args.samples, args.gen_length)
        (results_dir / "results.json").write_text(json.dumps(results, indent=1))
    command = "python benchmarks/same_budget.py " + " ".join(
        [args.config, "--output_dir", args.output_dir, "--results", args.results]
        + [f"--variant {v}" for v in args.variant]
        + [f"--set {s}" for s in args.set]
        + ([f"--samples {args.samples}"] if args.samples else [])
    )
    write_markdown(results_dir / "RESULTS.md", command, results)


if __name__ == "__main__":
    main()
