# The two commands of the README. Both set up a fresh machine first (idempotent, ~2 minutes the first time).
PY := .venv/bin/python
SETUP_STAMP := .venv/.setup-done

.PHONY: setup demo test lint

$(SETUP_STAMP): pyproject.toml scripts/setup.sh
	bash scripts/setup.sh
	touch $(SETUP_STAMP)

setup: $(SETUP_STAMP)

# Generate text with the bundled default model (no network).
demo: $(SETUP_STAMP)
	HF_HUB_OFFLINE=1 .venv/bin/latentlm sample --pretrained elf-tiny-prose --num_samples 4 --seed 0

# The default test suite (slow tests run with RUN_SLOW=1) and the linter.
test: $(SETUP_STAMP)
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 .venv/bin/pytest -q
	.venv/bin/ruff check src tests examples
