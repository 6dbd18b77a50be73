#!/usr/bin/env bash
# Stage 2: one Cosmos diffusion model per row on the frozen autoencoder of train_autoencoder.sh, all with
# examples/configs/cosmos-tiny.yaml (3 x 128 denoiser, batch 16, lr 1e-3, EMA 0.99) and the same seed and budget.
# usage: run_rows.sh ROW [ROW ...]   (STEPS=300 by default; rows below)
set -euo pipefail
cd "$(dirname "$0")/../.."
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 PYTHONPATH="$PWD/src"
STEPS="${STEPS:-300}"

# latentlm's first form of the denoiser: every option at the value configs saved before the options have.
FIRST="--model.time_injection tokens --model.num_time_tokens 4 --model.time_embedding_max_period 10000.0
  --model.self_conditioning_injection input --model.long_skip_merge concat_linear --model.output_head norm_linear
  --model.self_cond_per_batch false"
declare -A ROWS=(
  [first-form]="$FIRST"
  [published]=""  # the CosmosLMConfig defaults (set explicitly in cosmos-tiny.yaml)
  # the first form with one published change each
  [per-layer-time]="$FIRST --model.time_injection per_layer --model.num_time_tokens 0"
  [max-period-10]="$FIRST --model.time_embedding_max_period 10.0"
  [per-layer-sc]="$FIRST --model.self_conditioning_injection per_layer"
  [additive-skips]="$FIRST --model.long_skip_merge add"
  [norm-output]="$FIRST --model.output_head norm"
  [coin-per-batch]="$FIRST --model.self_cond_per_batch true"
)
for row in "$@"; do
  start=$(date +%s)
  # shellcheck disable=SC2086
  nice -n 10 env OMP_NUM_THREADS=1 .venv/bin/latentlm train examples/configs/cosmos-tiny.yaml \
    --autoencoder runs/cosmos-denoiser/ae-32 --fill_frames false --output_dir "runs/cosmos-denoiser/$row" \
    --max_steps "$STEPS" --eval_steps "$STEPS" --save_steps "$STEPS" ${ROWS[$row]}
  echo $(( $(date +%s) - start )) > "runs/cosmos-denoiser/$row/wall_seconds"
done
