#!/usr/bin/env bash
# Scores ablation rows that train_rows.sh trained (default the six of the recipe; ROWS="a b ..." for others): sample
# quality at 4/8/16/32 steps (`latentlm bench --quick`) and the latent space (`latentlm reconstruct`: held-out token accuracy of decode(encode(x) + sigma * noise)).
#   [ROWS="..."] bash benchmarks/ldlm-ablation/bench_rows.sh OUT_DIR   (runs from $LDLM_ABLATION_DIR, default runs/ldlm-ablation)
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${LDLM_ABLATION_DIR:-runs/ldlm-ablation}
OUT=${1:?give the folder the tables go to}
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
read -r -a ROWS <<< "${ROWS:-full no-mse no-warmup no-adaptive no-noise naive}"
models=() codecs=()
for row in "${ROWS[@]}"; do
  models+=(--model "$row=$RUNS/$row")
  codecs+=(--autoencoder "$row=$RUNS/$row")
done
latentlm bench --quick --no-speed --steps 4 8 16 32 "${models[@]}" --out-dir "$OUT"
latentlm reconstruct "${codecs[@]}" --num-sequences 256 --noise-levels 0 0.5 1 2 --out-dir "$OUT/reconstruction"
mkdir -p "$OUT/logs"
for row in "${ROWS[@]}"; do cp "$RUNS/$row/train_log.jsonl" "$OUT/logs/train_log-$row.jsonl"; done
