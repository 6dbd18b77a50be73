"""Eager vs `torch.compile` for ELF (the examples/configs/elf-tiny.yaml sizes): a training step and a sampling call.

    OMP_NUM_THREADS=1 python examples/bench_torch_compile.py [--steps 20] [--batch 16] [--seq_len 64]

Training: forward + backward + AdamW on random encoder activations (the frozen encoder is not part of the step),
the whole training head compiled as `torch.compile` / `latentlm train --torch_compile` does. Sampling: the
pipeline's loop with the denoiser compiled as `latentlm sample --torch_compile` does (`compile_denoiser`). Times are
medians after warm-up; the first (compiling) call is reported apart.
"""

import argparse
import statistics
import time

import torch

from latentlm import ELFConfig, ELFForFlowMatching, ELFPipeline
from latentlm.models.backbone import compile_denoiser


ELF_TINY = dict(hidden_size=128, num_hidden_layers=3, num_attention_heads=2, bottleneck_dim=128, decoder_head_dim=128)


def build(seq_len: int) -> ELFForFlowMatching:
    torch.manual_seed(0)
    config = ELFConfig(**ELF_TINY, max_position_embeddings=seq_len, latent_mean=0.0, latent_std=1.0, eos_token_id=102)
    return ELFForFlowMatching(config)


def timed(fn, repeats: int) -> tuple[float, float]:
    """(first call, median of the next ``repeats`` calls), in seconds."""
    start = time.perf_counter()
    fn()
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return first, statistics.median(times)


def training(compiled: bool, args) -> tuple[float, float]:
    model = build(args.seq_len).train()
    step_model = torch.compile(model) if compiled else model
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    ids = torch.randint(1000, 30000, (args.batch, args.seq_len))
    activations = torch.randn(args.batch, args.seq_len, model.config.latent_dim)

    def step():
        loss = step_model(input_ids=ids, labels=ids, encoder_activations=activations).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return timed(step, args.steps)


def sampling(compiled: bool, batch: int, args) -> tuple[float, float]:
    model = build(args.seq_len).eval()
    pipe = ELFPipeline.from_model(model)
    pipe.set_progress_bar_config(disable=True)
    if compiled:
        compile_denoiser(pipe.model)

    def call():
        pipe(batch_size=batch, gen_length=args.seq_len, num_inference_steps=8, output_type="seq")

    return timed(call, max(2, args.steps // 4))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seq_len", type=int, default=64)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; medians of {args.steps} calls")
    print("| what | eager (s) | compiled (s) | speed-up | first compiled call (s) |")
    print("|---|---|---|---|---|")
    rows = [(f"training step, batch {args.batch} x {args.seq_len}", lambda c: training(c, args))]
    for batch in (1, args.batch):
        rows.append((f"sampling, 8 steps, batch {batch} x {args.seq_len}", lambda c, b=batch: sampling(c, b, args)))
    for name, run in rows:
        _, eager = run(False)
        first, compiled = run(True)
        print(f"| {name} | {eager:.4f} | {compiled:.4f} | {eager / compiled:.2f}x | {first:.1f} |", flush=True)


if __name__ == "__main__":
    main()
