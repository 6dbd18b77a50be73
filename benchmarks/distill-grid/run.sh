#!/usr/bin/env bash
# Issue 15, item 2: an 8-step ELF student trained on the grid it samples with (`distill_time_schedule:
# sampling_grid`): each example starts on one of the 8 intervals of the logit-normal sampling grid, and the teacher
# (the bundled elf-tiny-prose) takes the 4 steps of its 32-step grid inside it, so a perfect student IS the teacher
# at 32 steps. The official recipe (benchmarks/cpu-defaults' student-8) learns every span of 1/8 instead.
#   grid-lr2   the student, lr 2e-4 decaying linearly, 900 steps of 16 x 128 tokens (one core, ~65 min)
#   grid-lr5   the same at lr 5e-4 (the other core, at the same time; stopped at step ~125, its distillation loss
#              doubling)
#   grid-nodecode  lr 2e-4 without decode rows (decoder_prob 0): their cross-entropy (~2.5 per row) drowns the
#              distillation loss (~0.004 per row) in the clipped gradient; 750 steps (the other core)
#   grid-4     the next round: a 4-step student from grid-nodecode, the teacher's 8 steps of its 32-step grid inside
#              each of its 4 intervals, 300 steps (both cores)
#   start      the teacher as its own student: the distillation loss before training, on the same eval batches
#              as grid-nodecode's evaluations
#   bench      one latentlm bench: grid-lr2 and grid-nodecode at 8 (and 32) steps, the teacher at 8 and 32 steps
#   bench-seed1  grid-nodecode at 8 steps and the teacher at 16 and 32 steps again, seed 1 (other samples, other
#              MAUVE references)
#   speed      batch-1 latency for 128 tokens: grid-nodecode at 8 steps, the teacher at 32, an AR of the peer's shape
#   start-4    the same for grid-4: grid-nodecode as its own 4-step student
#   uniform-grid  the teacher and the official-recipe student of benchmarks/cpu-defaults (STUDENT=its folder) on the
#              uniform grid instead of their logit-normal one, at 8 and 32 steps
#   bench-4    grid-4 at 4 (and 32) steps, the teacher at 4 and 32 steps, seed 0
#   grid-long  grid-nodecode trained on (its loss was still falling at step 750): 1,200 more steps from its weights,
#              lr 1.5e-4 decaying linearly (one core, ~90 min)
#   bench-long  grid-long at 8 steps, seeds 0 and 1 (the same held-out references as bench and bench-seed1)
#   grid-4-long  grid-4 trained on: 400 more steps from its weights, lr 1.5e-4 decaying linearly (the other core, ~45 min)
#   bench-4-long  grid-4-long at 4 steps, seed 0 (bench-4's references)
#   bench-256  4x the samples (256 per row, 256 references): the teacher at 32 and 16 steps and grid-nodecode at 8,
#              one latentlm bench each, the same seed and references (SEED=1: bench-256-seed1/)
# Every training stage resumes from its last checkpoint when re-run.
set -euo pipefail
cd "$(dirname "$0")/../.."
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
LATENTLM="${PYTHON:-.venv/bin/python} -m latentlm.cli"
RUNS=${RUNS:-runs/distill-grid}
OUT=benchmarks/distill-grid
DEFAULT=src/latentlm/pretrained/elf-tiny-prose
STEPS=${STEPS:-900}

student() {  # $1 = output name, $2 = learning rate, the rest: extra arguments
  local name=$1 lr=$2; shift 2
  $LATENTLM train examples/configs/elf-tiny-distill.yaml --output_dir $RUNS/$name --max_train_samples 16000 \
    --model.distill_time_schedule sampling_grid --cache_encoder_activations false --per_device_train_batch_size 16 \
    --learning_rate $lr --lr_scheduler_type linear --warmup_steps 20 --max_steps $STEPS --eval_steps 150 \
    --eval_batches 4 --save_steps 50 --save_total_limit 1 --logging_steps 25 --report_to none \
    --resume_from_checkpoint latest "$@"
}

case "${1:?stage: grid-lr2 | grid-lr5 | grid-nodecode | grid-4 | grid-long | bench-long | grid-4-long | bench-4-long | bench-256 | start | start-4 | uniform-grid | bench | bench-4 | bench-seed1 | speed}" in
  grid-lr2) student grid-lr2 2e-4 --model.decoder_prob 0.2 ;;
  grid-lr5) student grid-lr5 5e-4 --model.decoder_prob 0.2 ;;
  grid-nodecode) STEPS=${STEPS_NODECODE:-750} student grid-nodecode 2e-4 --model.decoder_prob 0.0 ;;
  grid-4) STEPS=${STEPS_4:-300} student grid-4 2e-4 --init_from $RUNS/grid-nodecode --model.distill_steps 4 \
    --model.distill_teacher_steps 8 --model.decoder_prob 0.0 --eval_steps 100 ;;
  grid-long) STEPS=${STEPS_LONG:-1200} student grid-long 1.5e-4 --init_from $RUNS/grid-nodecode --model.decoder_prob 0.0 ;;
  grid-4-long) STEPS=${STEPS_4_LONG:-400} student grid-4-long 1.5e-4 --init_from $RUNS/grid-4 --model.distill_steps 4 \
    --model.distill_teacher_steps 8 --model.decoder_prob 0.0 --eval_steps 100 ;;
  start-4)  # grid-nodecode as its own 4-step student: grid-4's distillation loss before training
    STEPS=1 student start-4 1e-12 --init_from $RUNS/grid-nodecode --model.distill_steps 4 \
      --model.distill_teacher_steps 8 --warmup_steps 0 --eval_steps 1 --save_steps 1 --model.decoder_prob 0.0 ;;
  start)  # without decode rows, as grid-nodecode: its eval_loss is the distillation loss alone
    STEPS=1 student start 1e-12 --warmup_steps 0 --eval_steps 1 --save_steps 1 --model.decoder_prob 0.0 ;;
  bench)
    $LATENTLM bench --model elf-tiny-prose=$DEFAULT --model grid-lr2=$RUNS/grid-lr2 --model grid-nodecode=$RUNS/grid-nodecode \
      --steps 8 32 --guidance-scales 3 --gammas 0 --sweep-steps 32 --num-samples 64 --gen-length 128 \
      --batch-size 32 --no-speed --out-dir $OUT/bench ;;
  uniform-grid)
    for source in ${STUDENT:-runs/cpu-defaults/student-8} $DEFAULT; do
      copy=$RUNS/uniform/$(basename $source)
      rm -rf $copy && mkdir -p $copy/scheduler
      for part in model tokenizer model_index.json; do ln -s "$(realpath $source/$part)" $copy/$part; done
      sed 's/"time_grid": "logit_normal"/"time_grid": "uniform"/' $source/scheduler/scheduler_config.json \
        > $copy/scheduler/scheduler_config.json
    done
    $LATENTLM bench --model student-8-uniform=$RUNS/uniform/$(basename ${STUDENT:-runs/cpu-defaults/student-8}) \
      --model teacher-uniform=$RUNS/uniform/$(basename $DEFAULT) --steps 8 32 --guidance-scales 3 --gammas 0 \
      --sweep-steps 32 --num-samples 64 --gen-length 128 --batch-size 32 --no-speed --out-dir $OUT/uniform-grid ;;
  bench-4)
    $LATENTLM bench --model elf-tiny-prose=$DEFAULT --model grid-4=$RUNS/grid-4 --steps 4 32 --guidance-scales 3 \
      --gammas 0 --sweep-steps 32 --num-samples 64 --gen-length 128 --batch-size 32 --no-speed --out-dir $OUT/bench-4 ;;
  bench-long)
    for seed in 0 1; do
      $LATENTLM bench --model grid-long=$RUNS/grid-long --steps 8 --guidance-scales 3 --gammas 0 --sweep-steps 8 \
        --num-samples 64 --gen-length 128 --batch-size 32 --no-speed --seed $seed --out-dir $OUT/bench-long-seed$seed
    done ;;
  bench-4-long)
    $LATENTLM bench --model grid-4-long=$RUNS/grid-4-long --steps 4 --guidance-scales 3 --gammas 0 --sweep-steps 4 \
      --num-samples 64 --gen-length 128 --batch-size 32 --no-speed --out-dir $OUT/bench-4-long ;;
  bench-256)  # SEED=1 for other samples and references (bench-256-seed1/); a row already benched is skipped
    seed=${SEED:-0}; dir=$OUT/bench-256$([ "$seed" = 0 ] || echo "-seed$seed")
    for row in elf-tiny-prose=$DEFAULT:32 grid-nodecode=$RUNS/grid-nodecode:8 elf-tiny-prose=$DEFAULT:16; do
      out=$dir/${row%%=*}-${row##*:}
      [ -f $out/RESULTS.md ] || $LATENTLM bench --model ${row%:*} --steps ${row##*:} --guidance-scales 3 --gammas 0 \
        --sweep-steps ${row##*:} --num-samples 256 --gen-length 128 --batch-size 32 --no-speed --seed $seed \
        --out-dir $out
    done ;;
  bench-seed1)
    $LATENTLM bench --model elf-tiny-prose=$DEFAULT --model grid-nodecode=$RUNS/grid-nodecode --steps 8 16 32 \
      --guidance-scales 3 --gammas 0 --sweep-steps 32 --num-samples 64 --gen-length 128 --batch-size 32 --no-speed \
      --seed 1 --out-dir $OUT/bench-seed1 ;;
  speed)
    # The AR peer's latency depends on its shape, not its weights (it emits exactly 128 tokens): one training step of
    # examples/configs/ar-small-prose.yaml gives a folder of that shape.
    [ -f $RUNS/ar-peer-shape/config.json ] || $LATENTLM train examples/configs/ar-small-prose.yaml \
      --output_dir $RUNS/ar-peer-shape --max_steps 1 --max_train_samples 256 --per_device_train_batch_size 8 \
      --eval_batches 1 --per_device_eval_batch_size 8 --max_eval_samples 8 --ema_decay 0 --report_to none
    $LATENTLM bench --model grid-nodecode=$RUNS/grid-nodecode --model elf-tiny-prose=$DEFAULT \
      --ar-baseline $RUNS/ar-peer-shape --no-quality --steps 8 32 --sweep-steps 32 --speed-lengths 128 \
      --speed-batch-size 8 --latency-repeats 5 --throughput-repeats 1 --out-dir $OUT/speed ;;
  *) echo "unknown stage $1" >&2; exit 2 ;;
esac
