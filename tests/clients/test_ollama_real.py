"""The official `ollama` Python client through Switchyard's Ollama API to a real llama-cpp-python
server (SmolLM2-135M-Instruct, an OpenAI-compatible backend): the Ollama facade is a translation
layer, so an Ollama client reaches any backend.

Run by `crates/switchyard/tests/ollama_api.rs` with SWITCHYARD_REAL_URL (group `smol`, window 2048,
and `smol-embed`, embeddings from the same server).
"""

import os

import pytest

BASE = os.environ.get("SWITCHYARD_REAL_URL")

pytestmark = pytest.mark.skipif(not BASE, reason="SWITCHYARD_REAL_URL not set (run through cargo test)")

import ollama  # noqa: E402


def client():
    return ollama.Client(host=BASE, timeout=120)


def test_list_and_show():
    names = sorted(m.model for m in client().list().models)
    assert names == ["smol-embed:latest", "smol:latest"]
    assert isinstance(client().ps().models, list)
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


WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def test_chat_with_a_tool():
    # Ollama's API has no tool_choice: the model may answer in words or call the tool; either way
    # the answer is Ollama's shape, and a call's arguments are an object.
    r = client().chat(model="smol", tools=[WEATHER], options={"num_predict": 48, "temperature": 0},
                      messages=[{"role": "user", "content": "What is the weather in Paris?"}])
    assert r.done
    assert r.message.content or r.message.tool_calls
    for call in r.message.tool_calls or []:
        assert isinstance(call.function.arguments, dict)
    chunks = list(client().chat(model="smol", tools=[WEATHER], stream=True,
                                options={"num_predict": 24, "temperature": 0},
                                messages=[{"role": "user", "content": "Say hello."},
                                          {"role": "assistant", "content": "",
                                           "tool_calls": [{"function": {"name": "get_weather",
                                                                        "arguments": {"city": "Paris"}}}]},
                                          {"role": "tool", "tool_name": "get_weather", "content": "22C"}]))
    assert chunks[-1].done


def test_embed():
    r = client().embed(model="smol-embed", input=["the sea", "the sky"])
    assert len(r.embeddings) == 2 and len(r.embeddings[0]) > 0
    assert r.prompt_eval_count > 0
    assert client().embeddings(model="smol-embed", prompt="the sea").embedding
