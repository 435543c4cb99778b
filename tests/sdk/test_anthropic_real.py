"""The official `anthropic` SDK through Switchyard to a real llama-cpp-python server (SmolLM2, the
deployment configured with its tokenizer), for what the simulator cannot show: count_tokens equal
to the real model's own prompt count, and the real server's answers in Anthropic's shapes.

Run by `crates/switchyard/tests/anthropic_api.rs` with SWITCHYARD_REAL_URL (the gateway, group
`smol`) and SWITCHYARD_REAL_BACKEND (the llama-cpp-python server itself, asked directly for its own
count).
"""

import json
import os
import urllib.request

import pytest

BASE = os.environ.get("SWITCHYARD_REAL_URL")
BACKEND = os.environ.get("SWITCHYARD_REAL_BACKEND")

pytestmark = pytest.mark.skipif(not (BASE and BACKEND),
                                reason="SWITCHYARD_REAL_URL / SWITCHYARD_REAL_BACKEND not set (run through cargo test)")

import anthropic  # noqa: E402


@pytest.fixture()
def client():
    return anthropic.Anthropic(base_url=BASE, api_key="not-needed", max_retries=0, timeout=120)


def backend_prompt_tokens(messages):
    """The real server's own prompt count for OpenAI-style `messages` (asked directly)."""
    body = json.dumps({"model": "smol", "messages": messages, "max_tokens": 1, "temperature": 0}).encode()
    req = urllib.request.Request(f"{BACKEND}/v1/chat/completions", data=body,
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.load(r)["usage"]["prompt_tokens"]


def test_create_streamed_and_not(client):
    r = client.messages.create(model="smol", max_tokens=16, extra_body={"temperature": 0},
                               messages=[{"role": "user", "content": "Say hi"}])
    assert r.content[0].type == "text" and r.content[0].text
    assert r.stop_reason in ("end_turn", "max_tokens")
    assert r.usage.input_tokens > 0 and 0 < r.usage.output_tokens <= 16
    with client.messages.stream(model="smol", max_tokens=16, extra_body={"temperature": 0},
                                messages=[{"role": "user", "content": "Say hi"}]) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    assert text and final.content[0].text == text
    assert final.usage.input_tokens == r.usage.input_tokens
    assert final.stop_reason in ("end_turn", "max_tokens")


CASES = [
    (None, [{"role": "user", "content": "Hello!"}]),
    ("You are a helpful assistant who answers briefly.",
     [{"role": "user", "content": "Write a haiku about routers and the packets they forward."}]),
    ("Be terse.", [
        {"role": "user", "content": "What is the capital of France?"},
        {"role": "assistant", "content": "Paris."},
        {"role": "user", "content": [{"type": "text", "text": "And of Italy?"}]},
    ]),
]


@pytest.mark.parametrize("system,messages", CASES)
def test_count_tokens_equals_the_real_models_count(client, system, messages):
    kw = {"system": system} if system else {}
    counted = client.messages.count_tokens(model="smol", messages=messages, **kw).input_tokens
    # What the real server reports for the same request sent through Switchyard...
    r = client.messages.create(model="smol", max_tokens=1, extra_body={"temperature": 0}, messages=messages, **kw)
    assert counted == r.usage.input_tokens
    # ...and when asked directly, in its own API.
    openai_messages = ([{"role": "system", "content": system}] if system else []) + [
        {"role": m["role"], "content": m["content"] if isinstance(m["content"], str)
         else "".join(b["text"] for b in m["content"])} for m in messages]
    assert counted == backend_prompt_tokens(openai_messages)


WEATHER = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def test_tool_use_round_trip(client):
    r = client.messages.create(model="smol", max_tokens=40, tools=[WEATHER],
                               tool_choice={"type": "tool", "name": "get_weather"},
                               messages=[{"role": "user", "content": "Weather in Paris?"}])
    call = next(b for b in r.content if b.type == "tool_use")
    assert call.name == "get_weather" and isinstance(call.input, dict)
    assert r.stop_reason in ("tool_use", "max_tokens")
    r2 = client.messages.create(
        model="smol", max_tokens=16, tools=[WEATHER],
        messages=[
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": r.content},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "22C and sunny"}]},
        ])
    assert r2.stop_reason in ("end_turn", "max_tokens", "tool_use")
