# All set-up happens here: `make test` and `make demo` work on a fresh clone.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# OpenMP threads spin-wait by default; on a shared 2-core machine that makes
# small models an order of magnitude slower.
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: test lint doctest format demo install bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks scripts examples
	$(VENV)/bin/ruff format --check src tests benchmarks scripts examples

# the examples in the docstrings of src/equivar run as written
doctest: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider --doctest-modules src/equivar

format: $(STAMP)
	$(VENV)/bin/ruff check --fix src tests benchmarks scripts examples
	$(VENV)/bin/ruff format src tests benchmarks scripts examples

test: $(STAMP) lint doctest
	$(PY) -m pytest -q -x --durations=20 --timeout=1200 tests

demo: $(STAMP)
	$(PY) -m equivar demo

bench: $(STAMP)
	$(PY) benchmarks/sh.py

clean:
	rm -rf $(VENV) runs .pytest_cache
