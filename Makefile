# Two entry points for a fresh machine: `make demo` and `make test`. Both create .venv and install what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORE := $(VENV)/.installed-core
FULL := $(VENV)/.installed-full

.PHONY: demo test lint typecheck unit editors schemas clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(CORE): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

# torch==2.13.0 is named in the same pip call so that the CPU build is taken, never a multi-GB CUDA one.
$(FULL): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q torch==2.13.0 -e '.[local,modal,test]'
	touch $(CORE) $@

demo: $(CORE)
	@echo "== lift-lsp ir examples/stubs.py   (reverse mode: the IR of each function)"
	$(BIN)/lift-lsp ir examples/stubs.py
	@echo "== lift-lsp ir --json examples/checked.py --function mean"
	$(BIN)/lift-lsp ir --json examples/checked.py --function mean
	@echo "== lift-lsp check examples/checked.py   (each function against its own spec; exit 1 means errors found)"
	-$(BIN)/lift-lsp check examples/checked.py
	@echo "== lift-lsp generate   (forward mode)"
	@if [ -n "$$LIFT_URL" ]; then \
	  for f in running_max clamp count_vowels; do \
	    $(BIN)/lift-lsp generate examples/stubs.py --function $$f --url "$$LIFT_URL" --model "$$LIFT_MODEL" --diff || true; \
	  done; \
	else \
	  echo "No model endpoint configured, so no code is generated. To generate, point lift-lsp at any"; \
	  echo "OpenAI-compatible server (SGLang with --grammar-backend xgrammar, vLLM, or lift-lsp serve-model):"; \
	  echo "    LIFT_URL=http://127.0.0.1:30000/v1 LIFT_MODEL=Qwen/Qwen2.5-Coder-7B-Instruct make demo"; \
	  echo "(modal_backend/README.md deploys such a server on a GPU with one command.)"; \
	fi

test: $(FULL) lint typecheck editors unit

lint: $(FULL)
	$(BIN)/ruff check lift_lsp tests bench modal_backend
	$(BIN)/ruff format --check lift_lsp tests bench modal_backend

typecheck: $(FULL)
	$(BIN)/mypy

unit: $(FULL)
	$(BIN)/python -m pytest -q -rs

# The VS Code extension: strict compile and its unit tests (the Python tests also run its compiled settings mapping).
editors:
	cd editor-clients/vscode && npm ci --no-audit --no-fund --loglevel=error && npm run --silent compile && npm test --silent

schemas: $(CORE)
	$(BIN)/python -m lift_lsp.generate.schemas

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
