"""The official `ollama` Python client through Switchyard's Ollama API to a real llama-cpp-python
server (SmolLM2-135M-Instruct, an OpenAI-compatible backend): the Ollama facade is a translation
layer, so an Ollama client reaches any backend.

Run by `crates/switchyard/tests/ollama_api.rs` with SWITCHYARD_REAL_URL (group `smol`, window 2048).
"""

import os

import pytest

BASE = os.environ.get("SWITCHYARD_REAL_URL")

pytestmark = pytest.mark.skipif(not BASE, reason="SWITCHYARD_REAL_URL not set (run through cargo test)")

import ollama  # noqa: E402


def client():
    return ollama.Client(host=BASE, timeout=120)


def test_list_and_show():
    names = [m.model for m in client().list().models]
    assert names == ["smol:latest"]
    shown = client().show("smol")
    assert shown.modelinfo["llama.context_length"] == 2048
    assert shown.details.format == "gguf"
    assert "completion" in shown.capabilities


def test_chat_not_streamed():
    r = client().chat(model="smol", messages=[{"role": "user", "content": "What is the capital of France?"}],
                      options={"num_predict": 24, "temperature": 0})
    assert r.done
    assert r.message.content.strip()
    assert r.prompt_eval_count > 0 and 0 < r.eval_count <= 24


def test_chat_streamed():
    chunks = list(client().chat(model="smol:latest", stream=True,
                                messages=[{"role": "user", "content": "Name three colours."}],
                                options={"num_predict": 24, "temperature": 0}))
    assert len(chunks) > 2
    assert chunks[-1].done and chunks[-1].done_reason in ("stop", "length")
    assert "".join(c.message.content for c in chunks).strip()
    assert chunks[-1].eval_count > 0


def test_generate():
    r = client().generate(model="smol", prompt="Write one short sentence about the sea.",
                          options={"num_predict": 20, "temperature": 0})
    assert r.done and r.response.strip()
    parts = list(client().generate(model="smol", prompt="Once upon a time", raw=True, stream=True,
                                   options={"num_predict": 12, "temperature": 0}))
    assert parts[-1].done
    assert "".join(p.response for p in parts).strip()
