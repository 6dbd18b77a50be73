"""Writing a benchmark's results: ``results.json`` (strict JSON), the plots and ``RESULTS.md`` (how the numbers were
made, then the model, quality and speed tables), and the machine description they state."""

from __future__ import annotations

import contextlib
import datetime
import json
import math
import os
import platform
import shlex
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from .bench_sampling import sampler_label


# ---------------------------------------------------------------------------------------------------- the machine


def machine_info(device) -> dict:
    """The machine and software versions, as stated in the report."""
    import diffusers
    import transformers

    device = torch.device(device)
    info = {
        "cpu": _cpu_model(),
        "cpu_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": str(device),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "diffusers": diffusers.__version__,
        "platform": platform.platform(),
    }
    return info


def _cpu_model() -> str:
    """The CPU's ``model name`` from /proc/cpuinfo (``platform.processor()`` elsewhere)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def command_line(argv: Sequence[str] | None = None) -> str:
    """The command as typed: ``latentlm`` plus the arguments (``sys.argv[1:]`` by default)."""
    return shlex.join(["latentlm", *(sys.argv[1:] if argv is None else argv)])


# -------------------------------------------------------------------------------------------------------- outputs


def write_results(results: dict, out_dir) -> dict[str, str]:
    """Write ``results.json``, the PNG plots and ``RESULTS.md`` to ``out_dir``; returns their paths."""
    from .plots import write_plots

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": str(out / "results.json"), "markdown": str(out / "RESULTS.md")}
    paths.update(write_plots(results, out))
    record = {key: value for key, value in results.items() if key != "paths"} | {"paths": paths}
    Path(paths["json"]).write_text(json.dumps(_jsonable(record), indent=2) + "\n")
    Path(paths["markdown"]).write_text(render_markdown(results, plots=paths))
    return paths


def _jsonable(value):
    """NaN / inf -> ``None``, tuples -> lists, paths -> strings, so ``results.json`` is strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if isinstance(value, os.PathLike):
        return str(value)
    return value


def _fmt(value, spec: str = ".3g") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return format(value, spec)


def _row_label(row: dict) -> str:
    """A short description of a quality row's setting."""
    if row["kind"] == "reference":
        return "reference (held-out text)"
    if row["kind"] == "autoregressive":
        return f"{row['model']} {row['sampling']} (top_p={row['top_p']})"
    guidance = "" if row.get("guidance_scale") is None else f" w={row['guidance_scale']:g}"
    return f"{row['model']} steps={row['steps']}{guidance} {sampler_label(row)}"


def conditional_row_label(row: dict) -> str:
    """A short description of a task or continuation row's setting."""
    if row["kind"] == "reference":
        return "reference"
    if row["kind"] == "autoregressive":
        return f"{row['model']} {row.get('decoding') or row.get('sampling')}"
    return f"{row['model']} steps={row['steps']} cfg={_fmt(row.get('cfg_scale'), 'g')}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


QUALITY_HEADER = ["model", "sampler", "steps", "guidance", "judge PPL ↓", "entropy", "MAUVE ↑", "diversity ↑",
                  "memorisation", "empty"]  # fmt: skip


def _quality_cells(row: dict) -> list[str]:
    m = row["metrics"]
    sampler = {"reference": "held-out text", "autoregressive": row.get("sampling", "")}.get(row["kind"])
    return [row["model"], sampler or row.get("sampler") or sampler_label(row),
            _fmt(row.get("steps"), "d") if row.get("steps") else "–", _fmt(row.get("guidance_scale"), "g"),
            _fmt(m["gen_ppl"], ".2f"), _fmt(m["entropy"], ".3f"), _fmt(m.get("mauve"), ".3f"),
            _fmt(m["diversity"], ".3f"), _fmt(m.get("memorisation"), ".3f"), str(m["num_empty"])]  # fmt: skip


def _count(n: int) -> str:
    """A parameter count for a table: ``12.3 M`` or ``45.6 k``."""
    return f"{n / 1e6:.1f} M" if n >= 1e6 else f"{n / 1e3:.1f} k"


