# `make demo` and `make test` each create .venv when missing and install what they need; a second call
# installs nothing (the stamp files are newer than pyproject.toml).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint app

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[postgres]'
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev,postgres]'
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/ownbench demo

app: $(VENV)/.installed
	$(BIN)/ownbench app

lint: $(VENV)/.installed-dev
	$(BIN)/lint-imports

test: $(VENV)/.installed-dev
	$(BIN)/lint-imports
	$(BIN)/pytest
