#!/usr/bin/env bash
# The next prepared GPU call (issues 14 and 15), `bash .gpu/run-defaults.sh` after ../gpu-h200-training/prepare.sh
# (carry .gpu and .whl). Side by side on one GPU, each with the GPU's CPU cores shared three ways:
#   elf    examples/configs/elf-small-large.yaml as it is (english-large, filled frames, 3,000 steps of 128 windows)
#          with prompts (conditional, prompt_prob 0.5): the candidate bundled default
#   ar     its AR peer, examples/configs/ar-small-large.yaml as it is (same data, batch and 3,000 steps): also the
#          no-overfitting check at the benchmark budget (its validation loss every 250 steps)
#   codec  Cosmos' 8x codec (N = 16), the shipped recipe on english-large, batch 128, until TRAIN_S (alone on the GPU
#          once the other two are done)
# elf and ar export themselves at step 3,000. If TRAIN_S passes first, every run is stopped and both are exported at
# their last common checkpoint (the same budget). The codec is scored on held-out english-prose there.
# Back in $OUT: elf.tar.* and ar.tar.* (fp16 exports), logs.tgz (train logs, outputs, reconstruction table).
# CPU rehearsal: SKIP_WHL=1 PREC=no TRAIN_S=120 ELF_ARGS=... AR_ARGS=... CODEC_ARGS=... RECON_N=16 (README).
set -uo pipefail
T0=$SECONDS
TRAIN_S=${TRAIN_S:-450}; PREC=${PREC:-bf16}; OUT=${OUT:-/tmp/out}; R=${R:-/tmp/runs}; L=/tmp/logs
mkdir -p "$R" "$OUT" "$L"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-5}; . .gpu/setup.sh  # wheels, encoder, corpora, offline environment
echo "setup done at $((SECONDS - T0)) s"

common="--mixed_precision $PREC --report_to none --save_total_limit 100"
train() {  # name config args...
  local name=$1 cfg=$2; shift 2
  python3 -m latentlm.cli train "$cfg" --output_dir "$R/$name" $common "$@" > "$R/$name.out" 2>&1 &
  echo $! > "$R/$name.pid"
}
# ${X_ARGS} unquoted on purpose: each is a list of overrides (the CPU rehearsal shrinks the models with them).
train elf examples/configs/elf-small-large.yaml --model.conditional true --model.prompt_prob 0.5 \
  --model.condition_dropout 0.1 ${ELF_ARGS:-}
train ar examples/configs/ar-small-large.yaml ${AR_ARGS:-}
train codec examples/configs/cosmos-autoencoder-tiny.yaml --dataset english-large --max_train_samples null \
  --cache_encoder_activations false --per_device_train_batch_size 128 --max_steps 100000 --save_steps 250 \
  --eval_batches 8 --logging_steps 50 ${CODEC_ARGS:-}

running() { kill -0 "$(cat "$R/$1.pid")" 2>/dev/null; }
last_step() { grep -o '"step": [0-9]*' "$R/$1/train_log.jsonl" 2>/dev/null | tail -1 | grep -o '[0-9]*'; }
while [ $((SECONDS - T0)) -lt "$TRAIN_S" ] && { running elf || running ar || running codec; }; do
  sleep 20
  echo "t=$((SECONDS - T0)) s elf:$(last_step elf) ar:$(last_step ar) codec:$(last_step codec)"
  nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader 2>/dev/null
done
for name in elf ar codec; do kill "$(cat "$R/$name.pid")" 2>/dev/null; done; sleep 5
for name in elf ar codec; do kill -9 "$(cat "$R/$name.pid")" 2>/dev/null; done
echo "training stopped at $((SECONDS - T0)) s"
for name in elf ar codec; do
  cp "$R/$name/train_log.jsonl" "$L/$name-train_log.jsonl" 2>/dev/null; cp "$R/$name.out" "$L/"
  tr '\r' '\n' < "$R/$name.out" | grep -a "INFO latentlm\|Error" | cut -c1-240 | tail -3
done

checkpoint() { ls -d "$R/$1"/checkpoints/checkpoint-* 2>/dev/null | sed 's/.*checkpoint-//' | sort -n | tail -1; }
export_at() {  # run step folder: the run's EMA export at one of its checkpoints, into another folder
  python3 -m latentlm.cli train "$R/$1/training_config.yaml" --output_dir "$3" --resume_from_checkpoint \
    "$R/$1/checkpoints/checkpoint-$2" --max_steps "$2" > "$3.export.out" 2>&1
}
C=$(checkpoint codec); [ -n "$C" ] && { export_at codec "$C" "$R/codec-export" & }
E=elf A=ar
if [ ! -f "$R/elf/model_index.json" ] || [ ! -f "$R/ar/model.safetensors" ]; then  # stopped before step 3,000
  S=$(checkpoint elf); SA=$(checkpoint ar); [ "${SA:-0}" -lt "${S:-0}" ] && S=$SA
  E=elf-at-$S A=ar-at-$S; echo "stopped early: ELF and AR exported at their last common checkpoint, step $S"
  export_at elf "$S" "$R/$E" & export_at ar "$S" "$R/$A" &
fi
wait
if [ -f "$R/codec-export/config.json" ]; then
  device=$(python3 -c "import torch; print('cuda' if torch.cuda.is_available() else 'cpu')")
  python3 -m latentlm.cli reconstruct --autoencoder "codec-N16-step$C=$R/codec-export" --dataset english-prose \
    --num-sequences "${RECON_N:-256}" --device "$device" --out-dir "$L/recon-english-prose" > "$L/recon.out" 2>&1
  tail -n 12 "$L/recon-english-prose/reconstruction.md"
fi
tar -czf "$OUT/logs.tgz" -C /tmp logs
echo "exports and reconstruction done at $((SECONDS - T0)) s"

python3 .gpu/pack_exports.py "$OUT" "$R/$E=elf" "$R/$A=ar"  # the codec (37 MB in fp16) would not fit beside them
ls -la "$OUT"
echo "all done at $((SECONDS - T0)) s"
