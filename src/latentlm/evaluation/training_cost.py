"""Wall-clock cost of one training step (forward, backward, AdamW) of the methods' training heads, built from their
training YAML configs, on random token batches of the configs' ``seq_len`` and batch size.

    python -m latentlm.evaluation.training_cost examples/configs/elf-tiny.yaml examples/configs/nfdm-tiny.yaml

Methods with a frozen encoder (ELF, Cosmos' autoencoder) are timed with precomputed encoder activations, as training
runs them with ``cache_encoder_activations``, so the number is the trained network's own cost. Each config is timed
``repeats`` times after ``warmup`` untimed steps; the report gives the median and every repeat, in seconds.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch


def build_training_model(config_path: str, overrides: dict | None = None):
    """``(model, training_config)``: the method's training head built from scratch from a YAML config."""
    from ..models.registry import get_method
    from ..training import load_config
    from ..training.builders import load_tokenizer, model_config_kwargs

    config = load_config(config_path, {"output_dir": "unused", **(overrides or {})})
    spec = get_method(config.method)
    kwargs = model_config_kwargs(spec.config_class, load_tokenizer(config), config)
    model = spec.model_class(spec.config_class(**kwargs))
    if getattr(model.config, "latent_std", 0.0) is None:  # fitted on data in training; irrelevant to the cost
        model.config.latent_mean, model.config.latent_std = 0.0, 1.0
    return model, config


def random_batch(model, batch_size: int, seq_len: int, generator: torch.Generator) -> dict:
    """Random tokens (and random encoder activations for a model that reads a frozen encoder)."""
    input_ids = torch.randint(0, model.config.vocab_size, (batch_size, seq_len), generator=generator)
    batch = {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids), "labels": input_ids}
    if hasattr(model, "encoder_activations"):
        width = getattr(model.config, "encoder_dim", None) or model.config.latent_dim
        batch["encoder_activations"] = torch.randn(batch_size, seq_len, width, generator=generator)
    return batch


def time_training_step(model, batch: dict, *, warmup: int = 2, repeats: int = 5) -> list[float]:
    """Seconds of each of ``repeats`` steps (forward, backward, AdamW) after ``warmup`` untimed ones."""
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    times = []
    for i in range(warmup + repeats):
        start = time.perf_counter()
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return times


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("configs", nargs="+", help="training YAML configs")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rows = []
    for path in args.configs:
        torch.manual_seed(args.seed)
        model, config = build_training_model(path)
        batch = random_batch(model, config.per_device_train_batch_size, config.seq_len,
                             torch.Generator().manual_seed(args.seed))  # fmt: skip
        times = time_training_step(model, batch, warmup=args.warmup, repeats=args.repeats)
        params = sum(p.numel() for p in model.parameters() if p.requires_grad)
        rows.append({"config": path, "method": config.method, "trainable_parameters": params,
                     "batch": list(batch["input_ids"].shape), "median_s": statistics.median(times), "times_s": times})  # fmt: skip
        print(f"{path}: {config.method}, {params / 1e6:.2f}M trainable, batch {tuple(batch['input_ids'].shape)}: "
              f"median {statistics.median(times):.3f} s/step ({', '.join(f'{t:.3f}' for t in times)})")  # fmt: skip
    if len(rows) > 1:
        base = rows[0]["median_s"]
        print("ratio to the first: " + ", ".join(f"{r['method']} {r['median_s'] / base:.2f}x" for r in rows))
    return rows


if __name__ == "__main__":
    main()
