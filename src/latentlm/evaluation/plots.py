"""Plots of benchmark results (matplotlib, Agg backend): the perplexity-entropy frontier, quality vs steps and the
input-CFG U-curve of the conditional rows.

The first two read the ``quality`` section of a :func:`~latentlm.evaluation.benchmark.run_benchmark` result
(``results.json``), :func:`plot_cfg_curve` its ``tasks`` and ``continuation`` sections; :func:`plot_reconstruction`
reads a :func:`~latentlm.evaluation.reconstruction.run_reconstruction` result.
"""

from __future__ import annotations

import math
from pathlib import Path


BASELINE_STYLES = {  # row kind / sampling -> (marker, colour, label suffix)
    "reference": ("*", "black", "reference text"),
    "ancestral": ("^", "dimgray", "ancestral"),
    "nucleus": ("v", "darkgray", "nucleus p=0.9"),
}


def _pyplot():
    """``matplotlib.pyplot`` on the non-interactive Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _finite(value) -> bool:
    return value is not None and isinstance(value, (int, float)) and math.isfinite(value)


def _diffusion_models(rows: list[dict]) -> list[str]:
    return list(dict.fromkeys(row["model"] for row in rows if row["kind"] == "diffusion"))


def _baseline_rows(rows: list[dict]) -> list[tuple[dict, tuple[str, str, str]]]:
    """Reference and AR rows with their marker, colour and label."""
    out = []
    for row in rows:
        if row["kind"] == "reference":
            out.append((row, BASELINE_STYLES["reference"]))
        elif row["kind"] == "autoregressive":
            marker, colour, suffix = BASELINE_STYLES.get(row.get("sampling"), ("D", "gray", row.get("sampling", "")))
            out.append((row, (marker, colour, f"{row['model']} {suffix}")))
    return out


def _sweep(rows: list[dict], model: str, sweep: str, key: str) -> list[tuple[float, dict]]:
    """``(setting value, row)`` of one model's sweep, ordered by the value."""
    selected = [(row[key], row) for row in rows if row["model"] == model and sweep in row["sweeps"]]
    return sorted(selected, key=lambda item: item[0])


# sweep -> (row key, marker, line style, annotation of a value, annotation offset in points)
FRONTIER_SWEEPS = {
    "guidance": ("guidance_scale", "o", "-", lambda value: f"w={value:g}", (4, 4)),
    "gamma": ("gamma", "s", "--", lambda value: f"γ={value:g}", (4, -11)),
    "solver": ("solver", "^", "none", str, (4, -11)),  # categorical: markers only
}
# A model with none of the sweeps above (no guidance learned, no solver sweep asked: Cosmos by default) shows its
# number-of-steps sweep instead, so every model is on the frontier.
STEPS_SWEEP = {"steps": ("steps", "D", "-.", lambda value: f"n={value}", (4, 4))}


def plot_frontier(results: dict, path) -> str:
    """Judge perplexity (log) vs unigram entropy: each model's guidance sweep (circles), gamma sweep (squares) and
    solver sweep (triangles), or its steps sweep (diamonds) when it has none of those, annotated with their values;
    one colour per model; the AR rows and the reference text as markers."""
    plt = _pyplot()
    rows = results["quality"]["rows"]
    fig, ax = plt.subplots(figsize=(7.5, 5.5))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, model in enumerate(_diffusion_models(rows)):
        colour = colours[i % len(colours)]
        swept = {sweep for row in rows if row["model"] == model for sweep in row.get("sweeps", ())}
        sweeps = {name: spec for name, spec in FRONTIER_SWEEPS.items() if name in swept} or STEPS_SWEEP
        for sweep, (key, marker, linestyle, annotation, offset) in sweeps.items():
            points = [(v, r) for v, r in _sweep(rows, model, sweep, key) if _finite(r["metrics"]["gen_ppl"])]
            if not points:
                continue
            xs = [r["metrics"]["entropy"] for _, r in points]
            ys = [r["metrics"]["gen_ppl"] for _, r in points]
            ax.plot(xs, ys, marker=marker, linestyle=linestyle, color=colour, label=f"{model}: {sweep} sweep")
            for (value, _), x, y in zip(points, xs, ys):
                ax.annotate(annotation(value), (x, y), textcoords="offset points", xytext=offset, fontsize=7,
                            color=colour)  # fmt: skip
    for row, (marker, colour, label) in _baseline_rows(rows):
        if _finite(row["metrics"]["gen_ppl"]):
            ax.scatter(row["metrics"]["entropy"], row["metrics"]["gen_ppl"], marker=marker, s=140, color=colour,
                       edgecolors="black", linewidths=0.5, zorder=3, label=label)  # fmt: skip
    ax.set_yscale("log")
    ax.set_xlabel("unigram entropy (nats, judge tokens) →  more varied")
    ax.set_ylabel("judge generative perplexity (log) ↓")
    settings = results["settings"]
    ax.set_title(f"Perplexity vs entropy, {settings['num_samples']} samples × {settings['gen_length']} tokens, "
                 f"sweeps at {settings['sweep_steps']} steps", fontsize=10)  # fmt: skip
    ax.grid(True, which="both", alpha=0.3)
    num_entries = len(ax.get_legend_handles_labels()[1])
    ax.legend(fontsize=7 if num_entries > 6 else 8, loc="best", ncol=2 if num_entries > 6 else 1)
    return _save(fig, path)


