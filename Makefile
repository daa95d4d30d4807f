# Everything runs from the project's own virtual environment, created on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv test lint unit demo e2e bench docs clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip uv
	$(BIN)/uv pip install --quiet --python $(BIN)/python -e ".[dev]"
	touch $(STAMP)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/pytest

e2e: venv
	$(BIN)/pytest -m e2e

docs: venv
	$(BIN)/mkdocs build --strict --site-dir .site

demo: venv
	$(BIN)/python scripts/demo.py

clean:
	rm -rf $(VENV) .demo .site .pytest_cache .ruff_cache
