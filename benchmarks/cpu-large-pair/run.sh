#!/usr/bin/env bash
# The default's recipe and its AR peer at the benchmark budget (3,000 steps x 128 sequences x 128 tokens of
# english-large, examples/configs/{elf,ar}-small-large.yaml unchanged) on the 2-core CPU, for when no GPU is lent:
# about 6 h 15 min (AR) and 8 h (ELF) of this machine, so each stage is meant to be re-run session after session; it
# resumes from its newest checkpoint (written every 50 steps, atomically) when the session has the previous one's
# machine; the checkpoints live outside the repository and a new machine starts from step 0.
#   ar     the AR peer; its eval every 250 steps is issue 14's no-overfitting check at the benchmark budget
#   elf    elf-small-large, the candidate default (issue 15)
# Both train in bf16 autocast with 4 micro-batches of 32 per optimizer step: on this CPU (AVX512-BF16) that is
# 7.5 s per AR step against 12 s in fp32 with one batch of 128. The AR's blocks are all 128 real tokens, so the
# accumulated gradient is the batch of 128's; ELF's filled frames leave a little padding, so its four micro-batch
# token means are weighed equally rather than by their token counts (a small difference from one batch of 128).
set -euo pipefail
cd "$(dirname "$0")/../.."
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
export PYTHONPATH="${PYTHONPATH:-$PWD/src}"
LATENTLM="${PYTHON:-.venv/bin/python} -m latentlm.cli"
RUNS=${RUNS:-runs/cpu-large-pair}
CPU_ARGS="--mixed_precision bf16 --per_device_train_batch_size 32 --gradient_accumulation_steps 4 --save_steps 50"

case "${1:?stage: ar | elf}" in
  ar)
    $LATENTLM train examples/configs/ar-small-large.yaml --output_dir $RUNS/ar $CPU_ARGS \
      --resume_from_checkpoint latest ;;
  elf)
    $LATENTLM train examples/configs/elf-small-large.yaml --output_dir $RUNS/elf $CPU_ARGS \
      --resume_from_checkpoint latest ;;
  *) echo "unknown stage: $1" >&2; exit 2 ;;
esac
