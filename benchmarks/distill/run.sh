#!/usr/bin/env bash
# Distils the bundled elf-tiny-prose into 8- and 4-step students on this CPU and benchmarks teacher and students.
# Every stage is resumable: re-run the script and finished stages are skipped, a killed round resumes from its last
# checkpoint. Stages (each under ~12 minutes on 2 shared cores with OMP_NUM_THREADS=1):
#   bash benchmarks/distill/run.sh round8a   # round 1 (8 steps, teacher 4 sub-steps), first 45 optimizer steps
#   bash benchmarks/distill/run.sh round8b   # ... resumed to 75 steps
#   bash benchmarks/distill/run.sh round4    # round 2 (4 steps, teacher 8 sub-steps) from the 8-step student
#   bash benchmarks/distill/run.sh quality   # latentlm bench: teacher and students at 4/8/16/32 steps (long: ~13 rows)
#   bash benchmarks/distill/run.sh quality8  # latentlm bench: the 8-step student at 8 steps alone (same protocol)
#   bash benchmarks/distill/run.sh speed     # latentlm bench: batch-1 latency, 128 tokens, vs the AR peer's shape
set -euo pipefail
cd "$(dirname "$0")/../.."
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 OMP_NUM_THREADS=1 PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
LATENTLM="nice -n 10 ${PYTHON:-.venv/bin/python} -m latentlm.cli"
RUNS=${RUNS:-runs/distill}
# The official recipe these rounds ran (the example config has since moved to `sampling_grid` without decode rows).
CONFIG="examples/configs/elf-tiny-distill.yaml --model.distill_time_schedule logit_normal --model.decoder_prob 0.2"
OUT=benchmarks/distill

case "${1:?stage: round8a | round8b | round4 | quality | quality8 | speed}" in
  round8a)
    $LATENTLM train $CONFIG --output_dir $RUNS/student-8 --max_steps 45 --resume_from_checkpoint latest ;;
  round8b)
    $LATENTLM train $CONFIG --output_dir $RUNS/student-8 --max_steps 75 --resume_from_checkpoint latest ;;
  round4)
    $LATENTLM train $CONFIG --output_dir $RUNS/student-4 --init_from $RUNS/student-8 \
      --model.distill_steps 4 --model.distill_teacher_steps 8 --max_steps 30 --resume_from_checkpoint latest ;;
  quality)
    $LATENTLM bench --model teacher=src/latentlm/pretrained/elf-tiny-prose --model student-8=$RUNS/student-8 \
      --model student-4=$RUNS/student-4 --steps 4 8 16 32 --guidance-scales 3 --gammas 0 --sweep-steps 32 \
      --num-samples 64 --gen-length 128 --batch-size 32 --no-speed --out-dir $OUT/quality ;;
  quality8)
    $LATENTLM bench --model student-8=$RUNS/student-8 --steps 8 --guidance-scales 3 --gammas 0 --sweep-steps 8 \
      --num-samples 64 --gen-length 128 --batch-size 32 --no-speed --out-dir $OUT/quality-student-8 ;;
  speed)
    # The AR peer's latency depends on its shape, not its weights (it emits exactly 128 tokens): one training step of
    # examples/configs/ar-small-prose.yaml gives a folder of that shape.
    [ -f $RUNS/ar-peer-shape/config.json ] || $LATENTLM train examples/configs/ar-small-prose.yaml \
      --output_dir $RUNS/ar-peer-shape --max_steps 1 --max_train_samples 256 --per_device_train_batch_size 8 \
      --eval_batches 1 --per_device_eval_batch_size 8 --max_eval_samples 8 --ema_decay 0 --report_to none
    $LATENTLM bench --model student-8=$RUNS/student-8 --model teacher=src/latentlm/pretrained/elf-tiny-prose \
      --ar-baseline $RUNS/ar-peer-shape --no-quality --steps 8 32 --sweep-steps 32 --speed-lengths 128 \
      --speed-batch-size 8 --latency-repeats 5 --throughput-repeats 1 --out-dir $OUT/speed ;;
  *) echo "unknown stage $1" >&2; exit 2 ;;
esac
