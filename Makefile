# netspaces — every target sets itself up: `make install` runs when the environment is missing.
SHELL := /bin/bash
PY := .venv/bin/python
export PYTHONPATH := $(CURDIR)/src
export WANDB_MODE ?= offline
RUN := $(PY)
ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install train test test-slow lint clean

help:  ## list the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

install:  ## create/link .venv from the shared cache (pinned requirements), install netspaces
	@scripts/install.sh

$(PY): requirements.txt requirements.lock
	@scripts/install.sh

train: install  ## train the default model on the embedded digits data (ARGS="key=value ...")
	$(RUN) train.py $(ARGS)

test: install  ## run the fast test suite (no `slow` tests)
	$(RUN) -m pytest -q -m "not slow" $(ARGS)

test-slow: install  ## run only the slow tests
	$(RUN) -m pytest -q -m slow $(ARGS)

clean:  ## remove outputs/ and caches (keeps the shared environment)
	rm -rf outputs multirun .pytest_cache
