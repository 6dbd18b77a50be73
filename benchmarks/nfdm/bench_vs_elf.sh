#!/usr/bin/env bash
# NFDM's sample quality beside ELF (issue 11): the two tiny recipes (examples/configs/{nfdm,elf}-tiny.yaml, 5.3M and
# 5.1M trainable parameters), trained on the same packed 64-token blocks of english-prose for the same steps and batch,
# each at its recipe's learning rate; then `latentlm bench` (judge perplexity, entropy, MAUVE, diversity) at several
# step counts, NFDM's three samplers at the sweep's steps. FIXED=1 adds the fixed-process NFDM as a third row.
#   bash benchmarks/nfdm/bench_vs_elf.sh [STEPS]       (models in $OUT/nfdm-vs-elf-STEPS, tables in benchmarks/nfdm/bench)
set -euo pipefail
STEPS=${1:-600}
OUT=${OUT:-runs}/nfdm-vs-elf-$STEPS
RES=benchmarks/nfdm/bench
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
COMMON=(--seq_len 64 --framing false --per_device_train_batch_size 16 --max_steps "$STEPS" --warmup_steps 50
        --eval_steps "$STEPS" --save_steps "$STEPS" --logging_steps 10 --report_to none --seed 0)
train() {  # NAME CONFIG [OVERRIDES...]
  local name=$1 config=$2
  shift 2
  [ -f "$OUT/$name/model_index.json" ] || latentlm train "$config" --output_dir "$OUT/$name" "${COMMON[@]}" "$@"
}
train elf examples/configs/elf-tiny.yaml
train nfdm examples/configs/nfdm-tiny.yaml
names=(elf nfdm)
if [ -n "${FIXED:-}" ]; then
  train nfdm-fixed examples/configs/nfdm-tiny.yaml --model.learned_forward_process false
  names+=(nfdm-fixed)
fi
models=()
for name in "${names[@]}"; do models+=(--model "$name=$OUT/$name"); done
latentlm bench --no-speed "${models[@]}" \
  --num-samples 64 --gen-length 64 --steps 16 32 64 --guidance-scales 3 --gammas 0 --solvers sde ode ancestral \
  --sweep-steps 64 --out-dir "$RES"
mkdir -p "$RES/logs"
for name in "${names[@]}"; do cp "$OUT/$name/train_log.jsonl" "$RES/logs/train_log-$name.jsonl"; done
