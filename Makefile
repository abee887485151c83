# The two commands a newcomer needs: `make run` and `make test`.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
PORT ?= 8000
QUEUES := orders,inventory,payments,shipping

.PHONY: run test lint typecheck pytest clean

$(INSTALLED): requirements.txt
	@test -x $(PY) || { echo "Creating $(VENV)"; python3 -m venv $(VENV); }
	@echo "Installing requirements into $(VENV)"
	@$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@touch $(INSTALLED)

run: $(INSTALLED)
	@mkdir -p var
	@echo "Migrating the database"
	@$(PY) manage.py migrate --noinput
	@echo "Seeding the demo catalog and customer (only into an empty database)"
	@$(PY) manage.py seed_demo
	@$(PY) manage.py collectstatic --noinput --verbosity 0
	@echo "Starting web (http://127.0.0.1:$(PORT)), worker and beat; Ctrl-C stops them all"
	@WEB_PORT=$(PORT) QUEUES=$(QUEUES) exec $(VENV)/bin/honcho -f Procfile start

lint: $(INSTALLED)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(INSTALLED)
	$(VENV)/bin/mypy .

pytest: $(INSTALLED)
	$(VENV)/bin/pytest

test: lint typecheck pytest

clean:
	rm -rf var
