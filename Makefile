# All set-up happens here: `make test` and `make demo` work on a fresh clone.
# The first Python >= 3.11 on the PATH (pyproject's requires-python); override with
# `make PYTHON=/path/to/python3.12`.
PYTHON ?= $(shell for p in python3 python3.13 python3.12 python3.11; do \
	  $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1 && { command -v $$p; break; }; done)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# OpenMP threads spin-wait by default; on a shared 2-core machine that makes
# small models an order of magnitude slower.
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: test lint doctest format demo install bench mutants clean

$(PY):
	@if [ -z "$(PYTHON)" ]; then \
	  echo "make: no Python >= 3.11 found (tried python3, python3.13, python3.12, python3.11);" \
	    "install one, or name it: make PYTHON=/path/to/python3.11" >&2; exit 1; fi
	@echo "creating $(VENV) with $(PYTHON) ($$($(PYTHON) --version))"
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[test]"
	touch $(STAMP)
	@echo "installed: the command is $(VENV)/bin/equivar (run it so, or 'source $(VENV)/bin/activate' to type equivar)"

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

# the known bugs of scripts/check_mutants.py, each applied to a copy of the tree: a test must fail (minutes)
mutants: $(STAMP)
	$(PY) scripts/check_mutants.py

clean:
	rm -rf $(VENV) runs .pytest_cache
