# Two commands on a fresh machine with Python 3.11 and Node 20:
#   make serve   - set up and run the server (ws://0.0.0.0:6001, HTTP API on the same port)
#   make test    - set up and run every check: ruff, mypy --strict, pytest, the Node client suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
JS := tests/js

.PHONY: serve test setup setup-js lint typecheck test-py test-js clean

$(BIN)/clarion: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(BIN)/clarion

setup: $(BIN)/clarion

$(JS)/node_modules/.package-lock.json: $(JS)/package-lock.json
	cd $(JS) && npm ci --no-audit --no-fund
	touch $@

setup-js: $(JS)/node_modules/.package-lock.json

serve: setup
	$(BIN)/clarion serve $(ARGS)

lint: setup
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

typecheck: setup
	$(BIN)/mypy

test-py: setup
	$(BIN)/pytest

test-js: setup setup-js
	cd $(JS) && CLARION_BIN=$(abspath $(BIN))/clarion npm test

test: lint typecheck test-py test-js

clean:
	rm -rf $(VENV) $(JS)/node_modules .mypy_cache .ruff_cache .pytest_cache
