# Two commands do all the set-up: `make up` runs the platform, `make test` runs every check.
PYTHON ?= python3
VENV := .venv
INSTALLED := $(VENV)/.installed

.PHONY: up test lint clean

$(INSTALLED): pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit("Python 3.11 or newer is needed") if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	touch $@

up: $(INSTALLED)  ## run everything in one process with a simulated building
	$(VENV)/bin/koprogo-iot up --demo

lint: $(INSTALLED)
	$(VENV)/bin/ruff check src tests
	$(VENV)/bin/ruff format --check src tests
	$(VENV)/bin/mypy

test: $(INSTALLED) lint  ## linters, type checks and the whole test suite
	scripts/ensure-test-services
	$(VENV)/bin/pytest

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache
