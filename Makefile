# make run: set everything up and serve the portal, the API, a Celery worker and beat.
# make test: the whole test suite.  make help: this list.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8000
export ENV_FILE ?= var/dev.env
# pip-tools lives in its own virtualenv: it compiles the locks and is not part of them.
PIP_TOOLS := var/pip-tools
LOCK_FLAGS := --quiet --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links

.DEFAULT_GOAL := help
.PHONY: help install run test lint format lock mutation cluster

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

# Development installs both locks; production installs requirements.txt alone, the same way.
# The downstream kit (downstream/) is our own source, which --require-hashes cannot hash: it is
# installed editable after the locks, with no dependency of its own (all are in the locks) and the
# locked setuptools as its build backend.
$(BIN)/.installed: requirements.txt requirements-dev.txt downstream/pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements.txt -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation --editable ./downstream
	touch $@

install: $(BIN)/.installed ## create the virtualenv and install the hash-locked dependencies

var/dev.env:
	@mkdir -p var
	@umask 077; $(BIN)/python -c 'import secrets; print("DEBUG=true"); print("SECRET_KEY=" + secrets.token_urlsafe(50)); print("KEY_ENCRYPTION_KEY=" + secrets.token_urlsafe(32))' > $@
	@printf '%s\n' '# The local development directory (manage.py dev_token) stands in for Entra ID.' \
		ENTRA_DEV_DIRECTORY=true ENTRA_AUDIENCE=api://token-issuer ENTRA_REQUIRED_SCOPES=access_as_user >> $@
	@echo "Wrote development settings and secrets to $@ (kept out of git)."

run: install var/dev.env ## migrate, create a first key and a local admin, serve on 127.0.0.1:$(PORT) with worker and beat
	@# config/devserver.py refuses a second run or a busy port, and Ctrl-C stops all three.
	PORT=$(PORT) $(BIN)/python -m config.devserver

test: install ## run the whole test suite
	$(BIN)/pytest

lint: install ## ruff, the layering contracts (import-linter) and the type check (mypy)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	@# The files it checks are listed in pyproject.toml. Its Django plugin loads the settings, which
	@# need DEBUG=true when no production environment is set.
	DEBUG=true $(BIN)/mypy

# Configured in pyproject.toml [tool.mutmut]; about an hour on two busy cores. Results stay in mutants/
# (git-ignored; delete it to start afresh): `mutmut results` lists the survivors, `mutmut show NAME`
# shows one, `mutmut run NAME` retests one.
MUTATION_JOBS ?= 2
mutation: install ## mutation testing of the trust-boundary code (mutmut; slow, CI does not run it)
	$(BIN)/mutmut run --max-children $(MUTATION_JOBS)
	$(BIN)/mutmut results

# Three instances behind HAProxy, a worker, a beat, Redis on port 6390 and the PostgreSQL database
# cluster_bench, all started from deploy/; two to three minutes. CLUSTER_ARGS="--only revoke kill" picks.
cluster: install ## run the production shape on this machine under load and faults (bench/cluster.py)
	$(BIN)/python bench/cluster.py $(CLUSTER_ARGS)

format: install ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

lock: ## recompile requirements*.txt (pinned, hashed) from requirements*.in; LOCK_ARGS="-P pkg" upgrades one
	test -x $(PIP_TOOLS)/bin/pip-compile || { $(PYTHON) -m venv $(PIP_TOOLS) && $(PIP_TOOLS)/bin/python -m pip install --quiet pip-tools==7.6.2; }
	CUSTOM_COMPILE_COMMAND="make lock" $(PIP_TOOLS)/bin/pip-compile $(LOCK_FLAGS) $(LOCK_ARGS) -o requirements.txt requirements.in
	CUSTOM_COMPILE_COMMAND="make lock" $(PIP_TOOLS)/bin/pip-compile $(LOCK_FLAGS) $(LOCK_ARGS) -o requirements-dev.txt requirements-dev.in
