#!/usr/bin/env bash
# Second call, `bash .gpu/run-fill.sh` after prepare.sh (like run.sh; carry .gpu and .whl): elf-small-large.yaml as
# now (fill_frames: true), alone, otherwise as the first call's `elf` (prompts, batch 256, bf16), for 500 steps; its
# EMA export comes back.
set -uo pipefail
T0=$SECONDS; OUT=${OUT:-/tmp/out}; R=/tmp/runs2; mkdir -p $R $OUT
export OMP_NUM_THREADS=8; . .gpu/setup.sh  # wheels, encoder, corpora, offline environment
echo "setup done at $((SECONDS - T0)) s"
python3 -m latentlm.cli train examples/configs/elf-small-large.yaml --output_dir $R/elf-fill --per_device_train_batch_size 256 \
  --per_device_eval_batch_size 128 --max_steps ${STEPS:-500} --save_steps 250 --eval_steps 250 --mixed_precision bf16 \
  --report_to none --logging_steps 50 --model.conditional true --model.prompt_prob 0.5 --model.condition_dropout 0.1 \
  > $R/elf-fill.out 2>&1
echo "training done at $((SECONDS - T0)) s, rc $?"
tr '\r' '\n' < $R/elf-fill.out | grep -a "INFO latentlm\|Error\|error" | cut -c1-300 | tail -8
cp $R/elf-fill/train_log.jsonl $OUT/elf-fill-train_log.jsonl
python3 .gpu/pack_exports.py $OUT $R/elf-fill; ls -la $OUT; echo "all done at $((SECONDS - T0)) s"
