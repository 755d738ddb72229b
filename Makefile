# netspaces — every target sets itself up: `make install` runs when the environment is missing.
SHELL := /bin/bash
PY := .venv/bin/python
export PYTHONPATH := $(CURDIR)/src
export WANDB_MODE ?= offline
RUN := $(PY)
ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install train lint format test test-slow clean

help:  ## list the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

install:  ## shared pinned environment in the user cache + this checkout's own .venv layered on it
	@scripts/install.sh

$(PY): requirements.txt requirements.lock
	@scripts/install.sh

train: install  ## train the default model on the embedded digits data (ARGS="key=value ...")
	$(RUN) train.py $(ARGS)

lint: install  ## ruff: lint and format check over src, tests, scripts, benchmarks (`make format` fixes)
	$(PY) -m ruff check src tests scripts benchmarks train.py
	$(PY) -m ruff format --check src tests scripts benchmarks train.py

format: install  ## ruff: fix what can be fixed and format the code
	$(PY) -m ruff check --fix src tests scripts benchmarks train.py
	$(PY) -m ruff format src tests scripts benchmarks train.py

test: install  ## run the fast test suite (no `slow` tests)
	$(RUN) -m pytest -q -m "not slow" --durations=15 $(ARGS)

test-slow: install  ## run only the slow tests
	$(RUN) -m pytest -q -m slow $(ARGS)

clean:  ## remove outputs/ and caches (keeps the shared environment)
	rm -rf outputs multirun .pytest_cache

# ---- paper tables, figures and benchmarks (scripts/, benchmarks/)
# Tables: TIME_BATCH/TIME_REPEATS size the CPU timings; RESULTS=dir adds our runs' errors.
# Figures / reproduce-small: DATA_ROOT (CIFAR-10 ImageFolder or torchvision copy), N, EPOCHS,
# REGIME, PER_CLASS, LAUNCHER=joblib JOBS=2 are read from the environment by the scripts.
.PHONY: table1 table2 table3 table4 figures reproduce-small scale-study chain findings bench bench-quick bench-mechanisms
RESULTS ?=
TIME_BATCH ?= 4
TIME_REPEATS ?= 5
TABLE_ARGS = --batch $(TIME_BATCH) --repeats $(TIME_REPEATS) $(if $(RESULTS),--results $(RESULTS))

table1: install  ## Table 1: design spaces and their sizes -> outputs/paper/table1.{csv,md}
	$(RUN) scripts/paper_tables.py table1

table2: install  ## Table 2: mobile regime, flops/params/acts, CPU times, errors (RESULTS=dir)
	$(RUN) scripts/paper_tables.py table2 $(TABLE_ARGS)

table3: install  ## Table 3: ResNe(X)t vs RegNetX at matched flops (RESULTS=dir)
	$(RUN) scripts/paper_tables.py table3 $(TABLE_ARGS)

table4: install  ## Table 4: EfficientNet B0-B5 vs RegNetY at matched flops (RESULTS=dir)
	$(RUN) scripts/paper_tables.py table4 $(TABLE_ARGS)

figures: install  ## Figs 5-14 small: the chain (make chain) + plots; N/EPOCHS/SPACES/... = ad hoc populations
	$(RUN) scripts/figures.py

reproduce-small: install  ## RegNetX vs AnyNetX_A under protocols/reproduce_small.yaml, a verdict (SEED=100/101/102)
	$(RUN) scripts/reproduce_small.py

scale-study: install  ## the pre-declared scale study (protocols/scale_study.yaml; resumable; ~5 h of 2 cores)
	$(RUN) scripts/scale_study.py $(ARGS)

chain: install  ## the paper's chain A->B->C->D->E->RegNetX->RegNetY (protocols/chain.yaml; after scale-study; ~2 h)
	$(RUN) scripts/chain.py $(ARGS)

findings: install  ## rebuild docs/findings.md's tables and plots from docs/findings/*.csv (no training)
	$(RUN) scripts/findings.py

bench: install  ## all benchmarks vs references -> outputs/bench/results.json and a table
	$(RUN) benchmarks/run.py $(ARGS)

bench-quick: install  ## every benchmark with fewer repeats (a few minutes)
	$(RUN) benchmarks/run.py --quick $(ARGS)

bench-mechanisms: install  ## each perf.* speed switch left out in turn, end to end on real workloads (~1.5 h)
	$(RUN) benchmarks/mechanisms.py $(ARGS)
