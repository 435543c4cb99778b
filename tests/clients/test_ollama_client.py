"""The official `ollama` Python client and LangChain's ChatOllama against a running Switchyard,
pointed at it as at an Ollama server (`OLLAMA_HOST`), unchanged.

Run by the Rust test `crates/switchyard/tests/ollama_api.rs`, which starts the Ollama simulator and
the gateway (serve mode, the seed configuration plus an `embed` group) on ephemeral ports and passes
SWITCHYARD_URL and the simulator's SWITCHYARD_SIM_URL (to arm faults and read what it was sent). The
simulator answers `[[tokens=N]]` with N words and `[[tool]]` (with tools sent) with a call of the
first tool, `{"city": "Tokyo"}`.
"""

import os

import httpx
import pytest

BASE = os.environ.get("SWITCHYARD_URL")
SIM = os.environ.get("SWITCHYARD_SIM_URL")

pytestmark = pytest.mark.skipif(not BASE, reason="SWITCHYARD_URL not set (run through cargo test)")

import ollama  # noqa: E402
from langchain_core.messages import HumanMessage, ToolMessage  # noqa: E402
from langchain_ollama import ChatOllama  # noqa: E402

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def get_weather(city: str) -> str:
    """Weather for a city"""
    return "22C"


def client():
    return ollama.Client(host=BASE, timeout=30)


def fault(fault, times=1, model="llama3.2:1b"):
    httpx.post(f"{SIM}/_sim/faults", json={"model": model, "fault": fault, "times": times}).raise_for_status()


def sim_requests(path="/api/chat"):
    return [r for r in httpx.get(f"{SIM}/_sim/requests").json() if r["path"] == path]


@pytest.fixture(autouse=True)
def no_faults():
    yield
    httpx.delete(f"{SIM}/_sim/faults")


def test_list_shows_groups_as_models():
    models = {m.model: m for m in client().list().models}
    assert "local-small:latest" in models, models
    small = models["local-small:latest"]
    assert small.details.family == "llama"
    assert small.details.parameter_size == "1B"
    assert small.modified_at is not None
    assert len(small.digest) == 64


def test_show_has_the_largest_window_and_capabilities():
    shown = client().show("local-large")
    assert shown.modelinfo["general.architecture"] == "llama"
    assert shown.modelinfo["llama.context_length"] == 32768
    assert "completion" in shown.capabilities and "tools" in shown.capabilities
    assert shown.template
    assert client().show("embed:latest").capabilities == ["embedding"]
    with pytest.raises(ollama.ResponseError) as e:
        client().show("nope")
    assert e.value.status_code == 404
    assert "nope" in e.value.error


def test_ps_and_version():
    assert isinstance(client().ps().models, list)
    v = httpx.get(f"{BASE}/api/version").json()["version"]
    assert v.count(".") == 2


def test_chat_not_streamed():
    r = client().chat(model="local-small", messages=[{"role": "user", "content": "Hi [[tokens=5]]"}])
    assert r.done is True
    assert r.done_reason == "stop"
    assert len(r.message.content.split()) == 5
    assert r.prompt_eval_count > 0 and r.eval_count == 5
    assert r.total_duration > 0
    r = client().chat(model="local-small", messages=[{"role": "user", "content": "Hi [[tokens=3]]"}],
                      logprobs=True, top_logprobs=2)
    assert [lp.token for lp in r.logprobs] and len(r.logprobs) == 3
    assert len(r.logprobs[0].top_logprobs) == 2


def test_chat_streamed():
    chunks = list(client().chat(model="local-small:latest", stream=True,
                                messages=[{"role": "user", "content": "Hi [[tokens=12]]"}]))
    assert len(chunks) > 2
    assert all(not c.done for c in chunks[:-1])
    assert chunks[-1].done and chunks[-1].eval_count == 12
    text = "".join(c.message.content for c in chunks)
    assert len(text.split()) == 12


