# Set-up: each target creates .venv when it is missing and installs what it needs.
# PyTorch goes in first, pinned to the CPU build, so that polyseq's torch requirement is already met
# and pip does not pull the CUDA packages.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.polyseq-installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: quickstart test lint browser bench-multi30k

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[all]"
	touch $(STAMP)

quickstart: $(STAMP)
	$(VENV)/bin/polyseq quickstart

test: $(STAMP) browser
	$(PY) -m pytest -q -p no:cacheprovider

# The web page's tests drive Debian's headless Chromium through its chromedriver.
browser:
	@command -v chromedriver >/dev/null || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium chromium-driver >/dev/null; }

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy

bench-multi30k: $(STAMP)
	$(PY) bench/multi30k.py
