# The README's two commands are `make figures` and `make test`; each builds .venv when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
JOBS ?= 2
export MPLBACKEND := Agg

.PHONY: figures smoke test test-fast bench cost sync-notebooks clean-venv

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -qq --upgrade pip
	$(BIN)/python -m pip install -qq -e '.[dev]'
	touch $(STAMP)

## Regenerate every figure and table (default profile, embedded data) and figures/REPORT.md.
figures: $(STAMP)
	$(BIN)/protolab run --profile default --jobs $(JOBS)

## Every notebook in the smoke profile (seconds each), written to runs/<run-id>/figures instead of figures/.
smoke: $(STAMP)
	$(BIN)/protolab run --profile smoke --jobs $(JOBS)

## The test suite (what CI runs): unit tests, loader tests on generated fixtures, notebook smoke runs, SLURM;
## two pytest-xdist workers (pyproject's addopts), the 25 slowest tests listed at the end.
test: $(STAMP)
	$(BIN)/python -m pytest --durations=25

## The edit loop: unit and loader tests only (no notebook executions, no SLURM), a few minutes.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not notebook and not slurm"

## Benchmarks print timings; they are not tests. They run with the allocator settings the runner gives notebooks.
bench: $(STAMP)
	allocator=$$($(BIN)/python -c 'import os; from protolab.runner.allocator import allocator_environment as a; \
	  print(" ".join(f"{k}={v}" for k, v in a(os.environ).items()))'); \
	for script in benchmarks/*.py; do [ $$script = benchmarks/dry_runs.py ] || env $$allocator $(BIN)/python $$script || exit 1; done

## Dry runs of every paper protocol on generated full-size data; writes the README's cost table (about 30 min and 18 GiB here).
cost: $(STAMP)
	$(BIN)/python benchmarks/dry_runs.py --readme

## After editing a notebook (.ipynb in JupyterLab) or its percent script (notebooks/NAME.py): update the other.
sync-notebooks: $(STAMP)
	$(BIN)/jupytext --sync notebooks/*.ipynb

clean-venv:
	rm -rf $(VENV)