def test_chat_with_a_tool_round_trip():
    c = client()
    messages = [{"role": "user", "content": "Weather in Tokyo? [[tool]]"}]
    r = c.chat(model="local-small", messages=messages, tools=[WEATHER])
    calls = r.message.tool_calls
    assert calls and calls[0].function.name == "get_weather"
    assert calls[0].function.arguments == {"city": "Tokyo"}
    # Python functions as tools, the call answered, streamed.
    messages += [r.message, {"role": "tool", "tool_name": "get_weather", "content": "22C"},
                 {"role": "user", "content": "Thanks [[tokens=3]]"}]
    chunks = list(c.chat(model="local-small", messages=messages, tools=[get_weather], stream=True))
    assert chunks[-1].done
    assert "".join(ch.message.content for ch in chunks)
    sent = sim_requests()[-1]["body"]
    assert sent["messages"][-2]["role"] == "tool"
    assert sent["messages"][1]["tool_calls"][0]["function"]["arguments"] == {"city": "Tokyo"}


def test_generate_streamed_and_not():
    c = client()
    r = c.generate(model="local-small", prompt="Say [[tokens=4]]", system="Be brief.",
                   options={"temperature": 0.1})
    assert r.done and len(r.response.split()) == 4
    parts = list(c.generate(model="local-small", prompt="Say [[tokens=6]]", stream=True))
    assert parts[-1].done
    assert len("".join(p.response for p in parts).split()) == 6


def test_embed_and_legacy_embeddings():
    c = client()
    r = c.embed(model="embed", input=["one", "two"])
    assert len(r.embeddings) == 2 and len(r.embeddings[0]) > 0
    assert r.prompt_eval_count > 0
    legacy = c.embeddings(model="embed", prompt="one")
    assert len(legacy.embedding) == len(r.embeddings[0])


def test_a_fallback_through_streamed_chat():
    fault({"kind": "status", "code": 500, "message": "boom"})
    chunks = list(client().chat(model="local-small", stream=True,
                                messages=[{"role": "user", "content": "Story [[tokens=10]]"}]))
    assert chunks[-1].done
    assert len("".join(c.message.content for c in chunks).split()) == 10
    models = [r["model"] for r in sim_requests()[-2:]]
    assert models == ["llama3.2:1b", "llama3.1:8b"], models


def test_a_mid_stream_continuation_through_streamed_chat():
    fault({"kind": "cut_after", "chunks": 5})
    chunks = list(client().chat(model="local-small", stream=True,
                                messages=[{"role": "user", "content": "Story [[tokens=30]]"}]))
    assert chunks[-1].done and chunks[-1].done_reason == "stop"
    text = "".join(c.message.content for c in chunks)
    assert len(text.split()) == 30, text
    # The second request continued the first answer (a trailing assistant message).
    last = sim_requests()[-1]["body"]["messages"]
    assert last[-1]["role"] == "assistant" and last[-1]["content"]


def test_num_ctx_routes_to_a_larger_window_without_a_failed_attempt():
    before = len(sim_requests())
    r = client().chat(model="local-small", options={"num_ctx": 4096},
                      messages=[{"role": "user", "content": "Hi [[tokens=3]]"}])
    assert r.done
    sent = sim_requests()[before:]
    assert len(sent) == 1, sent
    assert sent[0]["model"] == "llama3.1:8b"
    assert sent[0]["num_ctx"] == 8192


def test_errors_are_ollama_response_errors():
    with pytest.raises(ollama.ResponseError) as e:
        client().chat(model="nope", messages=[{"role": "user", "content": "hi"}])
    assert e.value.status_code == 404
    with pytest.raises(ollama.ResponseError) as e:
        client().pull("llama3.2")
    assert e.value.status_code == 501
    assert "configuration" in e.value.error


def test_langchain_invoke_and_stream():
    llm = ChatOllama(model="local-small", base_url=BASE, validate_model_on_init=True)
    msg = llm.invoke("Hi [[tokens=7]]")
    assert len(msg.content.split()) == 7
    assert msg.usage_metadata["output_tokens"] == 7
    chunks = list(llm.stream("Hi [[tokens=9]]"))
    assert len("".join(c.content for c in chunks).split()) == 9


def test_langchain_bind_tools():
    llm = ChatOllama(model="local-small", base_url=BASE).bind_tools([get_weather])
    q = HumanMessage("Weather in Tokyo? [[tool]]")
    msg = llm.invoke([q])
    assert msg.tool_calls[0]["name"] == "get_weather"
    assert msg.tool_calls[0]["args"] == {"city": "Tokyo"}
    answer = llm.invoke([q, msg, ToolMessage("22C", tool_call_id=msg.tool_calls[0]["id"]),
                         HumanMessage("Thanks [[tokens=3]]")])
    assert len(answer.content.split()) == 3
    assert sim_requests()[-1]["body"]["messages"][2]["role"] == "tool"
