# Switchyard — developer entry points. `make run` and `make test` are the two commands the
# README gives; everything they need is installed from nothing by the targets below.

CARGO  ?= cargo
VENV   := .cache/venv
PYTHON := $(VENV)/bin/python
CONFIG ?= switchyard.yaml

.PHONY: build run demo test lint fmt venv bench e2e clean

build:
	$(CARGO) build --release -p switchyard -p switchyard-sim

## Gateway and router in one process, reading $(CONFIG) (LiteLLM or native format), on :4000.
run:
	$(CARGO) run --release -p switchyard -- serve --config $(CONFIG)

## Python tools for the tests (the official openai SDK, pytest), in an ignored venv.
venv: $(VENV)/.sdk-ready
$(VENV)/.sdk-ready:
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --disable-pip-version-check openai pytest
	touch $@

## Every test: unit, integration (real servers on ephemeral ports, Redis/PostgreSQL on loopback),
## and the OpenAI Python SDK suite.
test: venv
	SWITCHYARD_PYTHON=$(abspath $(PYTHON)) $(CARGO) test --workspace --no-fail-fast

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
	rm -rf .cache
