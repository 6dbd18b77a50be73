# The two commands of the README. Both set up a fresh machine first (idempotent, ~2 minutes the first time).
PY := .venv/bin/python
SETUP_STAMP := .venv/.setup-done

.PHONY: setup demo test

$(SETUP_STAMP): pyproject.toml scripts/setup.sh
	bash scripts/setup.sh
	touch $(SETUP_STAMP)

setup: $(SETUP_STAMP)

# Generate text with the bundled models (no network): unconditional samples, then prompt continuations.
demo: $(SETUP_STAMP)
	HF_HUB_OFFLINE=1 .venv/bin/latentlm sample --pretrained elf-tiny-prose --num_samples 4 --seed 0
	HF_HUB_OFFLINE=1 .venv/bin/latentlm sample --pretrained elf-tiny-prose-continuation --seed 0 --max_new_tokens 32 \
		--prompt "the government said" --prompt "she walked into the room" --num_return_sequences 2 --guidance_scale 2

# The default test suite (slow tests run with RUN_SLOW=1) and the linter (every Python file outside .gitignore:
# the package, tests, examples and benchmark scripts).
test: $(SETUP_STAMP)
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 .venv/bin/pytest -q
	.venv/bin/ruff check .
