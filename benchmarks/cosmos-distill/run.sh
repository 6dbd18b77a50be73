#!/usr/bin/env bash
# Few-step Cosmos students by progressive distillation (issue 15, item 2: "and, if it fits, Cosmos").
# The teacher (TEACHER): the best Cosmos model trained on this CPU, benchmarks/cosmos-codec/batch16's N = 32 codec
# (filled frames, step 1,200) with the 3,000-step cosmos-tiny denoiser; Cosmos samples it by Euler-Maruyama, 200 steps.
#   teacher-ddim  a copy of the teacher whose scheduler samples DDIM (the sampler the students are distilled from)
#   rounds        the curriculum, each round from the previous one and from the original teacher, at the teacher's
#                 resolution of 50 DDIM steps: 25 student steps x 2 teacher sub-steps, 10 x 5, 5 x 10, 2 x 25, 1 x 50;
#                 1,000 steps of 32 sequences each
#   oneshot       the 2-step student in one round from the teacher (2 x 25), 4,000 steps: the curriculum's budget
#   start         the teacher as its own student: each round's validation loss before training (one step at lr 1e-12)
#   bench         one latentlm bench: held-out text, the teacher (Euler-Maruyama and DDIM) and the students
# Every training stage resumes from its last checkpoint when re-run.
set -euo pipefail
cd "$(dirname "$0")/../.."
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
PY=${PYTHON:-.venv/bin/python}
LATENTLM="$PY -m latentlm.cli"
RUNS=${RUNS:-runs/cosmos-distill}
TEACHER=${TEACHER:?the Cosmos teacher pipeline folder}
OUT=benchmarks/cosmos-distill

distill() {  # distill NAME STUDENT_STEPS SUB_STEPS FROM MAX_STEPS
  $LATENTLM train examples/configs/cosmos-tiny-distill.yaml --init_from "$4" --model.distill_teacher "$TEACHER" \
    --model.distill_steps "$2" --model.distill_teacher_steps "$3" --output_dir "$RUNS/$1" --max_steps "$5" \
    --eval_steps 250 --save_steps 250 --resume_from_checkpoint latest
  cp "$RUNS/$1/train_log.jsonl" "$OUT/$1-train_log.jsonl"
}

case "${1:?stage: teacher-ddim | rounds | oneshot | start | bench}" in
  teacher-ddim)
    rm -rf "$RUNS/teacher-ddim" && mkdir -p "$RUNS" && cp -r "$TEACHER" "$RUNS/teacher-ddim"
    rm -rf "$RUNS/teacher-ddim/checkpoints"
    "$PY" - "$RUNS/teacher-ddim/scheduler/scheduler_config.json" <<'PYEOF'
import json, sys
path = sys.argv[1]
config = json.load(open(path))
config["solver"] = "ddim"
json.dump(config, open(path, "w"), indent=2)
PYEOF
    ;;
  rounds)
    distill round-25 25 2 "$TEACHER" 1000
    distill round-10 10 5 "$RUNS/round-25" 1000
    distill round-5 5 10 "$RUNS/round-10" 1000
    distill round-2 2 25 "$RUNS/round-5" 1000
    distill round-1 1 50 "$RUNS/round-2" 1000 ;;
  oneshot) distill oneshot-2 2 25 "$TEACHER" 4000 ;;
  start)
    for round in "25 2" "10 5" "5 10" "2 25" "1 50"; do
      set -- $round
      $LATENTLM train examples/configs/cosmos-tiny-distill.yaml --init_from "$TEACHER" --model.distill_teacher "$TEACHER" \
        --model.distill_steps "$1" --model.distill_teacher_steps "$2" --output_dir "$RUNS/start-$1" \
        --learning_rate 1e-12 --warmup_steps 0 --max_steps 1 --eval_steps 1 --save_steps 1
      grep eval_loss "$RUNS/start-$1/train_log.jsonl" | sed "s/^/$1 x $2: /"
    done | tee "$OUT/start.txt" ;;
  bench)
    $LATENTLM bench --model teacher-em="$TEACHER" --model teacher-ddim="$RUNS/teacher-ddim" \
      --model round-10="$RUNS/round-10" --model round-5="$RUNS/round-5" --model round-2="$RUNS/round-2" \
      --model round-1="$RUNS/round-1" --model oneshot-2="$RUNS/oneshot-2" --steps 1 2 5 10 50 200 \
      --num-samples 64 --gen-length 128 --batch-size 64 --no-speed --out-dir $OUT/bench ;;
  *) echo "unknown stage $1" >&2; exit 2 ;;
esac
