# Two commands for a new machine:  make demo   and   make test   (see README.md).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_ENV := DJANGO_SETTINGS_MODULE=config.settings.local \
	SHOP_API_KEY=$${SHOP_API_KEY:-demo-shop-key} \
	INTEGRATION_API_TOKEN=$${INTEGRATION_API_TOKEN:-demo-integration-token}

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

demo: $(VENV)/.runtime  ## set up and serve the demo on http://127.0.0.1:8000 (SQLite, no servers)
	$(DEMO_ENV) $(BIN)/python manage.py migrate --noinput
	$(DEMO_ENV) $(BIN)/python manage.py import_catalog shop/catalogs/demo.json --no-progress
	$(DEMO_ENV) $(BIN)/python manage.py demo_admin
	@echo ""
	@echo "Demo on http://127.0.0.1:8000 -- admin at /admin/ (admin / admin), API docs at /api/docs"
	@echo "Shop API key: demo-shop-key   Integration API token: demo-integration-token"
	@echo ""
	$(DEMO_ENV) $(BIN)/python manage.py runserver 127.0.0.1:8000

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
