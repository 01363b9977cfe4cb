# The README's two commands: `make run` (set up, then the main job on the embedded default
# dataset) and `make test` (set up, then every test). Both create or reuse .venv.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.gcl-installed
# The CPU build of torch. On this project's machines pip takes it from local disk; elsewhere
# add TORCH_INDEX=https://download.pytorch.org/whl/cpu to avoid a multi-GB CUDA download.
TORCH := torch==2.13.0
TORCH_INDEX ?=
OUT ?= results
PYTEST_ARGS ?=

.PHONY: setup run test lint bench clean

$(STAMP): pyproject.toml requirements.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) $(TORCH)
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	$(BIN)/gclandscape run --out $(OUT)

test: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n 2 --durations=15 $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks tutorials docs
	$(BIN)/ruff format --check src tests benchmarks tutorials docs
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
