#!/usr/bin/env bash
# Cosmos' 8x codec (N = 16 latents for L = 128 tokens, augmentations on): Cosmos as published (codec_version 2)
# vs latentlm's original codec (codec_version 1) vs the published form with each of latentlm's three additions
# switched on, and the shipped recipe (published + all three) with each published change reverted, at the recipe of
# the committed sweep (examples/configs/cosmos-autoencoder-tiny.yaml: 400 steps of english-prose, lr 3e-3) with BATCH
# sequences per step (the sweep: 16; the measured runs: 4, see results-N16.md).
# Checkpoints every 100 steps give held-out clean accuracy vs step.
#
#   bash benchmarks/cosmos-codec/run.sh train      # all variants in parallel (runs/cosmos-codec/<variant>)
#   bash benchmarks/cosmos-codec/run.sh evaluate   # latentlm reconstruct on every checkpoint -> benchmarks/cosmos-codec
#   python benchmarks/cosmos-codec/summarize.py    # the tables of README.md from the results
#
# Environment: OUT (benchmarks/cosmos-codec; the batch-16 runs: benchmarks/cosmos-codec/batch16), NUM_LATENTS (16), MAX_STEPS (400), BATCH (16), VARIANTS (all below), RUNS (runs/cosmos-codec),
# FILL_FRAMES (false: one document per frame, the layout every committed run here used; the example config now fills),
# EVAL_STEPS (every 100th), NUM_SEQUENCES (256), NOISE_LEVELS ("0 0.25 0.5 1 1.5 2") and FIT_BATCHES (16, of 32
# train sequences: the latent statistics) of the evaluation.
set -euo pipefail
cd "$(dirname "$0")/../.."
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
N=${NUM_LATENTS:-16}
STEPS=${MAX_STEPS:-400}
BATCH=${BATCH:-16}
NUM_SEQUENCES=${NUM_SEQUENCES:-256}
NOISE_LEVELS=${NOISE_LEVELS:-0 0.25 0.5 1 1.5 2}
RUNS=${RUNS:-runs/cosmos-codec}
OUT=${OUT:-benchmarks/cosmos-codec}
# The example config switches latentlm's three additions on; every variant states all three.
OFF="--model.locality_bias false --model.chunk_shortcut false --model.init_lm_head_from_encoder false"
ALL3="--model.locality_bias true --model.chunk_shortcut true --model.init_lm_head_from_encoder true"
declare -A ARGS=(
  [published]="$OFF"
  [original]="--model.codec_version 1 $ALL3"
  [published+locality]="$OFF --model.locality_bias true"
  [published+chunk]="$OFF --model.chunk_shortcut true"
  [published+embedhead]="$OFF --model.init_lm_head_from_encoder true"
  [published+chunk+locality]="$OFF --model.chunk_shortcut true --model.locality_bias true"
  [published+chunk+embedhead]="$OFF --model.chunk_shortcut true --model.init_lm_head_from_encoder true"
  [published+all3]="$ALL3"
  # The shipped recipe with one published change reverted to latentlm's original form (issue 14: each published-form
  # change measured): side MSE head, learned token slots, a projected latent, SwiGLU without dropout, a final decoder
  # norm, the factored token head.
  [published+all3-uncoupled]="$ALL3 --model.couple_heads false"
  [published+all3-learned-slots]="$ALL3 --model.mask_token_slots false"
  [published+all3-projected-latent]="$ALL3 --model.normalized_latent false"
  [published+all3-swiglu]="$ALL3 --model.feed_forward swiglu --model.hidden_dropout 0"
  [published+all3-final-norm]="$ALL3 --model.decoder_final_norm true"
  [published+all3-factored-head]="$ALL3 --model.lm_head factored"
  [published-noaug]="$OFF --model.activation_mask_fraction 0 --model.activation_noise_fraction 0 --model.latent_dropout 0"
  # The shipped recipe under Muon (matrices) + AdamW (the rest), Muon's step RMS matched to AdamW's so that the one
  # learning rate (3e-3) serves both (Moonshot's rule, `muon_adjust_lr_fn: match_rms_adamw`); the token head on
  # AdamW, as Muon's authors advise.
  [published+all3+muon]="$ALL3 --optimizer muon --muon_adjust_lr_fn match_rms_adamw --muon_output_head false"
)
VARIANTS=${VARIANTS:-published original published+locality published+chunk published+embedhead published+all3 published-noaug}

case "${1:-}" in
  train)
    for v in $VARIANTS; do
      dir="$RUNS/N$N-$v"
      # shellcheck disable=SC2086
      nice -n 10 env OMP_NUM_THREADS=1 python -m latentlm.cli train examples/configs/cosmos-autoencoder-tiny.yaml \
        --output_dir "$dir" --model.num_latents "$N" --max_steps "$STEPS" --per_device_train_batch_size "$BATCH" \
        --save_steps 100 --save_total_limit 100 --fill_frames "${FILL_FRAMES:-false}" \
        ${ARGS[$v]} > "$RUNS-N$N-$v.log" 2>&1 &
    done
    wait
    for v in $VARIANTS; do cp "$RUNS/N$N-$v/train_log.jsonl" "$OUT/N$N-$v-train_log.jsonl" || true; done
    ;;
  evaluate)
    # One reconstruct call per checkpoint step (every variant at once: same sequences, same noise).
    for step in ${EVAL_STEPS:-$(seq 100 100 "$STEPS")}; do
      args=()
      for v in $VARIANTS; do
        ckpt="$RUNS/N$N-$v/checkpoints/checkpoint-$step/model"
        [ -d "$ckpt" ] && args+=(--autoencoder "$v=$ckpt")
      done
      [ ${#args[@]} -gt 0 ] || continue
      # shellcheck disable=SC2086
      nice -n 10 env OMP_NUM_THREADS=1 python -m latentlm.cli reconstruct "${args[@]}" \
        --num-sequences "$NUM_SEQUENCES" --noise-levels $NOISE_LEVELS --fit-batches "${FIT_BATCHES:-16}" \
        --out-dir "$OUT/N$N-step$step"
    done
    ;;
  *) echo "usage: $0 train|evaluate" >&2; exit 2 ;;
esac
