"""Where a sampling call spends its time: the denoiser, the scheduler, the decode, and the rest of the loop.

    OMP_NUM_THREADS=1 python examples/profile_sampling.py [--methods elf cosmos] [--batches 1 64] [--seq_len 128]

Builds ELF at the examples/configs/elf-tiny.yaml sizes and Cosmos at the cosmos-tiny / cosmos-autoencoder-tiny sizes
(16 latents for 128 tokens, 8x) with random weights (the time barely depends on them, except the greedy decode's:
random weights leave more rows to its full float32 pass, see `greedy_token_ids`), and times the pipeline's
call at each batch size, with `model.denoise`, `scheduler.step` / `scale_model_input` and `model.decode_latents_to_ids`
(for Cosmos: the autoencoder's decompressor and head) wrapped by timers. "rest" is the call's wall time minus those: latents preparation, the
Python of the loop, argmax and end-of-sequence cutting. Medians of ``--repeats`` calls after one warm-up call.
"""

import argparse
import statistics
import time
from collections import defaultdict

import torch

from latentlm import (
    CosmosLMAutoencoder,
    CosmosLMAutoencoderConfig,
    CosmosLMConfig,
    CosmosLMForDiffusion,
    CosmosLMPipeline,
    ELFConfig,
    ELFForFlowMatching,
    ELFPipeline,
)


ELF_TINY = dict(hidden_size=128, num_hidden_layers=3, num_attention_heads=2, bottleneck_dim=128, decoder_head_dim=128)
COSMOS_AE_TINY = dict(
    num_latents=16, latent_dim=384, hidden_size=256, num_attention_heads=4, num_compressor_layers=2,
    num_decompressor_layers=2, lm_head_dim=128,
)  # fmt: skip
COSMOS_TINY = dict(hidden_size=128, num_hidden_layers=3, num_attention_heads=2, use_long_skips=True)


def build_pipeline(method: str, seq_len: int):
    torch.manual_seed(0)
    if method == "elf":
        config = ELFConfig(**ELF_TINY, max_position_embeddings=seq_len, latent_mean=0.0, latent_std=1.0)
        return ELFPipeline.from_model(ELFForFlowMatching(config).eval())
    autoencoder = CosmosLMAutoencoder(CosmosLMAutoencoderConfig(**COSMOS_AE_TINY, max_position_embeddings=seq_len))
    autoencoder.latent_std.fill_(1.0)  # as if fitted (the statistics do not change the time)
    shared = {key: COSMOS_AE_TINY[key] for key in ("num_latents", "latent_dim")}
    model = CosmosLMForDiffusion(CosmosLMConfig(**COSMOS_TINY, **shared, max_position_embeddings=seq_len))
    return CosmosLMPipeline(
        model=model.eval(), autoencoder=autoencoder.eval(), scheduler=model.get_default_scheduler()
    )


def timer(totals: dict, name: str, fn):
    def timed(*args, **kwargs):
        start = time.perf_counter()
        out = fn(*args, **kwargs)
        totals[name] += time.perf_counter() - start
        return out

    return timed


def profile(pipe, batch: int, args) -> dict[str, float]:
    model, scheduler = pipe.model, pipe.scheduler
    runs = []
    for repeat in range(args.repeats + 1):
        totals = defaultdict(float)
        model.denoise = timer(totals, "denoiser", type(model).denoise.__get__(model))
        model.decode_latents_to_ids = timer(totals, "decode", type(model).decode_latents_to_ids.__get__(model))
        scheduler.step = timer(totals, "scheduler", type(scheduler).step.__get__(scheduler))
        scheduler.scale_model_input = timer(totals, "scheduler", type(scheduler).scale_model_input.__get__(scheduler))
        start = time.perf_counter()
        pipe(batch_size=batch, gen_length=args.seq_len, num_inference_steps=args.steps, output_type="seq")
        totals["total"] = time.perf_counter() - start
        if repeat:  # the first call warms up
            runs.append(totals)
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", choices=["elf", "cosmos"], default=["elf", "cosmos"])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--seq_len", type=int, default=128)
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.steps} steps, {args.seq_len} tokens; "
          f"medians of {args.repeats} calls")  # fmt: skip
    print("| method | batch | total (s) | denoiser | scheduler | decode | rest |")
    print("|---|---|---|---|---|---|---|")
    for method in args.methods:
        pipe = build_pipeline(method, args.seq_len)
        pipe.set_progress_bar_config(disable=True)
        for batch in args.batches:
            t = profile(pipe, batch, args)
            shares = " | ".join(f"{100 * t[k] / t['total']:.1f}%" for k in ("denoiser", "scheduler", "decode"))
            rest = t["total"] - t["denoiser"] - t["scheduler"] - t["decode"]
            print(f"| {method} | {batch} | {t['total']:.3f} | {shares} | {100 * rest / t['total']:.1f}% |", flush=True)


if __name__ == "__main__":
    main()