def _models_markdown(settings: dict) -> list[str]:
    """The benchmarked models: pipeline, sampler defaults, latent shape, decode path and size."""
    models, ar = settings.get("models") or {}, settings.get("ar_baseline")
    if not models and not ar:
        return []
    header = ["model", "pipeline", "scheduler (default sampler)", "guidance", f"latents for {settings['gen_length']} "
              "tokens", "decode", "parameters (denoiser / all)"]  # fmt: skip
    rows = [[name, m["class"], ", ".join(filter(None, (m["scheduler"], m.get("default_sampler")))),
             _fmt(m["default_guidance_scale"], "g") if m.get("learns_guidance", True) else "none learned",
             " × ".join(map(str, m.get("latent_shape", ["–"]))), m.get("decode", "–"),
             f"{_count(m['parameters'])} / {_count(m.get('parameters_total', m['parameters']))}"]
            for name, m in models.items()]  # fmt: skip
    if ar:
        rows.append([ar["name"], ar["class"], "KV-cache generate", "–", "–", "–", _count(ar["parameters"])])
    return ["## Models", "", *_table(header, rows), ""]


def _quality_markdown(quality: dict, settings: dict) -> list[str]:
    rows = quality["rows"]
    lines = ["## Quality", "", f"Judge: `{quality['judge']}`. {settings['protocol']['samples']}", ""]
    sections = [("Baselines", "baseline"), ("Number of steps (default guidance and sampler)", "steps"),
                (f"Guidance sweep at {settings['sweep_steps']} steps (models that learned guidance)", "guidance"),
                (f"Gamma sweep at {settings['sweep_steps']} steps (0 = ODE)", "gamma"),
                (f"Solver sweep at {settings['sweep_steps']} steps", "solver")]  # fmt: skip
    for title, sweep in sections:
        selected = [row for row in rows if sweep in row["sweeps"]]
        if selected:
            lines += [f"### {title}", "", *_table(QUALITY_HEADER, [_quality_cells(r) for r in selected]), ""]
    return lines


def _speed_markdown(speed: dict, settings: dict) -> list[str]:
    rows, matmul, reference = speed["rows"], speed["matmul"], speed.get("reference")
    lines = ["## Speed", "", f"Matmul peak: fp32 `torch.mm` {matmul['size']}³, {matmul['threads']} threads: "
             f"{matmul['flops_best'] / 1e9:.1f} GFLOP/s (best of {matmul['repeats']}; median "
             f"{matmul['flops_median'] / 1e9:.1f}).", ""]  # fmt: skip
    latency = [r for r in rows if r["measure"] == "latency"]
    lines += ["### Latency (batch 1)", "", *_table(
        ["model", "tokens", "steps", "median s", "× AR time", *([f"× {reference} time"] if reference else [])],
        [[r["model"], str(r["gen_length"]), _fmt(r["steps"], "d") if r["steps"] else "–", _fmt(r["seconds"], ".4f"),
          _fmt(r.get("time_ratio"), ".2f"), *([_fmt(r.get("ref_time_ratio"), ".2f")] if reference else [])]
         for r in latency],
    ), ""]  # fmt: skip
    throughput = [r for r in rows if r["measure"] == "throughput"]
    ref_header = [f"× {reference} tokens/s"] if reference else []
    lines += [f"### Throughput (batch {settings['speed_batch_size']})", "", *_table(
        ["model", "tokens", "steps", "median s", "tokens/s", "× AR tokens/s", *ref_header, "GFLOP/s",
         "% of matmul peak"],
        [[r["model"], str(r["gen_length"]), _fmt(r["steps"], "d") if r["steps"] else "–", _fmt(r["seconds"], ".3f"),
          _fmt(r["tokens_per_s"], ".1f"), _fmt(r.get("throughput_ratio"), ".2f"),
          *([_fmt(r.get("ref_speedup"), ".2f")] if reference else []),
          _fmt(r["achieved_flops"] / 1e9, ".1f") if "achieved_flops" in r else "–",
          _fmt(100 * r["peak_fraction"], ".1f") if "peak_fraction" in r else "–"] for r in throughput],
    ), ""]  # fmt: skip
    compared = [r for r in rows if r.get("ref_speedup") is not None]
    if reference and compared:
        lines += [f"### Speed-up over {reference} (same tokens, batch and steps)", "",
                  f"speed-up = {reference} seconds / model seconds (> 1: faster than {reference}).", "", *_table(
            ["model", "measure", "tokens", "batch", "steps", "median s", f"{reference} s", "speed-up"],
            [[r["model"], r["measure"], str(r["gen_length"]), str(r["batch_size"]), _fmt(r["steps"], "d"),
              _fmt(r["seconds"], ".4f"), _fmt(r["ref_seconds"], ".4f"), f"{r['ref_speedup']:.2f}×"]
             for r in compared],
        ), ""]  # fmt: skip
    lines += [f"- skipped: {s['model']} at {s['gen_length']} tokens ({s['reason']})" for s in speed["skipped"]]
    return lines


