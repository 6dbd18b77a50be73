#!/usr/bin/env bash
# Issue 15 on the CPU path (no GPU lent): what about two CPU hours per model buys the bundled default.
#   cooldown  the bundled elf-tiny-prose, trained on at lr 3e-4 decaying linearly to 0 over 480 steps of 64 x 128
#             tokens (its H100 run ended at a constant lr 1e-3, exported as EMA weights: no cooldown phase)
#   student   its 8-step student by progressive distillation (teacher 4 Euler sub-steps per student step), 1,500
#             steps of 16 x 128 tokens, 20x the examples of benchmarks/distill's round 1
#   start     the validation loss of elf-tiny-prose on the cooldown run's held-out batches (one step at lr 1e-12)
#   bench     one latentlm bench: held-out text, elf-tiny-prose, the cooldown and the student, 8 / 16 / 32 steps
#   guidance  the student at 8 steps under self-conditioning guidance 1 and 2 (its default is 3)
# cooldown and student ran side by side, one core each (about 1 h 50 min each on the 2-core AMD EPYC CPU). Every
# training stage resumes from its last checkpoint when re-run.
set -euo pipefail
cd "$(dirname "$0")/../.."
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
LATENTLM="${PYTHON:-.venv/bin/python} -m latentlm.cli"
RUNS=${RUNS:-runs/cpu-defaults}
OUT=benchmarks/cpu-defaults
DEFAULT=src/latentlm/pretrained/elf-tiny-prose

case "${1:?stage: cooldown | student | start | bench | guidance}" in
  cooldown)
    $LATENTLM train examples/configs/elf-small-prose.yaml --init_from pretrained:elf-tiny-prose \
      --output_dir $RUNS/cooldown --per_device_train_batch_size 64 --learning_rate 3e-4 --lr_scheduler_type linear \
      --warmup_steps 20 --max_steps 480 --ema_decay 0.0 --eval_steps 120 --eval_batches 4 --save_steps 40 \
      --save_total_limit 1 --logging_steps 10 --report_to none --resume_from_checkpoint latest ;;
  student)
    # The official recipe (the example config has since moved to `sampling_grid` without decode rows).
    $LATENTLM train examples/configs/elf-tiny-distill.yaml --output_dir $RUNS/student-8 --max_train_samples 16000 \
      --model.distill_time_schedule logit_normal --model.decoder_prob 0.2 \
      --cache_encoder_activations false --per_device_train_batch_size 16 --learning_rate 2e-4 \
      --lr_scheduler_type linear --warmup_steps 20 --max_steps 1500 --eval_steps 300 --eval_batches 4 \
      --save_steps 50 --save_total_limit 1 --logging_steps 25 --report_to none --resume_from_checkpoint latest ;;
  start)
    $LATENTLM train examples/configs/elf-small-prose.yaml --init_from pretrained:elf-tiny-prose \
      --output_dir $RUNS/start --per_device_train_batch_size 64 --learning_rate 1e-12 --warmup_steps 0 --max_steps 1 \
      --ema_decay 0.0 --eval_steps 1 --eval_batches 4 --save_steps 1 --report_to none ;;
  bench)
    $LATENTLM bench --model elf-tiny-prose=$DEFAULT --model cooldown=$RUNS/cooldown --model student-8=$RUNS/student-8 \
      --steps 8 16 32 --guidance-scales 3 --gammas 0 --sweep-steps 32 --num-samples 64 --gen-length 128 \
      --batch-size 32 --no-speed --out-dir $OUT/bench ;;
  guidance)
    $LATENTLM bench --model student-8=$RUNS/student-8 --steps 8 --guidance-scales 1 2 --gammas 0 --sweep-steps 8 \
      --num-samples 64 --gen-length 128 --batch-size 32 --no-speed --out-dir $OUT/student-guidance ;;
  *) echo "unknown stage $1" >&2; exit 2 ;;
esac
