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

# `latentlm train CONFIG ARGS` into $RUNS/RUN unless that run has exported already (a pipeline or a model).
train_once() {
  local run=$1 config=$2
  shift 2
  [[ -f "$RUNS/$run/model_index.json" || -f "$RUNS/$run/model.safetensors" ]] && return 0
  latentlm train "$config" --output_dir "$RUNS/$run" "$@" > "$RUNS/$run.log" 2>&1
}

# The codec reads the glosses as plain texts (text_column target), each padded to 32 tokens after its [SEP]: the
# diffusion stage's targets are the same tokens with [SEP] filling the rest.
train_once codec examples/configs/cosmos-autoencoder-tiny.yaml "${pairs[@]}" --text_column target --packing false \
  --framing false --model.num_latents 4 --max_steps "${CODEC_STEPS:-800}" --eval_steps 200 --save_steps 200
train_once cosmos examples/configs/cosmos-tiny.yaml --autoencoder "$RUNS/codec" "${pairs[@]}" --source_column source \
  --target_column target --max_source_length 16 --model.conditional true --model.condition_dropout 0.1 \
  --max_steps "${STEPS:-600}" --eval_steps 200 --save_steps 200
train_once ar examples/configs/ar-glosses.yaml
train_once elf examples/configs/elf-glosses.yaml
latentlm bench --no-quality --no-speed --task wordnet-gloss --task-model "wordnet-gloss:cosmos=$RUNS/cosmos" \
  --task-model "wordnet-gloss:elf=$RUNS/elf" --task-ar "wordnet-gloss=$RUNS/ar" \
  --task-source-tokens 16 --task-gen-length 32 --task-samples 128 --task-steps 8 32 200 --cfg-scales 1 1.5 2 3 4 \
  --out-dir "$OUT"
for run in codec cosmos elf ar; do cp "$RUNS/$run/train_log.jsonl" "$OUT/$run-train_log.jsonl"; done
