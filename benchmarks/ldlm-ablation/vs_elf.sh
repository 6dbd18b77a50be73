#!/usr/bin/env bash
# Issue 10's second target: LDLM sampling at 8 steps against ELF at 32, both trained on the same data, windows, batch
# and steps (english-prose, the first 4,000 packed 64-token windows, 1,500 steps of 16) — ELF with its own tiny recipe
# (examples/configs/elf-tiny.yaml, 3 x 128), LDLM with the ablation's one-latent-per-token rows (train_rows.sh wide-*).
# Quality (64 samples of 64 tokens at 8 and 32 steps) and speed (batch 1 and batch 64, 64 tokens) in one run, every
# speed also as a ratio to ELF's; LDLM's and Cosmos' solvers (Euler-Maruyama, their default, and DDIM) compared at 8
# steps; then the latent spaces of LDLM and Cosmos (`latentlm reconstruct`).
#   [ROWS="wide-sigma-1 ..."] bash benchmarks/ldlm-ablation/vs_elf.sh OUT_DIR
# Trains the ELF row first if $LDLM_ABLATION_DIR/elf-tiny-1500 is missing (about 20 min on one core), and the AR peer
# (ar-tiny.yaml's recipe at ELF's size class, 4 x 128, the paired tasks' AR peers; same data, windows, batch and steps)
# if $LDLM_ABLATION_DIR/ar-tiny-1500 is missing, and Cosmos at the `wide-` rows' N (64 latents of 256 for 64 tokens;
# its shipped recipes, cosmos-autoencoder-tiny.yaml then cosmos-tiny.yaml with Cosmos' d = 7 for 64 latents; each
# stage the same windows, batch and steps) if $LDLM_ABLATION_DIR/cosmos-n64-1500 is missing (~40 + 5 min on one core).
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${LDLM_ABLATION_DIR:-runs/ldlm-ablation}
OUT=${1:?give the folder the tables go to}
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
if [ ! -f "$RUNS/elf-tiny-1500/model_index.json" ]; then
  .venv/bin/latentlm train examples/configs/elf-tiny.yaml --output_dir "$RUNS/elf-tiny-1500" --seq_len 64 \
    --max_train_samples 4000 --max_steps 1500 --cache_encoder_activations true --eval_steps 500 --save_steps 500
fi
if [ ! -f "$RUNS/ar-tiny-1500/model.safetensors" ]; then
  .venv/bin/latentlm train examples/configs/ar-tiny.yaml --output_dir "$RUNS/ar-tiny-1500" --seq_len 64 \
    --max_train_samples 4000 --max_steps 1500 --per_device_train_batch_size 16 --model.hidden_size 128 \
    --model.intermediate_size 352 --eval_steps 500 --save_steps 500
fi
if [ ! -f "$RUNS/cosmos-ae-n64-1500/model.safetensors" ]; then
  .venv/bin/latentlm train examples/configs/cosmos-autoencoder-tiny.yaml --output_dir "$RUNS/cosmos-ae-n64-1500" \
    --seq_len 64 --max_train_samples 4000 --max_steps 1500 --model.num_latents 64 --model.latent_dim 256 \
    --eval_steps 500 --save_steps 500
fi
if [ ! -f "$RUNS/cosmos-n64-1500/model_index.json" ]; then
  .venv/bin/latentlm train examples/configs/cosmos-tiny.yaml --autoencoder "$RUNS/cosmos-ae-n64-1500" \
    --output_dir "$RUNS/cosmos-n64-1500" --seq_len 64 --max_train_samples 4000 --max_steps 1500 \
    --model.schedule_d 7 --eval_steps 500 --save_steps 500
fi
read -r -a ROWS <<< "${ROWS:-wide-sigma-1 wide-sigma-0.5 wide-no-noise}"
models=(--model "elf-tiny-1500=$RUNS/elf-tiny-1500") codecs=(--autoencoder "cosmos-n64=$RUNS/cosmos-ae-n64-1500")
models+=(--model "cosmos-n64-1500=$RUNS/cosmos-n64-1500")
for row in "${ROWS[@]}"; do
  models+=(--model "ldlm-$row=$RUNS/$row") codecs+=(--autoencoder "ldlm-$row=$RUNS/$row")
done
.venv/bin/latentlm bench "${models[@]}" --num-samples 64 --gen-length 64 --steps 8 32 --guidance-scales 3 \
  --gammas 0 --sweep-steps 8 --solvers euler_maruyama ddim --speed-lengths 64 --speed-reference elf-tiny-1500 \
  --ar-baseline "$RUNS/ar-tiny-1500" --out-dir "$OUT"
# The latent spaces the two latent-diffusion methods sample in: held-out reconstruction under latent noise.
.venv/bin/latentlm reconstruct "${codecs[@]}" --num-sequences 256 --noise-levels 0 0.5 1 2 \
  --out-dir "$OUT/reconstruction"
