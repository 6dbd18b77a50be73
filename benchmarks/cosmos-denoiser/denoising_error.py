"""Held-out denoising error of each row of run_rows.sh: x0-MSE on the normalised latents of the test split.

Unlike the training loop's validation loss (random times, and a self-conditioning coin whose draw differs between the
per-batch and per-example rows), every row here sees the same latents, times and noise: the first NUM_SEQUENCES
128-token sequences of english-prose's test split, encoded by the rows' shared autoencoder; t on a uniform grid of
16 midpoints in (0, 1); noise from a generator seeded with 0. Two errors per row: without self-conditioning, and with
the row's own first estimate as self-conditioning (what every sampling step but the first sees).

usage: python benchmarks/cosmos-denoiser/denoising_error.py ROW [ROW ...] [--out FILE]
"""

import argparse
import json
import time
from pathlib import Path

import torch

from latentlm import CosmosLMPipeline
from latentlm.data import add_model_encoder_activations, load_text_dataset, tokenize_and_chunk


RUNS = Path("runs/cosmos-denoiser")
NUM_SEQUENCES, NUM_TIMES = 128, 16


def held_out_latents(pipe) -> torch.Tensor:
    autoencoder, tokenizer = pipe.autoencoder, pipe.tokenizer
    corpus = load_text_dataset("english-prose", validation_split=None)
    rows = tokenize_and_chunk(corpus["test"], tokenizer, autoencoder.config.max_position_embeddings)
    rows = add_model_encoder_activations(rows.select(range(NUM_SEQUENCES)), autoencoder, device="cpu", batch_size=32)
    batch = rows.with_format("torch")[:]
    with torch.no_grad():
        latents = autoencoder.encode(
            batch["input_ids"], batch["attention_mask"], encoder_activations=batch["encoder_activations"].float()
        )
        return autoencoder.normalize_latents(latents)


@torch.no_grad()
def denoising_errors(model, x0: torch.Tensor) -> dict:
    scheduler, generator = model.noise_scheduler, torch.Generator().manual_seed(0)
    errors = {"mse": [], "mse_self_conditioned": []}
    for t in (torch.arange(NUM_TIMES) + 0.5) / NUM_TIMES:
        noisy = scheduler.add_noise(x0, torch.randn(x0.shape, generator=generator), t.expand(len(x0)))
        first = model.denoise(noisy, t.expand(len(x0)))
        second = model.denoise(noisy, t.expand(len(x0)), self_condition=first)
        errors["mse"].append((first - x0).square().mean().item())
        errors["mse_self_conditioned"].append((second - x0).square().mean().item())
    summary = {key: sum(values) / len(values) for key, values in errors.items()}
    summary["mse_by_t"] = errors["mse_self_conditioned"]
    return summary


def training_record(row: str) -> dict:
    log = [json.loads(line) for line in (RUNS / row / "train_log.jsonl").read_text().splitlines() if line.strip()]
    last = {key: value for record in log for key, value in record.items() if key.endswith("eval_loss")}
    wall = RUNS / row / "wall_seconds"
    return {
        **last,
        "steps": max(r["step"] for r in log),
        "wall_seconds": float(wall.read_text()) if wall.exists() else None,
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("rows", nargs="+")
    parser.add_argument("--out", default="benchmarks/cosmos-denoiser/denoising_error.json")
    args = parser.parse_args()
    results, x0 = {}, None
    for row in args.rows:
        pipe = CosmosLMPipeline.from_pretrained(str(RUNS / row))
        model = pipe.model.float().eval()
        if x0 is None:
            x0 = held_out_latents(pipe)
        start = time.perf_counter()
        results[row] = {
            **denoising_errors(model, x0),
            **training_record(row),
            "denoiser_parameters": sum(p.numel() for p in model.parameters()),
            "eval_seconds": time.perf_counter() - start,
        }
        print(row, json.dumps({k: v for k, v in results[row].items() if k != "mse_by_t"}))
    Path(args.out).write_text(json.dumps(results, indent=1))
    Path(args.out).with_suffix(".md").write_text(markdown(results))


def markdown(results: dict) -> str:
    lines = [
        "| row | held-out x0-MSE | with self-conditioning | training eval loss (EMA) | steps | wall s | parameters |",
        "|---|---|---|---|---|---|---|",
    ]
    for row, r in results.items():
        lines.append(
            f"| {row} | {r['mse']:.4f} | {r['mse_self_conditioned']:.4f} | {r.get('ema_eval_loss', float('nan')):.4f} "
            f"| {r['steps']} | {r['wall_seconds'] or '–'} | {r['denoiser_parameters'] / 1e6:.3f} M |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
