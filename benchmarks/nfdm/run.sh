#!/usr/bin/env bash
# Learned vs fixed forward process, and the AR peer, at one small size and budget on english-prose; each model's
# held-out bits per token through `latentlm likelihood` on the same 64-token test blocks.
#   bash benchmarks/nfdm/run.sh [STEPS [MODEL ...]]   MODEL in: learned fixed learned-b2 ar (default: all four)
#   (models in runs/nfdm-compare-STEPS, results in benchmarks/nfdm/likelihood-MODEL-STEPS.json)
# learned-b2 is the learned process with `forward_log_std_bound: 2.0` (not in the official code).
# SEED (default 0) seeds training; another seed writes runs/nfdm-compare-STEPS-seedN and likelihood-MODEL-STEPS-seedN.json.
set -euo pipefail
STEPS=${1:-200}
shift || true
MODELS=("${@:-learned fixed learned-b2 ar}")
read -r -a MODELS <<< "${MODELS[*]}"
SEED=${SEED:-0}
SUFFIX=$([ "$SEED" = 0 ] || echo "-seed$SEED")
OUT=runs/nfdm-compare-$STEPS$SUFFIX
RES=benchmarks/nfdm
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 OMP_NUM_THREADS=1
COMMON=(--seq_len 64 --per_device_train_batch_size 16 --max_steps "$STEPS" --warmup_steps 20 --learning_rate 2.0e-3
        --eval_steps "$STEPS" --save_steps "$STEPS" --logging_steps 10 --report_to none --seed "$SEED")
SMALL=(--model.latent_dim 64 --model.hidden_size 64 --model.num_hidden_layers 2 --model.num_attention_heads 2
       --model.forward_hidden_size 64 --model.forward_num_layers 1 --model.forward_num_heads 2)
for model in "${MODELS[@]}"; do
  case "$model" in
    learned) extra=(--model.learned_forward_process true --model.forward_log_std_bound null) ;;  # as official
    fixed) extra=(--model.learned_forward_process false --model.forward_log_std_bound null) ;;
    learned-b2) extra=(--model.learned_forward_process true --model.forward_log_std_bound 2.0) ;;
    ar) extra=() ;;
    *) echo "unknown model $model" >&2; exit 2 ;;
  esac
  if [ "$model" = ar ]; then
    # A Llama of about the same trainable size, same tokenizer, data, batch, steps and learning rate.
    nice -n 10 latentlm train examples/configs/ar-tiny.yaml --output_dir "$OUT/ar" "${COMMON[@]}" --packing true \
      --model.hidden_size 64 --model.num_hidden_layers 2 --model.num_attention_heads 2 --model.intermediate_size 172 \
      --lr_scheduler_type constant_with_warmup --weight_decay 0.0 --ema_decay 0.99
    name=ar
  else
    name=nfdm-$model
    nice -n 10 latentlm train examples/configs/nfdm-tiny.yaml --output_dir "$OUT/$name" "${COMMON[@]}" "${SMALL[@]}" \
      "${extra[@]}"
  fi
  nice -n 10 latentlm likelihood "$OUT/$name" --corpus english-prose --seq-len 64 --num-sequences 128 \
    --num-draws 4 --batch-size 32 --output "$RES/likelihood-$name-$STEPS$SUFFIX.json"
done
