# Set-up: each target creates .venv when it is missing and installs what it needs.
# PyTorch goes in first, pinned to the CPU build, so that polyseq's torch requirement is already met
# and pip does not pull the CUDA packages.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.polyseq-installed

.PHONY: quickstart test lint bench-multi30k

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[all]"
	touch $(STAMP)

quickstart: $(STAMP)
	$(VENV)/bin/polyseq quickstart

test: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy

bench-multi30k: $(STAMP)
	$(PY) bench/multi30k.py
