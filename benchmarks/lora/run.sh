#!/usr/bin/env bash
# LoRA vs full fine-tuning on a real paired task (issue 12's target), through `latentlm train` and `latentlm bench`:
# the bundled elf-tiny-prose made conditional, fine-tuned on kjv-web (KJV -> WEB verse) with the same data, steps
# (1,500 of 16 pairs) and batch:
#   lora          examples/configs/elf-verses-lora.yaml as it is: the blocks and the interface layers, 4.88% of the
#                 parameters, Adafactor, lr 2e-3
#   lora-adamw    the same adapter with AdamW
#   lora-blocks   r = 16 on the blocks' projections only (4.75%), AdamW, lr 2e-3
#   full          every parameter, AdamW, lr 3e-4
# then BLEU / ROUGE on the first 128 test verses (sources and targets cut to the recipe's 48 tokens), input CFG 1, 2, 3.
#   bash benchmarks/lora/run.sh                  (models in runs/, tables in benchmarks/lora/verses-1500/)
# OUT (default runs) holds the runs; each run took 55–75 min on one core of the 2-core CPU (2.2–3.0 s per step).
set -euo pipefail
OUT=${OUT:-runs}
RES=benchmarks/lora/verses-1500
CFG=examples/configs/elf-verses-lora.yaml
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
train() {  # train NAME [overrides...]: skipped when the run was exported
  local name=$1; shift
  [ -f "$OUT/elf-verses-$name/model_index.json" ] || latentlm train $CFG --output_dir "$OUT/elf-verses-$name" "$@"
}
train lora
train lora-adamw --optimizer adamw
train lora-blocks --optimizer adamw --lora.target_modules '[qkv, out_proj, gate_up_proj, down_proj]' \
  --lora.rank_pattern '{}' --lora.alpha_pattern '{}'
train full --lora null --optimizer adamw --learning_rate 3.0e-4
models=()
for run in lora lora-adamw lora-blocks full; do models+=(--task-model "kjv-web:$run=$OUT/elf-verses-$run"); done
latentlm bench --no-quality --no-speed --task kjv-web "${models[@]}" \
  --task-source-tokens 48 --task-gen-length 48 --task-samples 128 --task-steps 32 --cfg-scales 1 2 3 --out-dir "$RES"
mkdir -p "$RES/logs"
for run in lora lora-adamw lora-blocks full; do
  cp "$OUT/elf-verses-$run/train_log.jsonl" "$RES/logs/train_log-$run.jsonl"
done
