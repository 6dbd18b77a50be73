"""Tables and plot of the Cosmos codec comparison from what `run.sh` wrote (no number typed in by hand).

Reads `N{N}-step{S}/reconstruction.json` (held-out clean and noisy accuracy of every variant's checkpoint at step S)
and `N{N}-{variant}-train_log.jsonl` (training accuracy, augmented, every 10 steps) in `--dir` (run.sh's OUT; default
this folder); writes `results-N{N}.md`, `results-N{N}.json` and `curve-N{N}.png` there.

Projection: the held-out clean accuracy `a(s)` of each variant is extrapolated to 90% and 98% by two rules, both
stated in the table: the linear rate of its last two checkpoints (`a` keeps rising as fast as it did last) and a
fit `a = c0 + c1 log s` over its checkpoints from step 200 (a rise that slows like the larger-N runs' did). Neither
is a prediction of where a real run saturates (the 1 M-token training set may cap it first); they only size the
budget.

    python benchmarks/cosmos-codec/summarize.py [--num-latents 16] [--batch 16] [--dir benchmarks/cosmos-codec/muon]
"""

import argparse
import json
import math
from pathlib import Path

import matplotlib


matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


HERE = Path(__file__).parent
VARIANTS = [
    "published", "original", "published+locality", "published+chunk", "published+embedhead",
    "published+chunk+locality", "published+chunk+embedhead", "published+all3",
    "published+all3-uncoupled", "published+all3-learned-slots", "published+all3-projected-latent",
    "published+all3-swiglu", "published+all3-final-norm", "published+all3-factored-head", "published-noaug",
    "published+all3+muon",
]  # fmt: skip
DESCRIPTIONS = {
    "published": "Cosmos as published (codec_version 2)",
    "original": "latentlm's original codec (codec_version 1)",
    "published+locality": "published + locality bias",
    "published+chunk": "published + chunk shortcut",
    "published+embedhead": "published + embedding-initialised head",
    "published+chunk+locality": "published + chunk shortcut + locality bias",
    "published+chunk+embedhead": "published + chunk shortcut + embedding-initialised head",
    "published+all3": "published + all three additions",
    "published+all3-uncoupled": "published + all three, heads uncoupled (original: a side head takes the MSE)",
    "published+all3-learned-slots": "published + all three, learned token slots (original) instead of [MASK] + MLP",
    "published+all3-projected-latent": "published + all three, projected latent (original) instead of the normalised one",
    "published+all3-swiglu": "published + all three, SwiGLU without dropout (original) instead of GELU + dropout 0.1",
    "published+all3-final-norm": "published + all three, with the original's final decoder RMSNorm",
    "published+all3-factored-head": "published + all three, the original's factored token head instead of a Linear",
    "published-noaug": "published, without the augmentations",
    "published+all3+muon": "published + all three additions, Muon (+ AdamW)",
}


def load(root: Path, num_latents: int):
    held_out, settings, machine, commands = {}, None, None, {}
    for path in sorted(root.glob(f"N{num_latents}-step*/reconstruction.json")):
        step = int(path.parent.name.split("step")[1])
        data = json.loads(path.read_text())
        settings, machine, commands[step] = data["settings"], data["machine"], data["command"]
        for name, result in data["autoencoders"].items():
            held_out.setdefault(name, {})[step] = {float(k): v for k, v in result["accuracy"].items()}
    train = {}
    for variant in VARIANTS:
        log = root / f"N{num_latents}-{variant}-train_log.jsonl"
        if log.exists():
            rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
            train[variant] = {row["step"]: row["accuracy"] for row in rows if "accuracy" in row}
    return held_out, train, settings, machine, commands


