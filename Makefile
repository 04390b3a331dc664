# The two commands of README.md, and friends. Each target creates .venv if needed.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The development config, passed explicitly: `pushgw` itself never falls back to it
# (--config, else $PUSHGW_CONFIG, else /etc/pushgw/pushgw.toml).
CONFIG ?= config/dev.toml

.PHONY: demo test lint quick serve mocks bench clean

$(BIN)/pushgw: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(BIN)/pushgw

demo: $(BIN)/pushgw  ## the five-step flow, all six platforms, SQLite + loopback mocks
	$(BIN)/pushgw demo --config $(CONFIG)

test: $(BIN)/pushgw lint  ## lint, types, and the test suite (slow tests included)
	$(BIN)/pytest -m "" -q

lint: $(BIN)/pushgw
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy pushgw

quick: $(BIN)/pushgw  ## the fast tests only (no slow marker)
	$(BIN)/pytest -q

serve: $(BIN)/pushgw  ## the daemon in the foreground on config/dev.toml (after `make mocks`: it reads their CA)
	$(BIN)/pushgw serve --config $(CONFIG)

mocks: $(BIN)/pushgw  ## the six loopback mocks + control API on 127.0.0.1:9100
	$(BIN)/pushgw mock-providers --config $(CONFIG)

bench: $(BIN)/pushgw  ## benchmark scenarios against the mocks (prints figures)
	$(BIN)/pushgw bench

clean:
	rm -rf $(VENV) state .mypy_cache .ruff_cache .pytest_cache
