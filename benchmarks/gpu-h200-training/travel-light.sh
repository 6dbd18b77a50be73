#!/usr/bin/env bash
# Keeps the repository's heavy tracked folders (bundled models, benchmarks, tests, model cards: ~55 MB) from
# travelling with a device call, whose working tree may hold 64 MiB with .gpu and .whl carried beside it.
#   bash benchmarks/gpu-h200-training/travel-light.sh start   # before the call: untrack them, ignore them
#   bash benchmarks/gpu-h200-training/travel-light.sh end     # after it: track them again, as before
# Nothing on disk is touched, only git's index and the exclude file (a block between this script's marks). Between
# start and end `git status` shows the folders as deleted: commit nothing then, or they leave the repository.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
HEAVY=(src/latentlm/pretrained benchmarks tests model_cards)
BEGIN="# travel-light.sh: begin" END="# travel-light.sh: end"  # exclude files have no trailing comments
exclude=$(git rev-parse --git-path info/exclude)
mkdir -p "$(dirname "$exclude")"; touch "$exclude"
case "${1:?start | end}" in
  start)
    if grep -qx "$BEGIN" "$exclude"; then echo "already started (run 'end' first)" >&2; exit 1; fi
    git rm -r -q --cached "${HEAVY[@]}"
    { echo "$BEGIN"; for path in "${HEAVY[@]}"; do echo "/$path/"; done; echo "$END"; } >> "$exclude"
    echo "untracked for the call: ${HEAVY[*]}" ;;
  end)
    sed -i "/^$BEGIN\$/,/^$END\$/d" "$exclude"
    git reset -q -- "${HEAVY[@]}"
    echo "tracked again: ${HEAVY[*]}"; git status --short | head ;;
  *) echo "unknown command $1 (start | end)" >&2; exit 2 ;;
esac
