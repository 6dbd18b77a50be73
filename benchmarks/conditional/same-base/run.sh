#!/usr/bin/env bash
# ELF against its autoregressive peer on a paired task, each fully fine-tuned from a base pre-trained at the same
# budget: the same size (11.03M trained parameters each), data, steps and batch, before fine-tuning and during it.
#
#   ELF_BASE=<ELF pipeline folder> AR_BASE=<AR model folder> bash benchmarks/conditional/same-base/run.sh TASK
#
# TASK is kjv-web, bbc-headlines or wordnet-gloss. The bases of README.md are the H200 pair of
# benchmarks/gpu-h200-training/ (500 steps of 256 x 128 tokens of english-large each: elf-small-large.yaml with
# `fill_frames`, ar-small-large.yaml). english-large puts every document in the split of its paired-task group
# (chapter, article, synset), so neither base saw a validation or test pair. Fine-tuning: batches of 16 pairs, AdamW
# 3e-4, one seed, the two runs side by side (one core each with OMP_NUM_THREADS=1); then one `latentlm bench` call
# scores both on the first 128 test pairs (all 109 for bbc-headlines).
set -euo pipefail
TASK=${1:?usage: run.sh kjv-web|bbc-headlines|wordnet-gloss}
: "${ELF_BASE:?set ELF_BASE to the ELF pipeline folder to fine-tune}"
: "${AR_BASE:?set AR_BASE to the AR model folder to fine-tune}"
RUNS=${RUNS:-runs/same-base}/$TASK
OUT=${OUT:-benchmarks/conditional/same-base}/$TASK

case "$TASK" in  # source / target tokens (the bulk of each side, see README.md), steps, training pairs
  kjv-web) SOURCE=48 TARGET=48 STEPS=1500 PAIRS=null ;;        # 0.87 epochs of all 27,472 pairs
  bbc-headlines) SOURCE=64 TARGET=16 STEPS=600 PAIRS=null ;;   # the article's lead; 5.4 epochs of 1,775 pairs
  wordnet-gloss) SOURCE=16 TARGET=32 STEPS=600 PAIRS=9600 ;;   # one epoch of 9,600 of the 106,122 pairs
  *) echo "TASK must be kjv-web, bbc-headlines or wordnet-gloss, got '$TASK'" >&2; exit 2 ;;
esac
STEPS=${MAX_STEPS:-$STEPS}
mkdir -p "$RUNS"

same_budget=(--dataset "$TASK" --source_column source --target_column target --max_source_length "$SOURCE"
  --seq_len "$TARGET" --max_train_samples "$PAIRS" --per_device_train_batch_size 16 --per_device_eval_batch_size 16
  --optimizer adamw --learning_rate 3e-4 --weight_decay 0.0 --lr_scheduler_type constant_with_warmup
  --warmup_steps 20 --max_steps "$STEPS" --max_grad_norm 1.0 --ema_decay 0.0 --eval_steps 100 --eval_batches 4
  --save_steps 300 --save_total_limit 1 --logging_steps 10 --report_to none --seed 0)

# ar-verses.yaml / elf-verses.yaml give the method and nothing else: every other key is set here.
if [[ "${SKIP_TRAIN:-0}" != 1 ]]; then
  latentlm train examples/configs/ar-verses.yaml --output_dir "$RUNS/ar" --init_from "$AR_BASE" --model '{}' \
    "${same_budget[@]}" > "$RUNS/ar.log" 2>&1 &
  # Paired data has its own layout (no framing); the frozen encoder runs once over the pairs.
  latentlm train examples/configs/elf-verses.yaml --output_dir "$RUNS/elf" --init_from "$ELF_BASE" \
    --model '{conditional: true, condition_dropout: 0.1}' --cache_encoder_activations true \
    "${same_budget[@]}" > "$RUNS/elf.log" 2>&1
  wait
fi

latentlm bench --no-quality --no-speed --task "$TASK" --task-model "$TASK:elf=$RUNS/elf" --task-ar "$TASK=$RUNS/ar" \
  --task-source-tokens "$SOURCE" --task-gen-length "$TARGET" --task-samples 128 --task-steps 8 32 \
  --cfg-scales 1 2 3 --out-dir "$OUT"
cp "$RUNS/ar/train_log.jsonl" "$OUT/ar-train_log.jsonl"
cp "$RUNS/elf/train_log.jsonl" "$OUT/elf-train_log.jsonl"