def plot_quality_vs_steps(results: dict, path) -> str:
    """Judge perplexity and MAUVE vs the number of steps for each model; AR rows and the reference as horizontal
    lines. The MAUVE panel is left out when no row has a MAUVE score."""
    plt = _pyplot()
    from matplotlib.ticker import ScalarFormatter

    rows = results["quality"]["rows"]
    metrics = [("gen_ppl", "judge generative perplexity (log) ↓", True)]
    if any(_finite(row["metrics"].get("mauve")) for row in rows):
        metrics.append(("mauve", "MAUVE ↑", False))
    fig, axes = plt.subplots(1, len(metrics), figsize=(6 * len(metrics), 4.5), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, (key, label, log) in zip(axes[0], metrics):
        for i, model in enumerate(_diffusion_models(rows)):
            points = [(s, r["metrics"].get(key)) for s, r in _sweep(rows, model, "steps", "steps")]
            points = [(s, v) for s, v in points if _finite(v)]
            if points:
                ax.plot(*zip(*points), marker="o", color=colours[i % len(colours)], label=model)
        for row, (_, colour, name) in _baseline_rows(rows):
            if _finite(row["metrics"].get(key)):
                ax.axhline(row["metrics"][key], color=colour, linestyle=":" if row["kind"] == "reference" else "--",
                           label=name)  # fmt: skip
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted({r["steps"] for r in rows if "steps" in r["sweeps"]}) or [1])
        ax.get_xaxis().set_major_formatter(ScalarFormatter())
        if log:
            ax.set_yscale("log")
        ax.set_xlabel("number of steps")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(4, len(labels)), fontsize=8, frameon=False)
    fig.suptitle("Quality vs number of steps (default guidance and sampler)", fontsize=11)
    return _save(fig, path, rect=(0, 0.06 * (1 + (len(labels) - 1) // 4), 1, 1))


def plot_reconstruction(results: dict, path) -> str:
    """Reconstruction token accuracy vs the noise level on the normalised latents (the smoothness curve), one line
    per autoencoder of a :func:`~latentlm.evaluation.reconstruction.run_reconstruction` result: the same number of
    latents N in the same colour, augmented autoencoders solid, not augmented dashed."""
    plt = _pyplot()
    rows = results["autoencoders"]
    levels = results["settings"]["noise_levels"]
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    colour_of = {n: colours[i % len(colours)] for i, n in enumerate(sorted({r["num_latents"] for r in rows.values()}))}
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, row in rows.items():
        points = [(level, row["accuracy"].get(format(level, "g"))) for level in levels]
        points = [(level, value) for level, value in points if _finite(value)]
        if not points:
            continue
        augmented = row["augmentation"]["augmented"]
        kind = "augmented" if augmented else "not augmented"
        label = f"{name} (N={row['num_latents']}, L/N={row['compression_ratio']:g}, {kind})"
        ax.plot(*zip(*points), marker="o", color=colour_of[row["num_latents"]], linestyle="-" if augmented else "--",
                label=label)  # fmt: skip
    settings = results["settings"]
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("σ of the Gaussian noise added to the normalised latents")
    ax.set_ylabel("reconstruction token accuracy ↑")
    ax.set_title(f"Reconstruction accuracy vs latent noise, {settings['num_sequences']} {settings['split']} "
                 f"sequences, seed {settings['seed']}", fontsize=10)  # fmt: skip
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return _save(fig, path)


BASELINE_LINES = {None: ":", "greedy": "--", "ancestral": "--", "nucleus": "-."}  # decoding -> line style


def plot_cfg_curve(results: dict, path) -> str | None:
    """The input-CFG U-curve: for each paired task, its main score (ROUGE-L or BLEU) vs the CFG scale, one line per
    diffusion model, the AR peer's greedy score as a dashed line; plus, with continuation rows, the judge perplexity of
    the continuations vs the CFG scale. ``None`` (nothing written) when no row has a CFG sweep."""
    panels = []  # (title, rows, value of a row, y label, log scale)
    for task, result in (results.get("tasks") or {}).items():
        metric = result["metric"]
        label = {"bleu": "BLEU", "rougeL": "ROUGE-L"}.get(metric, metric)
        panels.append((task, result["rows"], lambda row, m=metric: row["scores"].get(m), f"{label} ↑", False))
    if results.get("continuation"):
        rows = results["continuation"]["rows"]
        ppl_label = "judge PPL of continuation given prompt ↓"
        panels.append(("continuation", rows, lambda row: row["metrics"].get("ppl"), ppl_label, True))
    panels = [panel for panel in panels if any("cfg" in row["sweeps"] for row in panel[1])]
    if not panels:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 4), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, (title, rows, value, ylabel, log) in zip(axes[0], panels):
        for i, model in enumerate(_diffusion_models(rows)):
            points = sorted((row["cfg_scale"], value(row)) for row in rows
                            if row["model"] == model and "cfg" in row["sweeps"] and _finite(value(row)))  # fmt: skip
            if points:
                ax.plot(*zip(*points), marker="o", color=colours[i % len(colours)], label=model)
        for row in rows:
            if row["kind"] != "diffusion" and _finite(value(row)):
                name = row.get("decoding") or row.get("sampling")
                label = f"{row['model']} {name}" if name else "reference text"
                ax.axhline(value(row), color="black" if name is None else "gray", label=label,
                           linestyle=BASELINE_LINES.get(name, "--"))  # fmt: skip
        values = [value(row) for row in rows if _finite(value(row)) and value(row) > 0]
        if log and values and max(values) > 10 * min(values):  # a log axis only where it spans a decade
            ax.set_yscale("log")
        ax.set_xlabel("input CFG scale (1 = off)")
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    settings = results["settings"]
    fig.suptitle(f"Input classifier-free guidance sweep at {settings['sweep_steps']} steps", fontsize=11)
    return _save(fig, path)


def _save(fig, path, rect=(0, 0, 1, 1)) -> str:
    fig.tight_layout(rect=rect)
    fig.savefig(path, dpi=120)
    fig.clf()
    import matplotlib.pyplot as plt

    plt.close(fig)
    return str(path)


def write_plots(results: dict, out_dir) -> dict[str, str]:
    """Write ``frontier.png`` and ``quality_vs_steps.png`` (with a quality section) and ``cfg_curve.png`` (with an
    input-CFG sweep of a paired task or of prompt continuation) to ``out_dir``."""
    out, paths = Path(out_dir), {}
    if results.get("quality"):
        paths["frontier"] = plot_frontier(results, out / "frontier.png")
        paths["quality_vs_steps"] = plot_quality_vs_steps(results, out / "quality_vs_steps.png")
    cfg_curve = plot_cfg_curve(results, out / "cfg_curve.png")
    if cfg_curve:
        paths["cfg_curve"] = cfg_curve
    return paths


__all__ = ["plot_cfg_curve", "plot_frontier", "plot_quality_vs_steps", "plot_reconstruction", "write_plots"]
