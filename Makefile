# Ship: every target creates and fills .venv when it is missing.
#   make demo   the whole loop on examples/ (sqlite MLflow in .ship/, local processes)
#   make test   every Python test, and the front end's (make test-js); make test-ui the browser tests
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# Every pip call goes through the constraints: torch stays at the local CPU wheel.
PIP_INSTALL := $(PIP) install --quiet --constraint constraints.txt

# The lab-extension build (hatch-jupyter-builder, no build isolation) runs jupyter-builder
# from the venv.
export PATH := $(abspath $(VENV))/bin:$(PATH)
export MLFLOW_DISABLE_TELEMETRY := true
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install demo test test-js test-ui lint typecheck clean

install: $(VENV)/.ship-installed

$(VENV)/.ship-installed: pyproject.toml constraints.txt package.json
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP_INSTALL) torch==2.13.0
	$(PIP_INSTALL) hatchling hatch-jupyter-builder editables jupyterlab jupyter-builder
	$(PIP_INSTALL) --no-build-isolation --editable ".[test,examples]"
	touch $@

demo: install
	$(VENV)/bin/ship demo

test: install test-js
	$(PY) -m pytest

# The front end without a browser, in seconds: eslint, tsc over the sources and their
# tests, and the unit tests of its pure logic (extension/test, node's test runner).
test-js: node_modules/.package-lock.json
	npm run --silent lint
	npm run --silent typecheck
	npm test --silent

node_modules/.package-lock.json: package.json package-lock.json
	npm install --no-audit --no-fund
	touch $@

# JupyterLab in Chromium through Galata; installs Chromium and the test's npm packages
# when missing. Screenshots land in tests/ui/screenshots/.
test-ui: install
	VENV=$(abspath $(VENV)) tests/ui/run.sh

lint: install node_modules/.package-lock.json
	$(VENV)/bin/ruff check kernel_magics tests bench
	npm run --silent lint

typecheck: install node_modules/.package-lock.json
	$(VENV)/bin/mypy
	npm run --silent typecheck

clean:
	rm -rf $(VENV) node_modules kernel_magics/labextension lib .ship examples/.ship
