"""LoRA vs full fine-tuning of the bundled ELF on one paired task, same base, data, steps and batch.

    python benchmarks/lora/lora_vs_full.py --output_dir runs/lora-vs-full [--max_steps 300]

The task is synthetic and offline: the source is 3-5 words, the target the same words in reverse order. Both runs
start from `pretrained:elf-tiny-prose` made conditional (ELF's in-sequence source, no new parameters), train with
`latentlm.training.train` on the same `datasets.DatasetDict`, and are scored by ROUGE-L (F, %) of the targets
sampled for held-out sources (`latentlm.evaluation.metrics.rouge`). The learning rate is the only setting that
differs (full: 3e-4; LoRA: 1e-3, the usual higher LoRA rate); nothing was tuned. Results go to
`<output_dir>/results.json`.
"""

import argparse
import json
import random
import time
from pathlib import Path

import torch
from datasets import Dataset, DatasetDict

from latentlm import ELFPipeline
from latentlm.evaluation.metrics import rouge
from latentlm.training import TrainingConfig, train


WORDS = "the a cat dog sat ran on in mat park and big small red house tree bird sang old new".split()
LORA = {"r": 8, "lora_alpha": 16, "target_modules": ["qkv", "out_proj", "gate_up_proj", "down_proj"]}


def pairs(n: int, seed: int) -> Dataset:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        words = [rng.choice(WORDS) for _ in range(rng.randint(3, 5))]
        rows.append({"source": " ".join(words), "target": " ".join(reversed(words))})
    return Dataset.from_list(rows)


def fine_tune(output_dir: Path, data: DatasetDict, max_steps: int, lora: dict | None) -> dict:
    config = TrainingConfig(
        method="elf",
        init_from="pretrained:elf-tiny-prose",
        model={"conditional": True},
        lora=lora,
        dataset=data,
        source_column="source",
        target_column="target",
        max_source_length=8,
        seq_len=8,
        per_device_train_batch_size=16,
        per_device_eval_batch_size=16,
        learning_rate=1e-3 if lora else 3e-4,
        weight_decay=0.0,
        warmup_steps=20,
        max_steps=max_steps,
        eval_steps=None,
        eval_batches=2,
        save_steps=None,
        logging_steps=25,
        report_to="none",
        seed=0,
        output_dir=str(output_dir),
    )
    start = time.perf_counter()
    result = train(config)
    return {"train_seconds": round(time.perf_counter() - start, 1), "eval_loss": result.eval_loss}


@torch.no_grad()
def score(pipeline_dir: Path, test: Dataset) -> dict:
    pipe = ELFPipeline.from_pretrained(pipeline_dir)
    pipe.set_progress_bar_config(disable=True)
    sources, targets = list(test["source"]), list(test["target"])
    out = pipe(source=sources, gen_length=8, num_inference_steps=32, generator=torch.Generator().manual_seed(0))
    return {**rouge(out.texts, targets), "examples": list(zip(sources[:5], out.texts[:5]))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output_dir", default="runs/lora-vs-full")
    parser.add_argument("--max_steps", type=int, default=300)
    parser.add_argument("--num_test", type=int, default=64)
    args = parser.parse_args()
    root = Path(args.output_dir)
    data = DatasetDict(train=pairs(4000, seed=0), validation=pairs(64, seed=1))
    test = pairs(args.num_test, seed=2)

    results = {"max_steps": args.max_steps, "batch": 16, "lora": LORA}
    for name, lora in (("full", None), ("lora", LORA)):
        results[name] = fine_tune(root / name, data, args.max_steps, lora)
        results[name].update(score(root / name, test))
        print(name, json.dumps({k: v for k, v in results[name].items() if k != "examples"}))
    adapter = root / "lora" / "adapter" / "adapter_model.safetensors"
    from safetensors.torch import load_file

    results["lora_parameters"] = sum(v.numel() for v in load_file(adapter).values())
    results["lora_over_full_rougeL"] = results["lora"]["rougeL"] / max(results["full"]["rougeL"], 1e-9)
    (root / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps({k: v for k, v in results.items() if k not in ("full", "lora")}, indent=2))


if __name__ == "__main__":
    main()
