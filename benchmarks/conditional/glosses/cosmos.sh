#!/usr/bin/env bash
# Conditional Cosmos on wordnet-gloss (word -> gloss), at the budget of the from-scratch ELF / AR pair of RESULTS.md
# here (elf-glosses.yaml, ar-glosses.yaml: 600 steps of 32 pairs of the first 19,200 training pairs, 16 source and 32
# target tokens). Two stages, as Cosmos trains:
#   1. the codec (cosmos-autoencoder-tiny.yaml's recipe) on the same 19,200 glosses, 32 tokens -> 4 latents (8x);
#   2. the conditional denoiser (cosmos-tiny.yaml: 3 x 128, cross-attention to the source's frozen-encoder states,
#      condition dropout 0.1) for 600 steps of 32 pairs: the diffusion stage has the pair's budget, the codec is extra.
# The ELF and AR peers are trained again with their example configs (ar-glosses.yaml, elf-glosses.yaml), then one
# `latentlm bench --task wordnet-gloss` scores all three on the first 128 test pairs (steps 8 / 32 / 200, input CFG
# sweep at 32 steps). Runs whose export exists are not trained again.
#
#   RUNS=runs/glosses-cosmos bash benchmarks/conditional/glosses/cosmos.sh
#
# Environment: RUNS (runs/glosses-cosmos), OUT (benchmarks/conditional/glosses/cosmos), CODEC_STEPS (800),
# STEPS (600).
set -euo pipefail
cd "$(dirname "$0")/../../.."
RUNS=${RUNS:-runs/glosses-cosmos}
OUT=${OUT:-benchmarks/conditional/glosses/cosmos}
mkdir -p "$RUNS" "$OUT"
pairs=(--dataset wordnet-gloss --max_train_samples 19200 --seq_len 32 --per_device_train_batch_size 32
  --per_device_eval_batch_size 32 --report_to none --seed 0)

# The codec reads the glosses as plain texts (text_column target), each padded to 32 tokens after its [SEP]: the
# diffusion stage's targets are the same tokens with [SEP] filling the rest.
if [[ ! -f "$RUNS/codec/model.safetensors" ]]; then
  latentlm train examples/configs/cosmos-autoencoder-tiny.yaml --output_dir "$RUNS/codec" "${pairs[@]}" \
    --text_column target --packing false --framing false --model.num_latents 4 --max_steps "${CODEC_STEPS:-800}" \
    --eval_steps 200 --save_steps 200 > "$RUNS/codec.log" 2>&1
fi
if [[ ! -f "$RUNS/cosmos/model_index.json" ]]; then
  latentlm train examples/configs/cosmos-tiny.yaml --autoencoder "$RUNS/codec" --output_dir "$RUNS/cosmos" "${pairs[@]}" \
    --source_column source --target_column target --max_source_length 16 --model.conditional true \
    --model.condition_dropout 0.1 --max_steps "${STEPS:-600}" --eval_steps 200 --save_steps 200 \
    > "$RUNS/cosmos.log" 2>&1
fi
[[ -f "$RUNS/ar/model.safetensors" ]] || latentlm train examples/configs/ar-glosses.yaml --output_dir "$RUNS/ar" > "$RUNS/ar.log" 2>&1
[[ -f "$RUNS/elf/model_index.json" ]] || latentlm train examples/configs/elf-glosses.yaml --output_dir "$RUNS/elf" > "$RUNS/elf.log" 2>&1
latentlm bench --no-quality --no-speed --task wordnet-gloss --task-model "wordnet-gloss:cosmos=$RUNS/cosmos" \
  --task-model "wordnet-gloss:elf=$RUNS/elf" --task-ar "wordnet-gloss=$RUNS/ar" \
  --task-source-tokens 16 --task-gen-length 32 --task-samples 128 --task-steps 8 32 200 --cfg-scales 1 1.5 2 3 4 \
  --out-dir "$OUT"
cp "$RUNS/codec/train_log.jsonl" "$OUT/codec-train_log.jsonl"
for run in cosmos elf ar; do cp "$RUNS/$run/train_log.jsonl" "$OUT/$run-train_log.jsonl"; done
