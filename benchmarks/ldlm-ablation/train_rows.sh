#!/bin/bash
# LDLM recipe ablation: same data, size, steps and seed for every row; only the recipe switches differ.
# Usage: benchmarks/ldlm-ablation/train_rows.sh ROW... (rows: full no-mse no-warmup no-adaptive no-noise naive, and
# the full recipe with a smaller decoder noise: sigma-0.5 sigma-1 (and sigma-0.5 without each other part:
# sigma-0.5-no-warmup sigma-0.5-no-mse sigma-0.5-no-adaptive), and without decoder noise
# each other part removed: no-noise-no-mse no-noise-no-warmup no-noise-no-adaptive. Any row prefixed `wide-`
# (wide-full, wide-naive, ...) runs at one latent of 256 per token (64 for 64 tokens) instead of 8 latents of 32: the
# per-token capacity the decoder noise needs (README); a row prefixed `denoiser128-` (denoiser128-wide-sigma-1, ...)
# has elf-tiny.yaml's 3 x 128 denoiser instead of the ablation's 2 x 64. A row whose log exists is skipped, so several
# queues can share the list). Runs go to $LDLM_ABLATION_DIR (runs/ldlm-ablation);
# STEPS (default 100) optimizer steps per row, the encoder warm-up S_wu at 30% of them; sigma_dec = 3 (the paper's)
# unless a row sets another.
cd "$(dirname "$0")/../.."
export PYTHONPATH=$PWD/src HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 OMP_NUM_THREADS=1
STEPS=${STEPS:-100}
COMMON="--seq_len 64 --max_train_samples 4000 --max_steps $STEPS --warmup_steps 20 --per_device_train_batch_size 16 --eval_steps $STEPS --save_steps $STEPS --logging_steps 10 --model.num_latents 8 --model.latent_dim 32 --model.codec_hidden_size 64 --model.codec_num_attention_heads 2 --model.num_encoder_layers 1 --model.num_decoder_layers 1 --model.lm_head_dim 32 --model.hidden_size 64 --model.num_hidden_layers 2 --model.encoder_warmup_steps $(( STEPS * 3 / 10 )) --model.decoder_noise_std 3.0"
declare -A ROWS=(
  [full]=""
  [no-mse]="--model.mse_decoder_loss false"
  [no-warmup]="--model.encoder_warmup false"
  [no-adaptive]="--model.adaptive_timesteps false"
  [no-noise]="--model.decoder_input_noise false"
  [naive]="--model.mse_decoder_loss false --model.encoder_warmup false --model.adaptive_timesteps false --model.decoder_input_noise false"
  [sigma-0.5]="--model.decoder_noise_std 0.5"
  [sigma-1]="--model.decoder_noise_std 1.0"
  [no-noise-no-mse]="--model.decoder_input_noise false --model.mse_decoder_loss false"
  [no-noise-no-warmup]="--model.decoder_input_noise false --model.encoder_warmup false"
  [no-noise-no-adaptive]="--model.decoder_input_noise false --model.adaptive_timesteps false"
  [sigma-0.5-no-warmup]="--model.decoder_noise_std 0.5 --model.encoder_warmup false"
  [sigma-0.5-no-mse]="--model.decoder_noise_std 0.5 --model.mse_decoder_loss false"
  [sigma-0.5-no-adaptive]="--model.decoder_noise_std 0.5 --model.adaptive_timesteps false"
)
WIDE="--model.num_latents 64 --model.latent_dim 256"
ELF_DENOISER="--model.hidden_size 128 --model.num_hidden_layers 3 --model.num_attention_heads 2"
for name in "$@"; do
  row=$name; geometry=""
  if [[ $row == denoiser128-* ]]; then row=${row#denoiser128-}; geometry+=" $ELF_DENOISER"; fi
  if [[ $row == wide-* ]]; then row=${row#wide-}; geometry+=" $WIDE"; fi
  mkdir -p ${LDLM_ABLATION_DIR:-runs/ldlm-ablation}; [ -f ${LDLM_ABLATION_DIR:-runs/ldlm-ablation}/$name.log ] && continue
  start=$(date +%s)
  nice -n 10 .venv/bin/latentlm train examples/configs/ldlm-tiny.yaml --output_dir ${LDLM_ABLATION_DIR:-runs/ldlm-ablation}/$name $COMMON $geometry ${ROWS[$row]} > ${LDLM_ABLATION_DIR:-runs/ldlm-ablation}/$name.log 2>&1
  echo "$name rc=$? $(( $(date +%s) - start ))s" >> ${LDLM_ABLATION_DIR:-runs/ldlm-ablation}/times.txt
done
