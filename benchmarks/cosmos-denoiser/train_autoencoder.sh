#!/usr/bin/env bash
# Stage 1, trained once: an N = 32 Cosmos autoencoder without augmentations (the sweep's best-reconstructing 4x codec:
# 0.85 held-out at 400 steps), here at 150 steps because the 2-core machine was shared by six engineers.
# Every diffusion row of run_rows.sh trains on its frozen latents.
set -euo pipefail
cd "$(dirname "$0")/../.."
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 PYTHONPATH="$PWD/src"
nice -n 10 env OMP_NUM_THREADS=1 .venv/bin/latentlm train examples/configs/cosmos-autoencoder-tiny.yaml \
  --output_dir runs/cosmos-denoiser/ae-32 --model.num_latents 32 --fill_frames false \
  --model.activation_mask_fraction 0 --model.activation_noise_fraction 0 --model.latent_dropout 0 \
  --max_steps "${AE_STEPS:-150}" --save_steps "${AE_STEPS:-150}" --eval_steps "${AE_STEPS:-150}"
