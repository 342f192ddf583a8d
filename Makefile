# One command to see it work, one to prove it works. Both create .venv on first use.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: setup demo test lint typecheck quick bench schemas screenshots clean

$(INSTALLED): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $(INSTALLED)

setup: $(INSTALLED)

demo: $(INSTALLED)
	$(BIN)/flowrelay demo

lint: $(INSTALLED)
	$(BIN)/ruff check shared functions tests benchmarks scripts
	$(BIN)/ruff format --check shared functions tests benchmarks scripts
	$(BIN)/lint-imports --no-cache

typecheck: $(INSTALLED)
	$(BIN)/mypy

quick: $(INSTALLED)
	$(BIN)/pytest -q -m "not slow"

test: lint typecheck
	$(BIN)/pytest -q

bench: $(INSTALLED)
	$(BIN)/python -m benchmarks.run

# The web UI's pictures in docs/ui/ (headless Chromium over `flowrelay demo --keep`).
screenshots: $(INSTALLED)
	$(BIN)/python scripts/ui_screenshots.py

schemas: $(INSTALLED)
	$(BIN)/python -m flowrelay.schemas

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
