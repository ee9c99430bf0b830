# Two set-up commands keep working on a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU build of torch; a GPU user installs torch first (see README) and the pin is then satisfied or skipped.
TORCH ?= torch==2.13.0

.PHONY: venv demo lint test test-all bench docs notebooks clean

venv: $(VENV)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip >/dev/null
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install "$(TORCH)"
	$(BIN)/python -m pip install -e ".[dev,bench]"
	touch $@

demo: venv
	$(BIN)/mdlprob demo --out demo_output

lint: venv
	$(BIN)/ruff check mdlprob tests benchmarks

test: venv
	$(BIN)/python -m pytest -q

test-all: venv
	$(BIN)/python -m pytest -q -m ""

# The documentation site (mkdocs-material, API reference from the docstrings); --strict fails on any warning.
docs: venv
	$(BIN)/python -m pip install -e ".[docs]" >/dev/null
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

# Execute the tutorials (full mode; the MRI one fast) into docs/tutorials/*.ipynb for the site; needs MDLPROB_DATA
# for the real-data ones (skipped with a message otherwise). Run locally; `make docs` never executes them.
notebooks: venv
	$(BIN)/python -m pip install -e ".[docs]" >/dev/null
	$(BIN)/python docs/scripts/execute_tutorials.py

bench: venv
	$(BIN)/python benchmarks/throughput.py --out benchmarks/results

clean:
	rm -rf $(VENV) demo_output .pytest_cache site
