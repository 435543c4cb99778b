"""The official OpenAI Python SDK against a running Switchyard.

Run by the Rust test `crates/switchyard/tests/sdk.rs`, which starts the simulator and the gateway on
ephemeral ports and passes the base URL in SWITCHYARD_URL.
"""

import os

import openai
import pytest

BASE = os.environ.get("SWITCHYARD_URL")

pytestmark = pytest.mark.skipif(not BASE, reason="SWITCHYARD_URL not set (run through cargo test)")


@pytest.fixture()
def client():
    return openai.OpenAI(base_url=f"{BASE}/v1", api_key="not-needed", max_retries=0, timeout=30)


def test_chat_completion(client):
    r = client.chat.completions.create(
        model="local-small", messages=[{"role": "user", "content": "hello there"}]
    )
    assert r.object == "chat.completion"
    assert r.choices[0].message.role == "assistant"
    assert r.choices[0].message.content
    assert r.choices[0].finish_reason in ("stop", "length")
    assert r.usage.prompt_tokens > 0 and r.usage.completion_tokens > 0
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


def test_streaming_chat(client):
    stream = client.chat.completions.create(
        model="local-small",
        messages=[{"role": "user", "content": "stream this [[tokens=12]]"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text, finishes, ids, usage = [], [], set(), None
    for chunk in stream:
        ids.add(chunk.id)
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            if choice.delta.content:
                text.append(choice.delta.content)
            if choice.finish_reason:
                finishes.append(choice.finish_reason)
    assert len(ids) == 1
    assert len("".join(text).split()) == 12
    assert finishes == ["stop"]
    assert usage is not None and usage.completion_tokens == 12


def test_list_models(client):
    models = [m.id for m in client.models.list()]
    assert models == ["local-small", "local-medium", "local-large"]


def test_typed_errors(client):
    with pytest.raises(openai.NotFoundError) as e:
        client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "hi"}])
    assert e.value.status_code == 404

    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="local-small", messages=[])
    assert e.value.status_code == 400
    assert "messages" in str(e.value)

    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(
            model="local-small", messages=[{"role": "user", "content": "the cat " * 20000}]
        )
    assert e.value.code == "context_length_exceeded"


def test_tool_call_round_trip(client):
    tools = [{
        "type": "function",
        "function": {"name": "get_weather", "description": "Weather for a city",
                     "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}},
    }]
    r = client.chat.completions.create(
        model="local-small", messages=[{"role": "user", "content": "weather? [[tool]]"}], tools=tools
    )
    call = r.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert r.choices[0].finish_reason == "tool_calls"
    r2 = client.chat.completions.create(
        model="local-small",
        messages=[
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
            {"role": "tool", "tool_call_id": call.id, "content": "22C"},
        ],
        tools=tools,
    )
    assert r2.choices[0].message.content


def _stream_text(client, content):
    stream = client.chat.completions.create(
        model="local-small", messages=[{"role": "user", "content": content}], stream=True
    )
    text, finishes = [], []
    for chunk in stream:
        for choice in chunk.choices:
            if choice.delta.content:
                text.append(choice.delta.content)
            if choice.finish_reason:
                finishes.append(choice.finish_reason)
    return "".join(text), finishes


@pytest.mark.skipif(not os.environ.get("SIM_URL"), reason="SIM_URL not set")
def test_stream_continues_after_backend_dies_mid_answer(client):
    import json
    import urllib.request

    whole, _ = _stream_text(client, "a long answer [[tokens=16]]")
    rule = {"model": "llama3.2:1b", "fault": {"kind": "cut_after", "chunks": 5}, "times": 1}
    req = urllib.request.Request(
        os.environ["SIM_URL"] + "/_sim/faults", data=json.dumps(rule).encode(),
        headers={"content-type": "application/json"}, method="POST",
    )
    urllib.request.urlopen(req).read()
    text, finishes = _stream_text(client, "a long answer [[tokens=16]]")
    assert text == whole
    assert finishes == ["stop"]
