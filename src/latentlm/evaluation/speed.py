"""Speed measurements: analytic FLOP counts of a sampling call (denoiser and decoder), the machine's matmul FLOP/s,
and wall-clock timing of diffusion pipelines and of the autoregressive baseline's KV-cache ``generate``.

The FLOP count reads the model's shapes, not its class: the denoiser runs on ``model.latent_shape(gen_length)[0]``
positions (ELF: the ``gen_length`` tokens; Cosmos: its ``N`` latents) plus the control prefix of its config, and the
decode is either one decode-mode denoiser forward plus the decode head (ELF) or the codec's decoder
(``model.autoencoder``, Cosmos: Perceiver decompressor and factored head over the codec's ``L`` token slots).

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

from ..models.denoiser_conditioning import DenoiserOptions


# ScalarTokens embeds its scalar with diffusers' sinusoidal `Timesteps(256)` then `TimestepEmbedding(256, hidden)`.
SCALAR_FREQUENCY_DIM = 256


# ------------------------------------------------------------------------------------------------------ FLOP counts


def _linear_macs(tokens: int, in_features: int, out_features: int) -> int:
    """Multiply-accumulates of a linear layer applied to ``tokens`` vectors."""
    return tokens * in_features * out_features


def num_control_tokens(config) -> int:
    """Length of the denoiser's control prefix: time, guidance and mode tokens (see `DenoiserTransformer`)."""
    return config.num_time_tokens + (config.num_guidance_tokens or 0) + (config.num_mode_tokens or 0)


