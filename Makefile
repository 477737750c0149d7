# Two commands matter on a fresh machine: `make demo` and `make test` (see README.md).
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test setup setup-test lint typecheck unit bench soak soak-processing constraints clean

setup:
	scripts/bootstrap.sh runtime

setup-test:
	scripts/bootstrap.sh test

demo: setup
	$(BIN)/integration demo

lint: setup-test
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: setup-test
	$(BIN)/mypy src

unit: setup-test
	$(BIN)/pytest -q

test: lint typecheck unit

bench: setup-test
	$(BIN)/python benchmarks/store.py
	$(BIN)/python benchmarks/ingest.py
	$(BIN)/python benchmarks/imaging.py
	$(BIN)/python benchmarks/processing.py

# Not part of `make test`: a few minutes of faults and SIGKILLs; run it before resolving an issue.
soak: setup-test
	$(BIN)/python benchmarks/soak.py

soak-processing: setup-test
	$(BIN)/python benchmarks/soak.py --processing

# Refresh the constraints file from the current venv (after changing dependencies in pyproject.toml).
constraints:
	$(BIN)/pip freeze --exclude-editable | grep -v '^-e' > constraints.txt

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache demo-work
