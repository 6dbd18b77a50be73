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
python3 - $R/elf-fill $OUT <<'PY'
import sys, tarfile
from pathlib import Path
from safetensors.torch import load_file, save_file
run, out = Path(sys.argv[1]), Path(sys.argv[2])
files = [p for p in run.rglob("*") if p.is_file() and "checkpoint" not in str(p) and p.suffix != ".jsonl"]
for p in files:
    if p.suffix == ".safetensors":
        save_file({k: v.half() if v.is_floating_point() else v for k, v in load_file(p).items()}, p, metadata={"format": "pt"})
with tarfile.open(out / "elf-fill.tar", "w") as tar:
    for p in files: tar.add(p, arcname=str(p.relative_to(run.parent)))
PY
cd $OUT && split -b 15000000 -d elf-fill.tar elf-fill.tar. && rm elf-fill.tar; ls -la $OUT; echo "all done at $((SECONDS - T0)) s"
