# Two commands for a new machine:  make demo   and   make test   (see README.md).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint typecheck check schema clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.runtime: $(BIN)/python requirements.txt
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

demo: $(VENV)/.runtime  ## the whole product on http://127.0.0.1:8000 (SQLite, embedded broker, Klaviyo sandbox)
	$(BIN)/python scripts/demo.py

test: $(VENV)/.dev  ## run the whole suite against PostgreSQL and Redis on their default ports
	$(BIN)/python scripts/check_test_services.py
	$(BIN)/pytest

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.dev
	$(BIN)/mypy

check: lint typecheck test

schema: $(VENV)/.runtime  ## write the OpenAPI schema to openapi.yaml
	$(BIN)/python manage.py spectacular --validate --fail-on-warn --file openapi.yaml

clean:
	rm -rf $(VENV) var db.sqlite3 .mypy_cache .ruff_cache .pytest_cache
