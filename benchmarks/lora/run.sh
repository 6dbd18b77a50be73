#!/usr/bin/env bash
# LoRA vs full fine-tuning on a real paired task (issue 12's target), through `latentlm train` and `latentlm bench`:
# the bundled elf-tiny-prose made conditional, fine-tuned on kjv-web (KJV -> WEB verse) with the same data, steps and
# batch, once with a LoRA adapter (r = 8, 2.4% of the parameters, lr 1e-3) and once in full (lr 3e-4); BLEU on the
# test verses (sources and targets cut to the recipe's 48 tokens).
#   bash benchmarks/lora/run.sh                  (models in runs/, tables in benchmarks/lora/verses/)
# OUT (default runs) holds the runs.
set -euo pipefail
OUT=${OUT:-runs}
RES=benchmarks/lora/verses
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
[ -f "$OUT/elf-verses-lora/model_index.json" ] || \
  latentlm train examples/configs/elf-verses-lora.yaml --output_dir "$OUT/elf-verses-lora"
[ -f "$OUT/elf-verses-full/model_index.json" ] || \
  latentlm train examples/configs/elf-verses-lora.yaml --output_dir "$OUT/elf-verses-full" --lora null \
    --learning_rate 3.0e-4
latentlm bench --no-quality --no-speed --task kjv-web \
  --task-model "kjv-web:lora=$OUT/elf-verses-lora" --task-model "kjv-web:full=$OUT/elf-verses-full" \
  --task-source-tokens 48 --task-gen-length 48 --task-samples 128 --task-steps 16 32 --cfg-scales 1 2 --out-dir "$RES"
mkdir -p "$RES/logs"
for run in lora full; do cp "$OUT/elf-verses-$run/train_log.jsonl" "$RES/logs/train_log-$run.jsonl"; done
