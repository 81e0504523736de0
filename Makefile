# Two commands on a fresh machine with Python 3.11 and Node 20:
#   make serve   - set up and run the server (ws://0.0.0.0:6001, HTTP API on the same port)
#   make test    - set up and run every check: ruff, mypy --strict, pytest, the Node client suite,
#                  then pytest and the Node suite again against the compiled build
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The compiled build (setup.py, README "Compiled build"): the hot modules through mypyc, installed
# (not editable) in a venv of its own and rebuilt whenever a source file changes.
CVENV ?= .venv-compiled
CBIN := $(CVENV)/bin
JS := tests/js

.PHONY: serve serve-compiled test setup setup-js compiled lint typecheck test-py test-js \
	test-compiled clean

$(BIN)/clarion: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(BIN)/clarion

setup: $(BIN)/clarion

$(CBIN)/clarion: pyproject.toml setup.py $(shell find src -name '*.py')
	$(PYTHON) -m venv $(CVENV)
	$(CBIN)/pip install --quiet --upgrade pip
	$(CBIN)/pip install --quiet '.[test]'
	rm -rf build  # setuptools' build tree would carry a module no longer compiled into the wheel
	CLARION_COMPILE=1 $(CBIN)/pip install --quiet --no-deps --force-reinstall .
	touch $(CBIN)/clarion

compiled: $(CBIN)/clarion

$(JS)/node_modules/.package-lock.json: $(JS)/package-lock.json
	cd $(JS) && npm ci --no-audit --no-fund
	touch $@

setup-js: $(JS)/node_modules/.package-lock.json

serve: setup
	$(BIN)/clarion serve $(ARGS)

serve-compiled: compiled
	$(CBIN)/clarion serve $(ARGS)

lint: setup
	$(BIN)/ruff check src tests setup.py
	$(BIN)/ruff format --check src tests setup.py

typecheck: setup
	$(BIN)/mypy

test-py: setup
	$(BIN)/pytest

test-js: setup setup-js
	cd $(JS) && CLARION_BIN=$(abspath $(BIN))/clarion npm test

# The same suites against the compiled build; conftest refuses to run on plain modules.
test-compiled: compiled setup-js
	CLARION_EXPECT_COMPILED=1 $(CBIN)/pytest
	cd $(JS) && CLARION_BIN=$(abspath $(CBIN))/clarion npm test

test: lint typecheck test-py test-js test-compiled

clean:
	rm -rf $(VENV) $(CVENV) build $(JS)/node_modules .mypy_cache .ruff_cache .pytest_cache
