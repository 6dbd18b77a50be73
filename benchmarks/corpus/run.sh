#!/usr/bin/env bash
# Reproduces benchmarks/corpus on a CPU: the size table of english-large, then the AR-overfitting check: the AR
# peer's recipe (examples/configs/ar-small-{prose,large}.yaml) trained on english-prose and on english-large at the
# same CPU-sized budget, with periodic validation loss. On this 2-core CPU the benchmark model itself (11.03M
# parameters) takes about 15 s a step of 16 x 128 tokens, so the CPU default shrinks the Llama (MODEL_ARGS) and the
# batch; the full budget is the second command (a GPU).
#
#   bash benchmarks/corpus/run.sh                 # table, both runs, summary
#   bash benchmarks/corpus/run.sh table|train|evaluate|summary
#   MODEL_ARGS= STEPS=3000 BATCH=128 EVAL_STEPS=250 EVAL_BATCHES=43 bash benchmarks/corpus/run.sh train  # full budget
set -euo pipefail
cd "$(dirname "$0")/../.."
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 HF_DATASETS_DISABLE_PROGRESS_BARS=1
PY=${PYTHON:-.venv/bin/python}
STEPS=${STEPS:-150} BATCH=${BATCH:-16} EVAL_STEPS=${EVAL_STEPS:-25} EVAL_BATCHES=${EVAL_BATCHES:-4}
MODEL_ARGS=${MODEL_ARGS---model.hidden_size 64 --model.intermediate_size 176 --model.num_hidden_layers 2 --model.num_attention_heads 2}
STAGE=${1:-all}
NICE=(nice -n 10 env OMP_NUM_THREADS=1)

if [[ $STAGE == all || $STAGE == table ]]; then
  "${NICE[@]}" "$PY" benchmarks/corpus/table.py
fi
if [[ $STAGE == all || $STAGE == train ]]; then
  for corpus in ${CORPORA:-prose large}; do
    out=runs/corpus-ar-$corpus
    rm -rf "$out"
    # Everything else as in the config: lr 1e-3 (constant after warm-up), AdamW wd 0.1, beta2 0.95, clip 1.0.
    "${NICE[@]}" "$PY" -m latentlm.cli train "examples/configs/ar-small-$corpus.yaml" --output_dir "$out" \
      --max_steps "$STEPS" --per_device_train_batch_size "$BATCH" --per_device_eval_batch_size 32 \
      --eval_steps "$EVAL_STEPS" --eval_batches "$EVAL_BATCHES" --warmup_steps 20 --ema_decay 0 \
      --save_steps "$EVAL_STEPS" --save_total_limit 1000 --logging_steps 10 $MODEL_ARGS
    cp "$out/train_log.jsonl" "benchmarks/corpus/ar-$corpus-train_log.jsonl"
  done
fi
if [[ $STAGE == all || $STAGE == evaluate ]]; then
  "${NICE[@]}" "$PY" benchmarks/corpus/evaluate.py runs/corpus-ar-prose runs/corpus-ar-large
fi
if [[ $STAGE == all || $STAGE == summary ]]; then
  "$PY" benchmarks/corpus/summarize.py
fi
