#!/usr/bin/env bash
# The latent-space methods on a paired task — conditional Cosmos and conditional LDLM — at the budget of that task's
# from-scratch ELF / AR pair (their example configs: 600 steps of 32 pairs of the first 19,200 training pairs):
#   * Cosmos in its two stages: the codec (cosmos-autoencoder-tiny.yaml's recipe) on the same 19,200 targets, TARGET
#     tokens -> TARGET / 8 latents (8x), CODEC_STEPS steps of 32; then the conditional denoiser (cosmos-tiny.yaml: 3 x
#     128, cross-attention to the source's frozen-encoder states, condition dropout 0.1) for the pair's 600 steps of 32
#     (the diffusion stage has the pair's budget, the codec is extra);
#   * LDLM in its one joint stage (ldlm-tiny.yaml's recipe and 3 x 128 denoiser, cross-attention to the source's
#     frozen-LM states, condition dropout 0.1) for the pair's 600 steps of 32, at the geometry where its decoder noise
#     lets the codec learn (benchmarks/ldlm-ablation: one latent of 256 per token, sigma_dec = 1; S_wu = 180 steps).
# The ELF and AR peers are trained with their example configs. Two chains of runs, one per core (the Cosmos stages;
# the AR, ELF and LDLM runs), then one `latentlm bench --task TASK` scores every model on the first 128 test pairs
# (steps 8 / 32 / 200, input CFG sweep at 32 steps). Runs whose export exists are not trained again.
#
#   bash benchmarks/conditional/paired.sh wordnet-gloss    # runs/wordnet-gloss-latent -> glosses/latent
#   bash benchmarks/conditional/paired.sh kjv-web          # runs/kjv-web-latent -> verses/latent
#   bash benchmarks/conditional/paired.sh bbc-headlines    # runs/bbc-headlines-latent -> headlines/latent
#
# Environment: MODELS (the rows beside the AR reference: "cosmos ldlm elf"; every run is deterministic, so a row
# trained and scored alone reproduces its numbers in a full run), RUNS (runs/TASK-latent), OUT (above), CODEC_STEPS
# (800), STEPS (600).
set -euo pipefail
cd "$(dirname "$0")/../.."
TASK=${1:?usage: $0 wordnet-gloss|kjv-web|bbc-headlines}
case "$TASK" in
  wordnet-gloss) SOURCE=16 TARGET=32 CONFIG=glosses OUT=${OUT:-benchmarks/conditional/glosses/latent} ;;
  kjv-web) SOURCE=64 TARGET=64 CONFIG=verses OUT=${OUT:-benchmarks/conditional/verses/latent} ;;
  bbc-headlines) SOURCE=64 TARGET=16 CONFIG=headlines OUT=${OUT:-benchmarks/conditional/headlines/latent} ;;
  *) echo "$0: TASK must be wordnet-gloss, kjv-web or bbc-headlines, got '$TASK'" >&2; exit 2 ;;
esac
RUNS=${RUNS:-runs/$TASK-latent}
read -r -a MODELS <<< "${MODELS:-cosmos ldlm elf}"
mkdir -p "$RUNS" "$OUT"
pairs=(--dataset "$TASK" --max_train_samples 19200 --seq_len "$TARGET" --per_device_train_batch_size 32
  --per_device_eval_batch_size 32 --report_to none --seed 0)

# `latentlm train CONFIG ARGS` into $RUNS/RUN unless that run has exported already (a pipeline or a model).
train_once() {
  local run=$1 config=$2
  shift 2
  [[ -f "$RUNS/$run/model_index.json" || -f "$RUNS/$run/model.safetensors" ]] && return 0
  latentlm train "$config" --output_dir "$RUNS/$run" "$@" > "$RUNS/$run.log" 2>&1
}

wanted() { [[ " ${MODELS[*]} " == *" $1 "* ]]; }

cosmos_stages() {
  wanted cosmos || return 0
  # The codec reads the targets as plain texts (text_column target), each padded to TARGET tokens after its [SEP]:
  # the diffusion stage's targets are the same tokens with [SEP] filling the rest.
  train_once codec examples/configs/cosmos-autoencoder-tiny.yaml "${pairs[@]}" --text_column target --packing false \
    --framing false --fill_frames false --model.num_latents $((TARGET / 8)) --max_steps "${CODEC_STEPS:-800}" \
    --eval_steps 200 --save_steps 200
  train_once cosmos examples/configs/cosmos-tiny.yaml --autoencoder "$RUNS/codec" "${pairs[@]}" --fill_frames false \
    --source_column source --target_column target --max_source_length "$SOURCE" --model.conditional true \
    --model.condition_dropout 0.1 --max_steps "${STEPS:-600}" --eval_steps 200 --save_steps 200
}
peers_and_ldlm() {
  train_once ar "examples/configs/ar-$CONFIG.yaml"
  if wanted elf; then train_once elf "examples/configs/elf-$CONFIG.yaml"; fi
  wanted ldlm || return 0
  train_once ldlm examples/configs/ldlm-tiny.yaml "${pairs[@]}" --source_column source --target_column target \
    --max_source_length "$SOURCE" --model.condition_dropout 0.1 --model.num_latents "$TARGET" \
    --model.latent_dim 256 --model.decoder_noise_std 1.0 --model.encoder_warmup_steps 180 \
    --max_steps "${STEPS:-600}" --eval_steps 200 --save_steps 200
}
cosmos_stages & cosmos_pid=$!
peers_and_ldlm & peers_pid=$!
wait "$cosmos_pid"
wait "$peers_pid"

rows=()
for model in "${MODELS[@]}"; do rows+=(--task-model "$TASK:$model=$RUNS/$model"); done
latentlm bench --no-quality --no-speed --task "$TASK" "${rows[@]}" --task-ar "$TASK=$RUNS/ar" \
  --task-source-tokens "$SOURCE" --task-gen-length "$TARGET" --task-samples 128 --task-steps 8 32 200 \
  --cfg-scales 1 1.5 2 3 4 --out-dir "$OUT"
logs=(ar "${MODELS[@]}")
if wanted cosmos; then logs+=(codec); fi
for run in "${logs[@]}"; do cp "$RUNS/$run/train_log.jsonl" "$OUT/$run-train_log.jsonl"; done
