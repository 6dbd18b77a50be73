"""The speed half of the benchmark: latency and throughput rows of the AR baseline and every diffusion model, achieved
FLOP/s against the measured matmul peak, and ratios to the AR baseline and to a reference diffusion model."""

from __future__ import annotations

import logging

from .bench_report import _fmt
from .bench_sampling import bos_token_id_for
from .bench_settings import BenchmarkSettings
from .speed import autoregressive_call, diffusion_call, measure_matmul_flops, sampling_flops, time_call


logger = logging.getLogger(__name__)


def _speed_row(model, kind, measure, gen_length, batch_size, steps, timing, ar_row=None) -> dict:
    """A timing with its tokens/s and, when the AR row of the same measure is given, the ratios to it:
    ``time_ratio = seconds / ar_seconds`` and ``throughput_ratio = tokens_per_s / ar_tokens_per_s``."""
    row = {"model": model, "kind": kind, "measure": measure, "gen_length": gen_length, "batch_size": batch_size,
           "steps": steps, **timing, "tokens_per_s": batch_size * gen_length / timing["seconds"]}  # fmt: skip
    if ar_row is not None:
        row["ar_seconds"] = ar_row["seconds"]
        row["time_ratio"] = row["seconds"] / ar_row["seconds"]
        row["throughput_ratio"] = row["tokens_per_s"] / ar_row["tokens_per_s"]
    return row


def _measure(fn, settings: BenchmarkSettings, *row_fields, ar_row=None) -> dict:
    """Time ``fn`` (latency or throughput repeats, see the settings) and return its logged :func:`_speed_row`."""
    measure = row_fields[2]
    repeats = settings.latency_repeats if measure == "latency" else settings.throughput_repeats
    timing = time_call(fn, device=settings.device, repeats=repeats, warmup=settings.warmup)
    row = _speed_row(*row_fields, timing, ar_row)
    logger.info("speed   %-28s %-10s L=%-4d B=%-3d steps=%-4s %8.4f s  time x AR %s", row["model"], measure,
                row["gen_length"], row["batch_size"], row["steps"] or "-", row["seconds"],
                _fmt(row.get("time_ratio"), ".2f"))  # fmt: skip
    return row


def _flops_fields(pipe, gen_length, steps, batch_size, seconds, peak) -> dict:
    """Analytic FLOPs of the sampling call, achieved FLOP/s and its fraction of the measured matmul peak."""
    flops = sampling_flops(pipe.model, gen_length, steps, batch_size=batch_size)
    achieved = flops["total"] / seconds
    return {"flops": flops, "achieved_flops": achieved, "peak_fraction": achieved / peak}


def _time_ar(ar, measure, gen_length, batch_size, settings) -> dict:
    """Greedy KV-cache generation of exactly ``gen_length`` tokens by the AR baseline."""
    name, (model, tokenizer) = ar
    fn = autoregressive_call(model, batch_size=batch_size, new_tokens=gen_length,
                             bos_token_id=bos_token_id_for(model, tokenizer), pad_token_id=tokenizer.pad_token_id)  # fmt: skip
    return _measure(fn, settings, name, "autoregressive", measure, gen_length, batch_size, None)


def _time_diffusion(name, pipe, measure, gen_length, batch_size, steps, settings, ar_row) -> dict:
    """One pipeline call (default guidance and sampler, token ids out) of ``batch_size`` x ``gen_length`` tokens."""
    fn = diffusion_call(pipe, batch_size=batch_size, gen_length=gen_length, num_inference_steps=steps,
                        seed=settings.seed)  # fmt: skip
    return _measure(fn, settings, name, "diffusion", measure, gen_length, batch_size, steps, ar_row=ar_row)


def run_speed(pipes, ar, settings: BenchmarkSettings) -> dict:
    """Matmul peak, then per length: AR latency and throughput, each diffusion model's latency (every number of
    steps at the longest length, ``sweep_steps`` otherwise) and throughput with achieved FLOP/s."""
    matmul = measure_matmul_flops(settings.device, size=settings.matmul_size)
    logger.info("speed   matmul %d^3 fp32: %.1f GFLOP/s (best of %d)", matmul["size"], matmul["flops_best"] / 1e9,
                matmul["repeats"])  # fmt: skip
    rows, skipped, longest = [], [], max(settings.speed_lengths)
    for length in settings.speed_lengths:
        ar_rows = {}
        if ar is not None:
            ar_rows = {"latency": _time_ar(ar, "latency", length, 1, settings),
                       "throughput": _time_ar(ar, "throughput", length, settings.speed_batch_size, settings)}  # fmt: skip
            rows += ar_rows.values()
        for name, pipe in pipes.items():
            if length > pipe.model.max_gen_length:
                skipped.append({"model": name, "gen_length": length, "reason": "longer than the model supports"})
                continue
            step_list = (
                sorted({*settings.steps, settings.sweep_steps}) if length == longest else [settings.sweep_steps]
            )
            for steps in step_list:
                rows.append(_time_diffusion(name, pipe, "latency", length, 1, steps, settings, ar_rows.get("latency")))
            row = _time_diffusion(name, pipe, "throughput", length, settings.speed_batch_size, settings.sweep_steps,
                                  settings, ar_rows.get("throughput"))  # fmt: skip
            row.update(_flops_fields(pipe, length, settings.sweep_steps, settings.speed_batch_size, row["seconds"],
                                     matmul["flops_best"]))  # fmt: skip
            rows.append(row)
    if settings.speed_reference is not None:
        add_reference_ratios(rows, settings.speed_reference)
    return {"matmul": matmul, "rows": rows, "skipped": skipped, "reference": settings.speed_reference}


def add_reference_ratios(rows: list[dict], reference: str) -> None:
    """Add, to every diffusion speed row of another model, its ratios to the ``reference`` model's row of the same
    measure, length, batch size and number of steps: ``ref_time_ratio = seconds / reference seconds`` (<1: faster)
    and ``ref_speedup = reference seconds / seconds`` (= ``tokens_per_s / reference tokens_per_s``, >1: faster)."""
    key = ("measure", "gen_length", "batch_size", "steps")
    references = {tuple(r[k] for k in key): r for r in rows if r["kind"] == "diffusion" and r["model"] == reference}
    for row in rows:
        ref = references.get(tuple(row[k] for k in key))
        if row["kind"] != "diffusion" or row["model"] == reference or ref is None:
            continue
        row.update(reference=reference, ref_seconds=ref["seconds"], ref_time_ratio=row["seconds"] / ref["seconds"],
                   ref_speedup=ref["seconds"] / row["seconds"])  # fmt: skip