def denoiser_forward_flops(
    config, seq_len: int, *, batch_size: int = 1, condition_len: int = 0, context_len: int = 0
) -> int:
    """FLOPs of one `DenoiserTransformer` forward pass (2 x multiply-accumulates of every matmul).

    Counts, for ``batch_size`` sequences of ``seq_len`` latent tokens (plus ``condition_len`` clean condition tokens
    and the control prefix, ``N`` tokens in all):

    * the self-conditioning projection ``2 latent_dim -> latent_dim`` (it runs with zeros when there is no estimate
      yet; condition tokens are their own estimate) and the input projection (through the bottleneck if any), of
      latent and condition tokens; with per-layer self-conditioning (Cosmos), one ``latent_dim -> hidden`` per block
      instead of the first;
    * the scalar embeddings of the time and guidance tokens (``256 -> hidden -> hidden`` once per example); with
      per-layer time (Cosmos), ``hidden -> 2 hidden -> hidden`` plus one ``hidden -> hidden`` per block, per example;
    * per block: ``qkv`` and output projections, SwiGLU ``gate_up`` and ``down``, and attention ``Q K^T`` and
      ``A V`` over all ``N`` positions (``2 N^2 hidden`` multiply-accumulates, all heads together);
    * with ``cross_attention_dim``, per block: the query and output projections of all ``N`` positions, the key/value
      projection of the ``context_len`` condition states, and attention over them plus the null token;
    * the long-skip projections (``2 hidden -> hidden``, ``num_hidden_layers // 2`` of them) if enabled and not
      additive;
    * the output projection ``hidden -> latent_dim`` of the latent tokens (none for an RMSNorm output when the
      widths are equal).

    Args:
        config: a config with the `DenoiserConfigMixin` fields (e.g. `ELFConfig`).
        seq_len: latent tokens per sequence.
        batch_size: sequences per forward pass.
        condition_len: clean condition tokens per sequence (0 for unconditional generation).
        context_len: condition states read by cross-attention per sequence.
    """
    hidden, latent, inter = config.hidden_size, config.latent_dim, config.intermediate_size
    latent_tokens, input_tokens = batch_size * seq_len, batch_size * (seq_len + condition_len)
    total_tokens = batch_size * (num_control_tokens(config) + condition_len + seq_len)
    n = num_control_tokens(config) + condition_len + seq_len

    options, depth = DenoiserOptions.from_config(config), config.num_hidden_layers
    macs = 0
    if config.self_conditioning and options.self_conditioning_injection == "input":
        macs += _linear_macs(input_tokens, 2 * latent, latent)
    elif config.self_conditioning:
        macs += depth * _linear_macs(input_tokens, latent, hidden)
    if config.bottleneck_dim:
        macs += _linear_macs(input_tokens, latent, config.bottleneck_dim)
        macs += _linear_macs(input_tokens, config.bottleneck_dim, hidden)
    else:
        macs += _linear_macs(input_tokens, latent, hidden)
    num_scalar_embeddings = (1 if config.num_time_tokens else 0) + (1 if config.num_guidance_tokens else 0)
    macs += num_scalar_embeddings * (
        _linear_macs(batch_size, SCALAR_FREQUENCY_DIM, hidden) + _linear_macs(batch_size, hidden, hidden)
    )
    if options.time_injection == "per_layer":
        macs += 2 * _linear_macs(batch_size, hidden, 2 * hidden) + depth * _linear_macs(batch_size, hidden, hidden)
    per_block = (
        _linear_macs(total_tokens, hidden, 3 * hidden)  # qkv
        + _linear_macs(total_tokens, hidden, hidden)  # out_proj
        + _linear_macs(total_tokens, hidden, 2 * inter)  # SwiGLU gate_up
        + _linear_macs(total_tokens, inter, hidden)  # SwiGLU down
        + 2 * batch_size * n * n * hidden  # Q K^T and A V, all heads
    )
    cross_dim = getattr(config, "cross_attention_dim", None)
    if cross_dim:
        per_block += (
            2 * _linear_macs(total_tokens, hidden, hidden)  # q_proj, out_proj
            + _linear_macs(batch_size * context_len, cross_dim, 2 * hidden)  # kv_proj
            + 2 * batch_size * n * (context_len + 1) * hidden  # Q K^T and A V over the context and the null token
        )
    macs += config.num_hidden_layers * per_block
    if getattr(config, "use_long_skips", False) and options.long_skip_merge == "concat_linear":
        macs += (config.num_hidden_layers // 2) * _linear_macs(total_tokens, 2 * hidden, hidden)
    if options.output_head == "norm_linear" or hidden != latent:
        macs += _linear_macs(latent_tokens, hidden, latent)
    return 2 * macs


def factored_head_flops(tokens: int, hidden_size: int, head_dim: int, vocab_size: int) -> int:
    """FLOPs of a factored token head ``hidden -> head_dim -> vocab`` (`FactoredLMHead`) over ``tokens`` vectors."""
    return 2 * (_linear_macs(tokens, hidden_size, head_dim) + _linear_macs(tokens, head_dim, vocab_size))


def decode_head_flops(config, seq_len: int, *, batch_size: int = 1) -> int:
    """FLOPs of ELF's factored decode head ``hidden -> decoder_head_dim -> vocab`` (0 for configs without one)."""
    head_dim = getattr(config, "decoder_head_dim", None)
    if not head_dim:
        return 0
    return factored_head_flops(batch_size * seq_len, config.hidden_size, head_dim, config.vocab_size)


def perceiver_flops(
    num_layers: int,
    hidden_size: int,
    intermediate_size: int,
    num_queries: int,
    context_len: int,
    *,
    batch_size: int = 1,
    context_size: int | None = None,
    feed_forward: str = "swiglu",
) -> int:
    """FLOPs of a `PerceiverStack`: ``num_queries`` queries attending to ``[queries ; context]`` in every block.

    Per block: ``q_proj`` and ``out_proj`` on the queries, ``kv_proj`` (``hidden -> 2 hidden``) on the queries and
    ``context_kv_proj`` (``context_size -> 2 hidden``, default ``hidden``) on the context, attention ``Q K^T`` and
    ``A V`` (``2 Q (Q + C) hidden`` multiply-accumulates, all heads) and the MLP on the queries (SwiGLU: ``hidden ->
    2 intermediate -> hidden``; Cosmos' GELU: ``hidden -> intermediate -> hidden``).
    """
    q, c, hidden = batch_size * num_queries, batch_size * context_len, hidden_size
    up = 2 * intermediate_size if feed_forward == "swiglu" else intermediate_size
    per_block = (
        _linear_macs(q, hidden, hidden)  # q_proj
        + _linear_macs(q, hidden, 2 * hidden)  # kv_proj
        + _linear_macs(c, context_size or hidden, 2 * hidden)  # context_kv_proj
        + 2 * batch_size * num_queries * (num_queries + context_len) * hidden  # Q K^T and A V, all heads
        + _linear_macs(q, hidden, hidden)  # out_proj
        + _linear_macs(q, hidden, up)  # MLP up (SwiGLU: gate and up)
        + _linear_macs(q, intermediate_size, hidden)  # MLP down
    )
    return 2 * num_layers * per_block


def codec_decode_flops(config, *, batch_size: int = 1) -> dict[str, int]:
    """FLOPs of a Perceiver codec's ``decode`` (e.g. `CosmosLMAutoencoder.decode`): the latents' input projection
    ``latent_dim -> hidden`` (the original codec only; and the chunk shortcut's ``latent_dim -> (L / N) hidden``),
    the slots' MLP on the ``[MASK]`` embedding (once), the decompressor (``num_decompressor_layers`` blocks, the
    codec's ``L`` token slots over its ``N`` latents) and the token head over the ``L`` slots: factored ``width ->
    lm_head_dim -> vocab`` or linear ``width -> vocab``, reading ``h_hat`` (``hidden -> encoder_dim`` first, unless
    the widths are equal) when the heads are coupled. The codec always decodes all ``L = max_position_embeddings``
    slots, whatever the requested ``gen_length``.

    Returns:
        ``{"decoder": input projections + decompressor, "decode_head": token head, "decoded_tokens": L}``.
    """
    slots, latents, hidden = config.max_position_embeddings, config.num_latents, config.hidden_size
    projected = not getattr(config, "normalized_latent", False)
    feed_forward = getattr(config, "feed_forward", "swiglu")
    decoder = perceiver_flops(
        config.num_decompressor_layers, hidden, config.intermediate_size, slots, latents, batch_size=batch_size,
        context_size=None if projected else config.latent_dim, feed_forward=feed_forward,
    )  # fmt: skip
    if projected:
        decoder += 2 * _linear_macs(batch_size * latents, config.latent_dim, hidden)
    if getattr(config, "mask_token_slots", False):  # one vector, shared by every slot and sample
        decoder += 2 * (_linear_macs(1, config.encoder_dim, config.intermediate_size)
                        + _linear_macs(1, config.intermediate_size, hidden))  # fmt: skip
    if getattr(config, "chunk_shortcut", False):  # each latent's linear map to its L / N slots
        decoder += 2 * _linear_macs(batch_size * latents, config.latent_dim, (slots // latents) * hidden)
    tokens, width, head = batch_size * slots, hidden, 0
    if getattr(config, "couple_heads", False):
        width = config.encoder_dim
        if hidden != width:
            head += 2 * _linear_macs(tokens, hidden, width)  # h_hat
    if getattr(config, "lm_head", "factored") == "factored":
        head += factored_head_flops(tokens, width, config.lm_head_dim, config.vocab_size)
    else:
        head += 2 * _linear_macs(tokens, width, config.vocab_size)
    return {"decoder": decoder, "decode_head": head, "decoded_tokens": slots}


def decode_flops(model, gen_length: int, *, batch_size: int = 1) -> dict[str, int]:
    """FLOPs of ``model.decode_latents`` for ``gen_length`` tokens, by how the model decodes:

    * through a codec (``model.autoencoder``, e.g. Cosmos): the codec's decoder and token head
      (:func:`codec_decode_flops`), no denoiser forward;
    * otherwise (ELF): one decode-mode forward of the denoiser, then its decode head over the latent tokens.

    Returns:
        ``{"denoiser_calls": denoiser forwards of the decode (0 or 1), "decoder": codec decoder FLOPs (0 without a
        codec), "decode_head": token head FLOPs, "decoded_tokens": tokens the head reads}``.
    """
    codec = getattr(model, "autoencoder", None)
    if codec is not None:
        return {"denoiser_calls": 0, **codec_decode_flops(codec.config, batch_size=batch_size)}
    seq_len = model.latent_shape(gen_length)[0]
    head = decode_head_flops(find_denoiser_config(model), seq_len, batch_size=batch_size)
    return {"denoiser_calls": 1, "decoder": 0, "decode_head": head, "decoded_tokens": seq_len}


def sampling_flops(model, gen_length: int, num_inference_steps: int, *, batch_size: int = 1) -> dict[str, int]:
    """FLOPs of one unconditional pipeline call of a latent diffusion ``model`` (the pipeline's loop): one denoiser
    forward per step on the model's latent sequence (``model.latent_shape(gen_length)[0]`` positions: ``gen_length``
    for ELF, the ``N`` latents for Cosmos, plus the control prefix), then the decode (:func:`decode_flops`).

    Args:
        model: a `LatentDiffusionMixin` model containing a `DenoiserTransformer` (`ELFForFlowMatching`,
            `CosmosLMForDiffusion`, ...).
        gen_length: generated tokens per sample.
        num_inference_steps: denoising steps.
        batch_size: samples per call.

    Returns:
        ``{"latent_length": denoiser positions per sample (without the prefix), "forward": one denoiser forward,
        "forward_calls": steps + the decode's denoiser forwards, "decoder": codec decoder FLOPs, "decode_head": token
        head FLOPs, "decoded_tokens": tokens decoded, "total": forward x forward_calls + decoder + decode_head}``.
    """
    latent_length = model.latent_shape(gen_length)[0]
    forward = denoiser_forward_flops(find_denoiser_config(model), latent_length, batch_size=batch_size)
    decode = decode_flops(model, gen_length, batch_size=batch_size)
    calls = num_inference_steps + decode["denoiser_calls"]
    return {
        "latent_length": latent_length,
        "forward": forward,
        "forward_calls": calls,
        "decoder": decode["decoder"],
        "decode_head": decode["decode_head"],
        "decoded_tokens": decode["decoded_tokens"],
        "total": forward * calls + decode["decoder"] + decode["decode_head"],
    }


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
    "codec_decode_flops",
    "decode_flops",
    "decode_head_flops",
    "denoiser_forward_flops",
    "diffusion_call",
    "factored_head_flops",
    "find_denoiser_config",
    "measure_matmul_flops",
    "num_control_tokens",
    "perceiver_flops",
    "sampling_flops",
    "synchronize",
    "time_call",
]
