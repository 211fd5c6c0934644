# make run: set everything up and serve the portal, the API, a Celery worker and beat.
# make test: the whole test suite.  make help: this list.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8000
export ENV_FILE ?= var/dev.env

.DEFAULT_GOAL := help
.PHONY: help install run test lint format

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(BIN)/.installed: requirements.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required"' 
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

install: $(BIN)/.installed ## create the virtualenv and install the pinned dependencies

var/dev.env:
	@mkdir -p var
	@umask 077; $(BIN)/python -c 'import secrets; print("DEBUG=true"); print("SECRET_KEY=" + secrets.token_urlsafe(50)); print("KEY_ENCRYPTION_KEY=" + secrets.token_urlsafe(32))' > $@
	@printf '%s\n' '# The local development directory (manage.py dev_token) stands in for Entra ID.' \
		ENTRA_DEV_DIRECTORY=true ENTRA_AUDIENCE=api://token-issuer ENTRA_REQUIRED_SCOPES=access_as_user >> $@
	@echo "Wrote development settings and secrets to $@ (kept out of git)."

run: install var/dev.env ## migrate, create a first key and a local admin, serve on 127.0.0.1:$(PORT) with worker and beat
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py ensure_local_admin
	$(BIN)/python manage.py rotate_keys
	@# Worker and beat in the background, the web server in front; Ctrl-C stops all three.
	@trap 'kill 0' EXIT INT TERM; \
	$(BIN)/celery -A config worker --loglevel=INFO --concurrency=2 & \
	$(BIN)/celery -A config beat --loglevel=INFO & \
	PORT=$(PORT) $(BIN)/python manage.py runserver --noreload 127.0.0.1:$(PORT)

test: install ## run the whole test suite
	$(BIN)/pytest

lint: install ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .
