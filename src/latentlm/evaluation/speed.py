"""Speed measurements: analytic FLOP counts of the denoiser, the machine's matmul FLOP/s, and wall-clock timing of
diffusion pipelines and of the autoregressive baseline's KV-cache ``generate``.

FLOP convention: 2 x the multiply-accumulates of every matrix product (linear layers, attention ``Q K^T`` and
``A V``); biases, norms, activations, softmax, RoPE and the scheduler's element-wise updates are not counted. This
is the convention of ``torch.utils.flop_counter`` (the unit test checks the analytic count against it).

Timing convention: every measurement runs under ``torch.inference_mode()``, after ``warmup`` untimed calls, and
reports all repeats and their median; on CUDA the device is synchronised before and after each call.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch


# ScalarTokens embeds its scalar with diffusers' sinusoidal `Timesteps(256)` then `TimestepEmbedding(256, hidden)`.
SCALAR_FREQUENCY_DIM = 256


# ------------------------------------------------------------------------------------------------------ FLOP counts


def _linear_macs(tokens: int, in_features: int, out_features: int) -> int:
    """Multiply-accumulates of a linear layer applied to ``tokens`` vectors."""
    return tokens * in_features * out_features


def num_control_tokens(config) -> int:
    """Length of the denoiser's control prefix: time, guidance and mode tokens (see `DenoiserTransformer`)."""
    return config.num_time_tokens + (config.num_guidance_tokens or 0) + (config.num_mode_tokens or 0)


def denoiser_forward_flops(config, seq_len: int, *, batch_size: int = 1, condition_len: int = 0) -> int:
    """FLOPs of one `DenoiserTransformer` forward pass (2 x multiply-accumulates of every matmul).

    Counts, for ``batch_size`` sequences of ``seq_len`` latent tokens (plus ``condition_len`` clean condition tokens
    and the control prefix, ``N`` tokens in all):

    * the self-conditioning projection ``2 latent_dim -> latent_dim`` (latent tokens; it runs with zeros when there
      is no estimate yet) and the input projection (through the bottleneck if any) of latent and condition tokens;
    * the scalar embeddings of the time and guidance tokens (``256 -> hidden -> hidden`` once per example);
    * per block: ``qkv`` and output projections, SwiGLU ``gate_up`` and ``down``, and attention ``Q K^T`` and
      ``A V`` over all ``N`` positions (``2 N^2 hidden`` multiply-accumulates, all heads together);
    * the long-skip projections (``2 hidden -> hidden``, ``num_hidden_layers // 2`` of them) if enabled;
    * the output projection ``hidden -> latent_dim`` of the latent tokens.

    Args:
        config: a config with the `DenoiserConfigMixin` fields (e.g. `ELFConfig`).
        seq_len: latent tokens per sequence.
        batch_size: sequences per forward pass.
        condition_len: clean condition tokens per sequence (0 for unconditional generation).
    """
    hidden, latent, inter = config.hidden_size, config.latent_dim, config.intermediate_size
    latent_tokens, input_tokens = batch_size * seq_len, batch_size * (seq_len + condition_len)
    total_tokens = batch_size * (num_control_tokens(config) + condition_len + seq_len)
    n = num_control_tokens(config) + condition_len + seq_len

    macs = _linear_macs(latent_tokens, 2 * latent, latent) if config.self_conditioning else 0
    if config.bottleneck_dim:
        macs += _linear_macs(input_tokens, latent, config.bottleneck_dim)
        macs += _linear_macs(input_tokens, config.bottleneck_dim, hidden)
    else:
        macs += _linear_macs(input_tokens, latent, hidden)
    num_scalar_embeddings = 1 + (1 if config.num_guidance_tokens else 0)
    macs += num_scalar_embeddings * (
        _linear_macs(batch_size, SCALAR_FREQUENCY_DIM, hidden) + _linear_macs(batch_size, hidden, hidden)
    )
    per_block = (
        _linear_macs(total_tokens, hidden, 3 * hidden)  # qkv
        + _linear_macs(total_tokens, hidden, hidden)  # out_proj
        + _linear_macs(total_tokens, hidden, 2 * inter)  # SwiGLU gate_up
        + _linear_macs(total_tokens, inter, hidden)  # SwiGLU down
        + 2 * batch_size * n * n * hidden  # Q K^T and A V, all heads
    )
    macs += config.num_hidden_layers * per_block
    if getattr(config, "use_long_skips", False):
        macs += (config.num_hidden_layers // 2) * _linear_macs(total_tokens, 2 * hidden, hidden)
    macs += _linear_macs(latent_tokens, hidden, latent)
    return 2 * macs


def decode_head_flops(config, seq_len: int, *, batch_size: int = 1) -> int:
    """FLOPs of ELF's factored decode head ``hidden -> decoder_head_dim -> vocab`` (0 for configs without one)."""
    head_dim = getattr(config, "decoder_head_dim", None)
    if not head_dim:
        return 0
    tokens = batch_size * seq_len
    return 2 * (_linear_macs(tokens, config.hidden_size, head_dim) + _linear_macs(tokens, head_dim, config.vocab_size))


def sampling_flops(config, gen_length: int, num_inference_steps: int, *, batch_size: int = 1) -> dict[str, int]:
    """FLOPs of one unconditional pipeline call: ``num_inference_steps`` denoising forwards, one decode-mode forward
    and the decode head once (the latent pipeline's loop).

    Returns:
        ``{"forward": one denoiser forward, "forward_calls": steps + 1, "decode_head": ..., "total": ...}``.
    """
    forward = denoiser_forward_flops(config, gen_length, batch_size=batch_size)
    head = decode_head_flops(config, gen_length, batch_size=batch_size)
    calls = num_inference_steps + 1
    return {"forward": forward, "forward_calls": calls, "decode_head": head, "total": forward * calls + head}


def find_denoiser_config(model):
    """The config of the `DenoiserTransformer` inside ``model`` (e.g. ``ELFForFlowMatching.model.transformer``)."""
    from ..models.backbone import DenoiserTransformer

    for module in model.modules():
        if isinstance(module, DenoiserTransformer):
            return module.config
    raise ValueError(f"{type(model).__name__} contains no DenoiserTransformer to count FLOPs for.")


# ----------------------------------------------------------------------------------------------------------- timing


def synchronize(device) -> None:
    """Wait for queued CUDA work (no-op on CPU)."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def time_call(fn: Callable[[], object], *, device="cpu", repeats: int = 5, warmup: int = 1) -> dict:
    """Wall-clock seconds of ``fn()`` under ``torch.inference_mode()``: ``warmup`` untimed calls, then ``repeats``.

    Returns:
        ``{"seconds": median, "times": [each repeat], "repeats": repeats, "warmup": warmup}``.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}.")
    times = []
    with torch.inference_mode():
        for _ in range(warmup):
            fn()
        synchronize(device)
        for _ in range(repeats):
            synchronize(device)
            start = time.perf_counter()
            fn()
            synchronize(device)
            times.append(time.perf_counter() - start)
    return {"seconds": statistics.median(times), "times": times, "repeats": repeats, "warmup": warmup}


def measure_matmul_flops(device="cpu", *, size: int | None = None, repeats: int = 5, dtype=torch.float32) -> dict:
    """The machine's matmul FLOP/s: ``torch.mm`` of two ``size x size`` matrices (``2 size^3`` FLOPs), timed like
    :func:`time_call` with the current thread count.

    Args:
        device: where to multiply.
        size: matrix side; default 2048 on CPU, 8192 on CUDA (large enough to saturate the device).
        repeats: timed repeats after one warm-up.
        dtype: float32 by default, the dtype the benchmarked models run in (TF32 stays as torch's setting).

    Returns:
        ``{"size", "dtype", "threads", "times", "seconds" (median), "flops_median", "flops_best"}``; the best repeat
        is the peak the benchmark divides by.
    """
    device = torch.device(device)
    size = size or (8192 if device.type == "cuda" else 2048)
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=generator, dtype=dtype).to(device)
    b = torch.randn(size, size, generator=generator, dtype=dtype).to(device)
    timing = time_call(lambda: torch.mm(a, b), device=device, repeats=repeats, warmup=1)
    flops = 2 * size**3
    return {
        "size": size,
        "dtype": str(dtype).removeprefix("torch."),
        "threads": torch.get_num_threads(),
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        **timing,
        "flops_median": flops / timing["seconds"],
        "flops_best": flops / min(timing["times"]),
    }


def diffusion_call(pipe, *, batch_size: int, gen_length: int, num_inference_steps: int, seed: int = 0):
    """A no-argument callable running ``pipe`` once (token ids out, no text decoding), for :func:`time_call`.

    The pipeline's defaults (guidance scale, the scheduler's sampler) are used; each call reseeds a CPU generator.
    """

    def run():
        generator = torch.Generator().manual_seed(seed)
        return pipe(
            batch_size=batch_size, gen_length=gen_length, num_inference_steps=num_inference_steps,
            generator=generator, output_type="seq",
        ).sequences  # fmt: skip

    return run


def autoregressive_call(model, *, batch_size: int, new_tokens: int, bos_token_id: int, pad_token_id=None):
    """A no-argument callable running greedy KV-cache ``model.generate`` from a BOS prompt that produces exactly
    ``new_tokens`` tokens per row (``min_new_tokens = max_new_tokens``), for :func:`time_call`."""
    device = next(model.parameters()).device
    prompt = torch.full((batch_size, 1), bos_token_id, dtype=torch.long, device=device)
    mask = torch.ones_like(prompt)

    def run():
        return model.generate(
            input_ids=prompt, attention_mask=mask, do_sample=False, use_cache=True, min_new_tokens=new_tokens,
            max_new_tokens=new_tokens, pad_token_id=pad_token_id,
        )  # fmt: skip

    return run


__all__ = [
    "autoregressive_call",
    "decode_head_flops",
    "denoiser_forward_flops",
    "diffusion_call",
    "find_denoiser_config",
    "measure_matmul_flops",
    "num_control_tokens",
    "sampling_flops",
    "synchronize",
    "time_call",
]
