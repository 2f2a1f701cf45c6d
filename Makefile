# The README's two commands: `make run` and `make test`. Each does all its own set-up.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export FLASK_APP := app:create_app
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: run test install install-dev browser setup demo worker beat bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements-dev.txt $(VENV)/.installed
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

# Debian packages the tests use: Chromium and ChromeDriver for the browser tests,
# poppler-utils to read generated PDFs back (installed only when missing).
browser:
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null || ! command -v pdftotext >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver poppler-utils fonts-dejavu-core >/dev/null; \
	fi

setup: install
	$(BIN)/flask setup

demo: setup
	$(BIN)/flask demo seed --if-empty

run: demo
	@echo ""
	@echo "  Tallyhost is running on http://$(HOST):$(PORT)/"
	@echo "  Staff admin:   username 'admin'  password 'admin123'"
	@echo "  Client portal: http://$(HOST):$(PORT)/portal/  (demo@example.com / demo123)"
	@echo ""
	$(BIN)/flask run --host $(HOST) --port $(PORT)

# Two workers (one per core); each gets its own database (see tests/conftest.py).
PYTEST_ARGS ?= -n 2 --dist loadfile
test: install-dev browser
	$(BIN)/pytest -q -p no:cacheprovider $(PYTEST_ARGS)

worker: install
	$(BIN)/celery -A celery_app:celery worker --loglevel INFO

beat: install
	$(BIN)/celery -A celery_app:celery beat --loglevel INFO

bench: install-dev
	$(BIN)/python bench/billing_run.py

clean:
	rm -rf $(VENV) instance/*.db