SCORE_NAMES = {"bleu": "BLEU", "rouge1": "ROUGE-1", "rouge2": "ROUGE-2", "rougeL": "ROUGE-L"}
TASK_HEADER = ["model", "decoding", "steps", "input CFG", "BLEU ↑", "ROUGE-1 ↑", "ROUGE-2 ↑", "ROUGE-L ↑", "× AR BLEU",
               "× AR ROUGE-L", "mean tokens", "empty", "gen s"]  # fmt: skip


def _decoding(row: dict) -> str:
    if row["kind"] == "reference":
        return "held-out text"
    if row["kind"] == "autoregressive":
        top_p = row.get("top_p")
        return (row.get("decoding") or row.get("sampling")) + (f" (top_p={top_p:g})" if top_p is not None else "")
    return "diffusion" if row.get("sc_guidance_scale") is None else f"diffusion, w_sc={row['sc_guidance_scale']:g}"


def _task_cells(row: dict) -> list[str]:
    scores, ratios = row["scores"], row.get("ratios", {})
    return [row["model"], _decoding(row), _fmt(row.get("steps"), "d") if row.get("steps") else "–",
            _fmt(row.get("cfg_scale"), "g") if row["kind"] == "diffusion" else "–",
            *(_fmt(scores[key], ".2f") for key in SCORE_NAMES), _fmt(ratios.get("bleu_ratio"), ".2f"),
            _fmt(ratios.get("rougeL_ratio"), ".2f"), _fmt(row["mean_tokens"], ".1f"), str(row["num_empty"]),
            _fmt(row["generation_seconds"], ".1f")]  # fmt: skip


def _conditional_speed_table(rows: list[dict]) -> list[str]:
    return _table(
        ["model", "measure", "batch", "steps", "median s", "tokens/s", "× AR time", "× AR tokens/s"],
        [[r["model"], r["measure"], str(r["batch_size"]), _fmt(r["steps"], "d") if r["steps"] else "–",
          _fmt(r["seconds"], ".4f"), _fmt(r["tokens_per_s"], ".1f"), _fmt(r.get("time_ratio"), ".2f"),
          _fmt(r.get("throughput_ratio"), ".2f")] for r in rows],
    )  # fmt: skip


def _tasks_markdown(tasks: dict, settings: dict) -> list[str]:
    """One section per paired task: the AR peer and the steps sweep, the input-CFG sweep, speed, skipped models."""
    lines = ["## Paired tasks", "", settings["protocol"].get("tasks", ""), ""]
    for task, result in tasks.items():
        rows = result["rows"]
        lines += [f"### {task}", "", f"{result['num_examples']} test pairs, targets of {result['gen_length']} tokens; "
                  f"main score: {SCORE_NAMES.get(result['metric'], result['metric'])}; ratios to the AR peer's "
                  "greedy row.", ""]  # fmt: skip
        sections = [("AR peer and number of steps (default input CFG)", ("baseline", "steps")),
                    (f"Input CFG sweep at {settings['sweep_steps']} steps", ("cfg",))]  # fmt: skip
        for title, sweeps in sections:
            selected = [row for row in rows if set(sweeps) & set(row["sweeps"])]
            if selected:
                lines += [f"#### {title}", "", *_table(TASK_HEADER, [_task_cells(r) for r in selected]), ""]
        if result.get("speed"):
            lines += ["#### Speed (one source)", "", *_conditional_speed_table(result["speed"]), ""]
        lines += [f"- skipped: {s['model']} ({s['reason']})" for s in result["skipped"]]
        lines += [""] if result["skipped"] else []
    return lines


