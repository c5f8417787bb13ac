# Centaurus Lab. The two commands a fresh machine needs: `make conformance` and `make test`.
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
CENT  := $(VENV)/bin/centaurus
REPORT_DIR ?= reports/out
PROFILE ?= smoke
TARGET ?= builtin
LAB ?= netns
SPEC ?= labs/default.yaml
PYTEST_ARGS ?=

.PHONY: bootstrap conformance test lint unit integration conformance-ratchet perf perf-api perf-density lab-up lab-down clean help

help:
	@echo "make conformance   bring up the netns lab with the builtin implementation, run the suite, write $(REPORT_DIR)/"
	@echo "make test          lint, unit and integration tests, conformance ratchet (what CI runs)"
	@echo "make perf          short version of every performance campaign"
	@echo "make lab-up / lab-down   the default lab without running tests"

bootstrap:
	@ci/bootstrap

## The main job: the whole suite against the builtin implementation in the embedded netns lab.
conformance: bootstrap
	$(CENT) conformance run --target $(TARGET) --lab $(LAB) --lab-spec $(SPEC) \
	  --profile $(PROFILE) --report-dir $(REPORT_DIR) $(PYTEST_ARGS); \
	  rc=$$?; $(CENT) report --dir $(REPORT_DIR) --mode summary || true; exit $$rc

## All tests: lint, the project's own tests, then the conformance suite held to the ratchet.
test: bootstrap lint unit conformance-ratchet

lint: bootstrap
	$(VENV)/bin/ruff check centaurus conformance tests perf
	$(VENV)/bin/mypy --strict centaurus

unit: bootstrap
	$(PY) -m pytest tests -p no:cacheprovider -q $(PYTEST_ARGS)

conformance-ratchet: bootstrap
	$(CENT) conformance run --target $(TARGET) --lab $(LAB) --lab-spec $(SPEC) \
	  --profile smoke --report-dir $(REPORT_DIR) --ratchet conformance/ratchet.yaml -q

perf: bootstrap
	$(CENT) perf run --all --short --report-dir $(REPORT_DIR)

## API latency per (resource, verb) at a fixed offered rate with 100k pods stored, raw store p99
## measured in the same run; PerfData to $(REPORT_DIR)/perf-api.json (PERF_API_ARGS: --pods --rate ...).
PERF_API_ARGS ?=
perf-api: bootstrap
	$(PY) perf/api_bench.py --report-dir $(REPORT_DIR) $(PERF_API_ARGS)

## Density: hollow nodes + pods at a fixed rate, scheduler throughput, per-host/per-pod costs and the
## SCALE-* projection (full: 10k hollow nodes, 100k pods; PERF_DENSITY_ARGS=--short for the short run).
PERF_DENSITY_ARGS ?=
perf-density: bootstrap
	$(CENT) perf run density --report-dir $(REPORT_DIR) $(PERF_DENSITY_ARGS)

lab-up: bootstrap
	$(CENT) lab up --spec $(SPEC)

lab-down: bootstrap
	$(CENT) lab down

clean:
	-$(CENT) lab down
	rm -rf $(REPORT_DIR) build xdp/build
