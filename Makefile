# Muster: the two commands a newcomer needs are `make run` and `make test`.
# Each installs what it needs itself (a virtualenv in .venv, the Kafka jars in .muster/cache).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
MUSTER := $(BIN)/muster
STAMP  := $(VENV)/.installed

.PHONY: run test lint install up down status topics unit integration clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## The main job: local Kafka, PostgreSQL and every service, fed with a simulated borough.
run: $(STAMP)
	$(MUSTER) run all

## The linter (ruff, configured in pyproject.toml), then every test, against the real broker
## and database (started or reused by the fixtures).
test: lint
	sh deploy/scripts/ensure-tools.sh
	$(MUSTER) dev up
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .

unit: $(STAMP)
	$(BIN)/pytest -m unit

up: $(STAMP)
	$(MUSTER) dev up
	$(MUSTER) topics apply

down: $(STAMP)
	$(MUSTER) dev down

status: $(STAMP)
	$(MUSTER) dev status

topics: $(STAMP)
	$(MUSTER) topics apply

clean: down
	rm -rf .muster/kafka .muster/postgres
