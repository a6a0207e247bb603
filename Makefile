# Two commands for a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test install install-all bench lint clean

$(BIN)/gradcheck:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e .

install: $(BIN)/gradcheck

# Everything the tests use, optional extras included (torch pinned to the local CPU build).
install-all: install
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[test,plot,rich,dask,jax]"

demo: install
	$(BIN)/gradcheck demo rnn

test: install-all
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest

bench: install-all
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .ruff_cache .hypothesis