def project(points: dict[int, float], target: float) -> dict[str, float | None]:
    """Steps at which `target` is reached: last-two-checkpoint linear rate, and `c0 + c1 log s` from step 200."""
    steps = sorted(points)
    linear = log_fit = "n/a"
    if len(steps) >= 2:
        (s0, a0), (s1, a1) = (steps[-2], points[steps[-2]]), (steps[-1], points[steps[-1]])
        rate = (a1 - a0) / (s1 - s0)
        linear = s1 + (target - a1) / rate if rate > 0 else None
    late = [s for s in steps if s >= 200]
    if len(late) >= 2:
        xs, ys = [math.log(s) for s in late], [points[s] for s in late]
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        c1 = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
        c0 = my - c1 * mx
        log_fit = math.exp((target - c0) / c1) if c1 > 0 else None
    return {"linear": linear, "log": log_fit}


def fmt_steps(steps: float | str | None, batch: int) -> str:
    if steps == "n/a":
        return "n/a (too few checkpoints)"
    if steps is None:
        return "never (not rising)"
    return f"{steps:,.0f} ({steps * batch / 1e6:.2g} M seq.)" if steps < 1e12 else "> 1e12"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--num-latents", type=int, default=16)
    parser.add_argument("--batch", type=int, default=16, help="sequences per training step of the runs")
    parser.add_argument("--dir", type=Path, default=HERE, help="run.sh's OUT: where the results are read and written")
    args = parser.parse_args()
    n, batch, root = args.num_latents, args.batch, args.dir
    held_out, train, settings, machine, commands = load(root, n)
    variants = [v for v in VARIANTS if v in held_out]
    last = {v: max(held_out[v]) for v in variants}
    levels = sorted(next(iter(held_out[variants[0]].values()))) if variants else []

    lines = [f"# Cosmos codec, N = {n}: the variants of run.sh, held-out reconstruction by training step", ""]
    lines += [f"- Machine: {machine}", f"- Reconstruction settings: {settings}",
              f"- Commands: `bash benchmarks/cosmos-codec/run.sh train` (NUM_LATENTS={n}), then "
              "`bash benchmarks/cosmos-codec/run.sh evaluate`, which ran:"]  # fmt: skip
    lines += [f"  - step {s}: `{c}`" for s, c in sorted(commands.items())]
    lines += [
        "",
        f"## Held-out clean token accuracy vs training step (test split, {(settings or {}).get('num_sequences')} sequences)",
        "",
    ]
    steps = sorted({s for v in variants for s in held_out[v]})
    lines += ["| variant | " + " | ".join(f"step {s}" for s in steps) + " |", "|---|" + "---|" * len(steps)]
    for v in variants:
        cells = [f"{held_out[v][s][0.0]:.4f}" if s in held_out[v] else "" for s in steps]
        lines.append(f"| {DESCRIPTIONS[v]} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Smoothness: held-out accuracy at the last checkpoint under latent noise σ (normalised latents)",
        "",
    ]
    lines += ["| variant | step | " + " | ".join(f"σ = {lv:g}" for lv in levels) + " | drop σ 0 → 2 (relative) |",
              "|---|---|" + "---|" * (len(levels) + 1)]  # fmt: skip
    for v in variants:
        acc = held_out[v][last[v]]
        drop = (acc[0.0] - acc[max(levels)]) / acc[0.0] if acc[0.0] else float("nan")
        lines.append(f"| {DESCRIPTIONS[v]} | {last[v]} | " + " | ".join(f"{acc[lv]:.4f}" for lv in levels)
                     + f" | {drop:.1%} |")  # fmt: skip
    lines += [
        "",
        "## Training accuracy (training batches, augmented where the run is; mean over the 10 steps ending at)",
        "",
    ]
    marks = [s for s in (50, 100, 150, 200, 300, 400) if any(s in t for t in train.values())]
    lines += [
        "| variant | " + " | ".join(f"step {s}" for s in marks) + " | last logged |",
        "|---|" + "---|" * (len(marks) + 1),
    ]
    for v in [v for v in VARIANTS if v in train]:
        cells = [f"{train[v][s]:.4f}" if s in train[v] else "" for s in marks]
        cells.append(f"{train[v][max(train[v])]:.4f} (step {max(train[v])})")
        lines.append(f"| {DESCRIPTIONS[v]} | " + " | ".join(cells) + " |")
    lines += ["", f"## Budget projection to 90% / 98% held-out clean accuracy (steps of batch {batch})", ""]
    lines += ["| variant | 90%, linear | 90%, log fit | 98%, linear | 98%, log fit |", "|---|---|---|---|---|"]
    projections = {}
    for v in variants:
        points = {s: held_out[v][s][0.0] for s in held_out[v]}
        projections[v] = {str(t): project(points, t) for t in (0.9, 0.98)}
        p90, p98 = projections[v]["0.9"], projections[v]["0.98"]
        cells = [fmt_steps(p[rule], batch) for p in (p90, p98) for rule in ("linear", "log")]
        lines.append(f"| {DESCRIPTIONS[v]} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Budget projection from the committed sweep (original codec = `codec_version 1`, batch 16, 400 steps)",
        "",
    ]
    lines += ["Training accuracy (augmentations on: below clean held-out accuracy) of "
              "`benchmarks/training/cosmos-sweep/cosmos-ae-{N}[-noaug]-train_log.jsonl`, the runs behind the 16% "
              "(held-out at step 400 in `benchmarks/cosmos/reconstruction.md`); same rules as above, from the "
              "10-step means (the log fit over steps >= 200).", ""]  # fmt: skip
    lines += ["| run | accuracy at step 400 | 90%, linear | 90%, log fit | 98%, linear | 98%, log fit |",
              "|---|---|---|---|---|---|"]  # fmt: skip
    sweep = {}
    for name in (f"cosmos-ae-{n}", f"cosmos-ae-{n}-noaug"):
        log = HERE.parent / "training" / "cosmos-sweep" / f"{name}-train_log.jsonl"
        if not log.exists():
            continue
        rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
        points = {row["step"]: row["accuracy"] for row in rows if "accuracy" in row}
        tail = {s: a for s, a in points.items() if s >= max(points) - 100}
        linear_points = {min(tail): tail[min(tail)], max(tail): tail[max(tail)]}
        sweep[name] = {str(t): {"linear": project(linear_points, t)["linear"], "log": project(points, t)["log"]}
                       for t in (0.9, 0.98)}  # fmt: skip
        cells = [fmt_steps(sweep[name][t][rule], 16) for t in ("0.9", "0.98") for rule in ("linear", "log")]
        lines.append(f"| {name} | {points[max(points)]:.4f} | " + " | ".join(cells) + " |")
    lines += ["", "(linear: the rate over the last 100 steps; the official Cosmos budget is 100k steps x 512.)"]
    lines += ["", f"![held-out and training accuracy vs step](curve-N{n}.png)", ""]
    (root / f"results-N{n}.md").write_text("\n".join(lines))
    (root / f"results-N{n}.json").write_text(json.dumps(
        {"held_out": {v: {str(s): {str(k): a for k, a in acc.items()} for s, acc in held_out[v].items()} for v in variants},
         "train_accuracy": train, "projections": projections, "sweep_projections": sweep, "settings": settings,
         "machine": machine,
         "commands": commands}, indent=1))  # fmt: skip

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax in (ax1, ax2):
        ax.set_prop_cycle(color=plt.cm.tab20.colors)  # more variants than the default cycle's 10 colours
    for v in variants:
        s = sorted(held_out[v])
        ax1.plot(s, [held_out[v][x][0.0] for x in s], marker="o", label=DESCRIPTIONS[v])
    for v in [v for v in VARIANTS if v in train]:
        s = sorted(train[v])
        ax2.plot(s, [train[v][x] for x in s], label=DESCRIPTIONS[v])
    ax1.set(title=f"N = {n}: held-out clean accuracy", xlabel=f"step (batch {batch})", ylabel="token accuracy")
    ax2.set(title=f"N = {n}: training accuracy (augmented)", xlabel=f"step (batch {batch})")
    ax1.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(root / f"curve-N{n}.png", dpi=110)
    print((root / f"results-N{n}.md").read_text())


if __name__ == "__main__":
    main()
