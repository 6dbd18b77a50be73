#!/usr/bin/env bash
# Sampling speed of every method beside the AR peer, in one `latentlm bench` run on this machine (issue 13): latency
# (batch 1) and throughput (batch 64) for 128 tokens, as ratios to a same-size AR model's KV-cached `generate`, with
# each model's achieved matmul FLOP/s as a share of the measured fp32 `torch.mm` peak.
#   [SLICE=16|0] bash benchmarks/speed-cpu/run.sh    (models in $OUT, default runs/speed-cpu; tables in $RES below)
# Rows: the bundled ELF default; Cosmos N = 16 (8x) on the tiny published-form codec (400 x 16 steps,
# benchmarks/cosmos-codec/batch16) with the cosmos-tiny denoiser (1,000 x 16 steps); LDLM and NFDM at their tiny
# recipes trained only 40 steps at 128 tokens (speed does not depend on training: the AR peer generates exactly L
# tokens, the diffusion rows a fixed number of steps); the AR peer is ar-tiny-128 (3 x 128 Llama, 1,000 x 16 steps).
set -euo pipefail
OUT=${OUT:-runs/speed-cpu}
CODEC=${CODEC:-$OUT/cosmos-codec-n16}
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
train() {  # NAME CONFIG [OVERRIDES...]
  local name=$1 config=$2
  shift 2
  [ -f "$OUT/$name/training_config.yaml" ] && [ -d "$OUT/$name/checkpoints" ] && [ -f "$OUT/$name/README.md" ] ||
    latentlm train "$config" --output_dir "$OUT/$name" "$@"
}
train cosmos-codec-n16 examples/configs/cosmos-autoencoder-tiny.yaml --fill_frames false
train cosmos-n16 examples/configs/cosmos-tiny.yaml --autoencoder "$CODEC" --fill_frames false
train ar-tiny-128 examples/configs/ar-tiny-128.yaml
# ldlm-128: the committed speed rows' geometry (16 latents of 128, the example config's before 2026-11-30)
train ldlm-128 examples/configs/ldlm-tiny.yaml --seq_len 128 --max_steps 40 --save_steps 40 --eval_steps 40 \
  --model.num_latents 16 --model.latent_dim 128 --model.decoder_noise_std 3.0
train nfdm-128 examples/configs/nfdm-tiny.yaml --seq_len 128 --max_steps 40 --save_steps 40 --eval_steps 40
# SLICE=16 (default): the pipelines run their model on at most 16 sequences at a time (`--batch-slice`,
# `pipe.enable_batch_slicing`); SLICE=0: whole batches (the unsliced/ run).
SLICE=${SLICE:-16}
RES=benchmarks/speed-cpu
SLICING=(--batch-slice "$SLICE")
if [ "$SLICE" = 0 ]; then RES=benchmarks/speed-cpu/unsliced SLICING=(); fi
latentlm bench --no-quality "${SLICING[@]}" \
  --model elf-tiny-prose=src/latentlm/pretrained/elf-tiny-prose --model cosmos-n16="$OUT/cosmos-n16" \
  --model ldlm="$OUT/ldlm-128" --model nfdm="$OUT/nfdm-128" --ar-baseline "$OUT/ar-tiny-128" \
  --speed-lengths 128 --speed-batch-size 64 --steps 8 32 --sweep-steps 32 \
  --latency-repeats 5 --throughput-repeats 3 --out-dir "$RES"
