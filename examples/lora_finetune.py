"""LoRA fine-tuning from Python: teach the bundled ELF to write BBC News headlines, then load the adapter on the base.

    python examples/lora_finetune.py --output_dir runs/elf-headlines-lora [--max_steps 300]

1. builds a `datasets.Dataset` of paired texts in Python ("<topic> news: <headline>", from the offline BBC corpus);
2. trains a LoRA adapter on `pretrained:elf-tiny-prose` with `latentlm.training.train` and the settings of
   `examples/configs/elf-headlines-lora.yaml`;
3. loads the base pipeline, adds the adapter with `load_lora_weights` (diffusers' API), samples with the adapter at
   full and half weight, fuses it, and prints the samples next to the base model's.

Push the result with `latentlm push runs/elf-headlines-lora user/elf-headlines-lora --adapter-only`.
"""

import argparse
from pathlib import Path

import torch
from datasets import Dataset, DatasetDict

import latentlm
from latentlm import ELFPipeline
from latentlm.data import load_corpus
from latentlm.training import load_config, train


CONFIG = Path(__file__).parent / "configs" / "elf-headlines-lora.yaml"


def headlines(split) -> Dataset:
    """One row per article: its topic and headline (the article's first line)."""
    rows = [{"text": f"{row['category']} news: {row['text'].split(chr(10))[0]}"} for row in split]
    return Dataset.from_list(rows)


def samples(pipe, label: str, num_samples: int = 4) -> None:
    out = pipe(
        batch_size=num_samples, gen_length=24, num_inference_steps=32, generator=torch.Generator().manual_seed(0)
    )
    print(f"\n{label}:")
    for text in out.texts:
        print("  ", text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output_dir", default="runs/elf-headlines-lora")
    parser.add_argument("--max_steps", type=int, default=None, help="default: the config's")
    args = parser.parse_args()

    corpus = load_corpus("bbc-news")
    dataset = DatasetDict(train=headlines(corpus["train"]), validation=headlines(corpus["validation"]))
    overrides = {"output_dir": args.output_dir, "seq_len": 24, "packing": False}
    if args.max_steps is not None:
        overrides["max_steps"] = args.max_steps
    config = load_config(CONFIG, overrides)
    config.dataset = dataset  # a Python-built dataset replaces the YAML's corpus name
    result = train(config)
    print(f"{result.step} steps, eval loss {result.eval_loss:.4f}; adapter in {result.output_dir / 'adapter'}")

    pipe = ELFPipeline.from_pretrained(latentlm.pretrained_path("elf-tiny-prose"))
    pipe.set_progress_bar_config(disable=True)
    samples(pipe, "base model")
    pipe.load_lora_weights(result.output_dir / "adapter", adapter_name="headlines")
    samples(pipe, "with the headlines adapter")
    pipe.set_adapters(["headlines"], adapter_weights=[0.5])
    samples(pipe, "adapter at weight 0.5")
    pipe.fuse_lora()  # merged into the weights: same samples, no LoRA overhead
    samples(pipe, "fused at weight 0.5")


if __name__ == "__main__":
    main()
