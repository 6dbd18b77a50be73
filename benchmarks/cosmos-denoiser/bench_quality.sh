#!/usr/bin/env bash
# Sample quality (judge perplexity, entropy, MAUVE, diversity) and batch-1 latency against the number of sampling
# steps, for the rows of run_rows.sh given as arguments (default: first-form and published).
set -euo pipefail
cd "$(dirname "$0")/../.."
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 PYTHONPATH="$PWD/src"
rows=("${@:-first-form published}")
models=()
for row in ${rows[@]}; do models+=(--model "$row=runs/cosmos-denoiser/$row"); done
nice -n 10 env OMP_NUM_THREADS=1 .venv/bin/latentlm bench "${models[@]}" --num-samples 64 --gen-length 128 \
  --steps 25 50 200 --speed-lengths 128 --latency-repeats 1 --throughput-repeats 1 \
  --out-dir benchmarks/cosmos-denoiser/quality
