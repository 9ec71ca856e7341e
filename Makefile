# The two front-door commands. Each creates .venv when it is missing.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
DEMO_DIR ?= demo_out

.PHONY: demo test test-all lint bench clean-demo

$(BIN)/vsum: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev,s3]"
	touch $(BIN)/vsum

demo: $(BIN)/vsum
	$(BIN)/vsum demo --out $(DEMO_DIR)

test: $(BIN)/vsum
	$(BIN)/python -m pytest -m "not slow" --durations=25

test-all: $(BIN)/vsum
	$(BIN)/python -m pytest

lint: $(BIN)/vsum
	$(BIN)/ruff check pipeline heads stores jobs tests

clean-demo:
	rm -rf $(DEMO_DIR)
