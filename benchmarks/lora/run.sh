#!/usr/bin/env bash
# LoRA vs full fine-tuning on a real paired task (issue 12's target), through `latentlm train` and `latentlm bench`:
# the bundled elf-tiny-prose made conditional, fine-tuned on kjv-web (KJV -> WEB verse) with the same data, steps
# (1,500 of 16 pairs) and batch: with a LoRA adapter r = 8 (2.4% of the parameters, lr 1e-3), r = 16 (4.75%, lr 2e-3),
# and in full (lr 3e-4); BLEU / ROUGE on the first 128 test verses (sources and targets cut to the recipe's 48 tokens).
#   bash benchmarks/lora/run.sh                  (models in runs/, tables in benchmarks/lora/verses-1500/)
# OUT (default runs) holds the runs; each run takes ~55 min on one core of the 2-core CPU.
set -euo pipefail
OUT=${OUT:-runs}
RES=benchmarks/lora/verses-1500
CFG=examples/configs/elf-verses-lora.yaml
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
[ -f "$OUT/elf-verses-lora/model_index.json" ] || latentlm train $CFG --output_dir "$OUT/elf-verses-lora"
[ -f "$OUT/elf-verses-lora16/model_index.json" ] || \
  latentlm train $CFG --output_dir "$OUT/elf-verses-lora16" --lora.r 16 --lora.lora_alpha 32 --learning_rate 2.0e-3
[ -f "$OUT/elf-verses-full/model_index.json" ] || \
  latentlm train $CFG --output_dir "$OUT/elf-verses-full" --lora null --learning_rate 3.0e-4
latentlm bench --no-quality --no-speed --task kjv-web --task-model "kjv-web:lora-r8=$OUT/elf-verses-lora" \
  --task-model "kjv-web:lora-r16=$OUT/elf-verses-lora16" --task-model "kjv-web:full=$OUT/elf-verses-full" \
  --task-source-tokens 48 --task-gen-length 48 --task-samples 128 --task-steps 32 --cfg-scales 1 2 --out-dir "$RES"
mkdir -p "$RES/logs"
for run in lora lora16 full; do cp "$OUT/elf-verses-$run/train_log.jsonl" "$RES/logs/train_log-$run.jsonl"; done
