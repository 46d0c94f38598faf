# The two commands of the README: `make demo` and `make test`. Each sets itself up from nothing.
# `make bench` runs every benchmarks/bench_*.py and writes docs/performance.md from their figures.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
DEMO_OUT ?= demo_out

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,ray,api,hf,rl]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/multispa demo --out $(DEMO_OUT)

test: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks

bench: $(STAMP)
	$(PY) benchmarks/report.py

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache
