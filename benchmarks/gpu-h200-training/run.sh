#!/usr/bin/env bash
# One prepared GPU session (issues 14 and 15; prepare.sh builds the .gpu/ and .whl/ it reads). Side by side on one
# GPU, until TRAIN_S seconds have passed:
#   elf   ELF 8x256 (elf-small-large.yaml) on english-large, conditional (prompts) - the candidate bundled default
#   ar    its AR peer (ar-small-large.yaml), same data, batch and steps
#   warm  ELF with MiniLM's six layers copied (benchmarks/warm-start/elf-minilm-warm.yaml) on english-large
#   cold  its cold twin (elf-minilm-cold.yaml)
#   codec Cosmos' 8x codec, N = 16 (cosmos-autoencoder-tiny.yaml, the shipped recipe) on english-large
# then every run is stopped; elf and ar are exported from their last common checkpoint (EMA), the codec from its last.
set -uo pipefail
T0=$SECONDS
TRAIN_S=${TRAIN_S:-400}; B=${B:-256}; SAVE=${SAVE:-250}; PREC=${PREC:-bf16}; OUT=${OUT:-/tmp/out}; EXTRA=${EXTRA:-}
R=${R:-/tmp/runs}; mkdir -p "$R" "$OUT"
. .gpu/setup.sh  # wheels, encoder, corpora, offline environment
echo "setup done at $((SECONDS - T0)) s"

common="--per_device_train_batch_size $B --per_device_eval_batch_size 128 --max_steps 100000 --save_steps $SAVE \
  --save_total_limit 1000 --eval_steps $SAVE --mixed_precision $PREC --report_to none --logging_steps 50"
train() {  # name config args...
  local name=$1 cfg=$2; shift 2
  python3 -m latentlm.cli train "$cfg" --output_dir "$R/$name" $common "$@" $EXTRA > "$R/$name.out" 2>&1 &
  echo $! > "$R/$name.pid"
}
if [ -z "${EXPORT_ONLY:-}" ]; then
train elf examples/configs/elf-small-large.yaml --model.conditional true --model.prompt_prob 0.5 --model.condition_dropout 0.1
train ar examples/configs/ar-small-large.yaml
for start in warm cold; do
  train $start .gpu/elf-minilm-$start.yaml --dataset english-large --seq_len 128 --max_train_samples null \
    --max_eval_samples null --cache_encoder_activations false --eval_batches 8 --save_steps 100000
done
train codec examples/configs/cosmos-autoencoder-tiny.yaml --dataset english-large --max_train_samples null --fill_frames false \
  --cache_encoder_activations false --per_device_train_batch_size $((B / 2)) --eval_batches 8
while [ $((SECONDS - T0)) -lt "$TRAIN_S" ]; do
  sleep 20; alive=0; for p in "$R"/*.pid; do kill -0 "$(cat "$p")" 2>/dev/null && alive=$((alive + 1)); done
  echo "t=$((SECONDS - T0)) s alive=$alive $(for n in elf ar warm cold codec; do echo -n "$n:$(grep -o '"step": [0-9]*' "$R/$n/train_log.jsonl" 2>/dev/null | tail -1 | grep -o '[0-9]*') "; done)"
  nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader 2>/dev/null
  [ $alive -eq 0 ] && break
done
for p in "$R"/*.pid; do kill "$(cat "$p")" 2>/dev/null; done; sleep 5
for p in "$R"/*.pid; do kill -9 "$(cat "$p")" 2>/dev/null; done
echo "training stopped at $((SECONDS - T0)) s"
tail -n 3 "$R"/*.out
mkdir -p /tmp/logs; for n in elf ar warm cold codec; do cp "$R/$n/train_log.jsonl" /tmp/logs/$n-train_log.jsonl 2>/dev/null; cp "$R/$n.out" /tmp/logs/; done
tar -czf "$OUT/logs.tgz" -C /tmp logs
fi

last() { ls -d "$R/$1"/checkpoints/checkpoint-* 2>/dev/null | sed 's/.*checkpoint-//' | sort -n | tail -1; }
S=$(( $(last elf || echo 0) < $(last ar || echo 0) ? $(last elf || echo 0) : $(last ar || echo 0) ))
C=$(last codec); echo "export: elf and ar at step $S, codec at step ${C:-none}"
export_run() {  # name step
  python3 -m latentlm.cli train "$R/$1/training_config.yaml" --output_dir "$R/$1" --resume_from_checkpoint \
    "$R/$1/checkpoints/checkpoint-$2" --max_steps "$2" $EXTRA > "$R/$1.export.out" 2>&1
}
[ "${S:-0}" -gt 0 ] && { export_run elf $S & export_run ar $S & }
[ -n "$C" ] && { export_run codec $C & }
wait
tail -n 2 "$R"/*.export.out
echo "exports done at $((SECONDS - T0)) s"
if [ -n "$C" ]; then
  dev=$(python3 -c "import torch; print('cuda' if torch.cuda.is_available() else 'cpu')")
  for data in english-prose; do
    python3 -m latentlm.cli reconstruct --autoencoder "codec-N16-step$C=$R/codec" --dataset $data --num-sequences ${RECON_N:-256} \
      --device $dev --out-dir /tmp/logs/recon-$data > /tmp/logs/recon-$data.out 2>&1
    tail -n 12 /tmp/logs/recon-$data/reconstruction.md
  done
  # Not the train logs again: an export resumes its run at the exported step, which truncates the run's log there.
  for n in elf ar codec; do cp "$R/$n.export.out" /tmp/logs/ 2>/dev/null; done
  tar -czf "$OUT/logs.tgz" -C /tmp logs
fi
echo "reconstruction done at $((SECONDS - T0)) s"
python3 .gpu/pack_exports.py "$OUT" "$R/elf" "$R/ar"  # the codec (37 MB in fp16) does not fit the 64 MB that comes back
ls -la "$OUT"
echo "all done at $((SECONDS - T0)) s"
