# Two commands do all set-up on a fresh clone:
#   make demo   create .venv, install cnnkit, train the default model on mnist-mini (offline)
#   make test   install the test dependencies too, run the test suite (with a coverage summary)
#   make lint   ruff check, ruff format --check, mypy (scripts/lint.sh)
#   make docs   build the documentation site into site/ (offline, --strict)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: demo test test-all install lint docs docs-serve clean

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "cnnkit needs Python 3.11 or newer"'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e ".[dev,docs]"
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(VENV)/bin/cnnkit train

test: $(VENV)/.installed
	$(PY) -m pytest -q --cov=cnnkit --cov-report=term:skip-covered

test-all: $(VENV)/.installed
	$(PY) -m pytest -q -m "slow or not slow"

lint: $(VENV)/.installed
	PY=$(PY) bash scripts/lint.sh

docs: $(VENV)/.installed
	$(PY) -m mkdocs build --strict --site-dir site

docs-serve: $(VENV)/.installed
	$(PY) -m mkdocs serve

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage site
