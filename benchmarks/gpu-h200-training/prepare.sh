#!/usr/bin/env bash
# Builds what run.sh needs on a bare GPU machine that has torch, transformers, accelerate and peft but nothing of
# latentlm's own, within the device tool's 64 MiB transfer (run from the repository root, after `make setup`):
#   .whl/  diffusers, datasets, dill, multiprocess wheels (Python 3.12)                                   ~7 MB
#   .gpu/  the frozen encoder all-MiniLM-L6-v2 in fp16 with the rows of the 3,965 WordPiece tokens english-large
#          never uses zeroed (xz: 38 MB; the device turns it back to fp32), the nine english-large corpora as
#          built DatasetDicts (xz: 15 MB), the device scripts and the warm-start configs                    ~54 MB
# The repository's tracked bundled models, benchmarks and tests (~55 MB) must not travel: `travel-light.sh start`
# untracks them for the call, `travel-light.sh end` tracks them again. Carry `.gpu` and `.whl`.
set -euo pipefail
here=benchmarks/gpu-h200-training
mkdir -p .gpu/enc .whl
exclude=$(git rev-parse --git-path info/exclude); mkdir -p "$(dirname "$exclude")"
grep -qx '/.gpu/' "$exclude" 2>/dev/null || printf '/.gpu/\n/.whl/\n' >> "$exclude"
.venv/bin/python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
  diffusers==0.42.1 datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19
HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 .venv/bin/python - <<'PY'
import numpy as np, shutil, torch
from safetensors.torch import load_file, save_file
from tokenizers import Tokenizer
from latentlm.data import load_corpus
from latentlm.models.encoders import default_encoder_path
src = default_encoder_path()
for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
    shutil.copy(f"{src}/{name}", ".gpu/enc/")
tokenizer = Tokenizer.from_file(f"{src}/tokenizer.json")
seen = np.zeros(tokenizer.get_vocab_size(), dtype=bool)
seen[[0, 100, 101, 102, 103]] = True  # [PAD] [UNK] [CLS] [SEP] [MASK]
corpus = load_corpus("english-large")
for split in corpus:
    texts = corpus[split]["text"]
    for i in range(0, len(texts), 2000):
        for encoding in tokenizer.encode_batch(texts[i : i + 2000]):
            seen[encoding.ids] = True
weights = {k: v.half().contiguous() for k, v in load_file(f"{src}/model.safetensors").items()}
weights["embeddings.word_embeddings.weight"][torch.from_numpy(~seen)] = 0
save_file(weights, ".gpu/enc/model16.safetensors", metadata={"format": "pt"})
print(f"kept {seen.sum()} of {len(seen)} embedding rows")
PY
xz -9 -T2 -f .gpu/enc/model16.safetensors
cache=${LATENTLM_CACHE:-$HOME/.cache/latentlm}/corpora
tar --exclude='cache-*' -cJf .gpu/corpora.tar.xz -C "$cache" \
  austen-v1 bbc-news-v1 brown-v1 fortunes-v1 kjv-v1 shakespeare-v1 spurgeon-v1 web-v1 wordnet-v1
cp $here/setup.sh $here/pack_exports.py $here/run.sh $here/run-fill.sh benchmarks/warm-start/elf-minilm-warm.yaml \
  benchmarks/warm-start/elf-minilm-cold.yaml .gpu/
cp benchmarks/gpu-defaults/run.sh .gpu/run-defaults.sh
du -sh .gpu .whl