def _continuation_markdown(continuation: dict, settings: dict) -> list[str]:
    """Prompt continuation: judge perplexity of the continuation given the prompt and entropy, per row."""
    header = ["model", "decoding", "steps", "input CFG", "judge PPL of continuation given prompt ↓", "× AR PPL",
              "entropy", "÷ reference entropy", "empty", "gen s"]  # fmt: skip
    lines = ["## Prompt continuation", "", settings["protocol"].get("continuation", ""), "",
             f"{continuation['num_prompts']} prompts of {continuation['prompt_tokens']} tokens, continuations of "
             f"{continuation['continuation_tokens']} tokens; PPL ratios to the AR ancestral row.", ""]  # fmt: skip
    for title, sweeps in (("Baselines and number of steps (default input CFG)", ("baseline", "steps")),
                          (f"Input CFG sweep at {settings['sweep_steps']} steps", ("cfg",))):  # fmt: skip
        selected = [row for row in continuation["rows"] if set(sweeps) & set(row["sweeps"])]
        if selected:
            lines += [f"### {title}", "", *_table(header, [
                [r["model"], _decoding(r), _fmt(r.get("steps"), "d") if r.get("steps") else "–",
                 _fmt(r.get("cfg_scale"), "g") if r["kind"] == "diffusion" else "–", _fmt(r["metrics"]["ppl"], ".2f"),
                 _fmt(r.get("ppl_ratio"), ".2f"), _fmt(r["metrics"]["entropy"], ".3f"),
                 _fmt(r.get("entropy_ratio"), ".3f"), str(r["metrics"]["num_empty"]),
                 _fmt(r["generation_seconds"], ".1f")] for r in selected]), ""]  # fmt: skip
    lines += [f"- skipped: {s['model']} ({s['reason']})" for s in continuation["skipped"]]
    return lines


def render_markdown(results: dict, plots: Mapping[str, str] | None = None) -> str:
    """``RESULTS.md``: how the numbers were made, then the quality and speed tables and the plots."""
    settings, machine = results["settings"], results["machine"]
    hardware = (
        machine["gpu"] or f"{machine['cpu']}, {machine['cpu_cores']} cores ({machine['torch_threads']} torch threads)"
    )
    lines = [
        "# latentlm benchmark", "",
        f"- Date: {results['date']}",
        f"- Machine: {hardware}; device `{machine['device']}`; torch {machine['torch']}, transformers "
        f"{machine['transformers']}, diffusers {machine['diffusers']}, Python {machine['python']}",
        f"- Mode: {'quick' if settings['quick'] else 'full'}; "
        + (f"{settings['num_samples']} samples per row, " if results.get("quality") else "")
        + f"seed {settings['seed']}, gen_length {settings['gen_length']}",
        "", "Command:", "", "```bash", results["command"], "```", "",
        "Settings:", "", *[f"- **{key}**: {text}" for key, text in settings["protocol"].items()],
        *[f"- **note**: {note}" for note in settings.get("notes", [])], "",
    ]  # fmt: skip
    lines += _models_markdown(settings)
    if results.get("quality"):
        lines += _quality_markdown(results["quality"], settings)
    if results.get("speed"):
        lines += _speed_markdown(results["speed"], settings)
    if results.get("tasks"):
        lines += _tasks_markdown(results["tasks"], settings)
    if results.get("continuation"):
        lines += _continuation_markdown(results["continuation"], settings)
    for key, title in (("frontier", "Judge perplexity vs entropy"), ("quality_vs_steps", "Quality vs steps"),
                       ("cfg_curve", "Input CFG sweep (the U-curve)")):  # fmt: skip
        if plots and key in plots:
            lines += ["", f"![{title}]({Path(plots[key]).name})"]
    return "\n".join(lines).rstrip() + "\n"
