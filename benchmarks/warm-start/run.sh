#!/usr/bin/env bash
# Warm vs cold start of ELF's denoiser at the same budget (see README.md): three trainings side by side, one thread
# each (the warm start, the warm start with a fitted input projection, and their cold twin with the same BERT blocks
# randomly initialised), then their validation curves compared (compare.py -> results.json).
# Usage, from the repository root: benchmarks/warm-start/run.sh [RUNS_DIR] [RUN ...]   (default runs/warm-start,
# all three runs; naming runs, e.g. `warm cold`, trains only those and compares whatever logs are present)
set -euo pipefail
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
runs=${1:-runs/warm-start}
shift || true
starts=("${@:-warm warm-fit cold}")
here=benchmarks/warm-start
mkdir -p "$runs"
for start in ${starts[@]}; do
  nice -n 10 env OMP_NUM_THREADS=1 latentlm train "$here/elf-minilm-$start.yaml" --output_dir "$runs/$start" \
    > "$runs/$start.out" 2>&1 &
done
wait
for start in ${starts[@]}; do cp "$runs/$start/train_log.jsonl" "$here/$start-train_log.jsonl"; done
python "$here/compare.py" "$here/cold-train_log.jsonl" "warm=$here/warm-train_log.jsonl" \
  "warm-fit=$here/warm-fit-train_log.jsonl" --out "$here/results.json"
