"""The official `anthropic` Python SDK against a running Switchyard (Anthropic's Messages API).

Run by the Rust test `crates/switchyard/tests/anthropic_api.rs`, which starts the simulator and the
gateway (seed configuration: groups local-small, local-medium, local-large) on ephemeral ports and
passes the gateway's URL in SWITCHYARD_URL. The simulator answers `[[tokens=N]]` with N words and
`[[tool]]` (with tools sent) with a call of the first tool.
"""

import os

import pytest

BASE = os.environ.get("SWITCHYARD_URL")

pytestmark = pytest.mark.skipif(not BASE, reason="SWITCHYARD_URL not set (run through cargo test)")

import anthropic  # noqa: E402

WEATHER = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


@pytest.fixture()
def client():
    return anthropic.Anthropic(base_url=BASE, api_key="not-needed", max_retries=0, timeout=30)


def user(text):
    return [{"role": "user", "content": text}]


def test_create(client):
    r = client.messages.create(model="local-small", max_tokens=100, messages=user("hello [[tokens=9]]"))
    assert r.type == "message" and r.role == "assistant" and r.id.startswith("msg_")
    assert r.model == "local-small"
    assert r.content[0].type == "text" and len(r.content[0].text.split()) == 9
    assert r.stop_reason == "end_turn" and r.stop_sequence is None
    assert r.usage.input_tokens > 0 and r.usage.output_tokens == 9


def test_stream_helper(client):
    whole = client.messages.create(model="local-small", max_tokens=100, messages=user("stream [[tokens=12]]"))
    with client.messages.stream(model="local-small", max_tokens=100, messages=user("stream [[tokens=12]]")) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    assert text == whole.content[0].text
    assert final.content[0].text == text
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 12
    assert final.usage.input_tokens == whole.usage.input_tokens


def test_create_stream_true(client):
    events = list(client.messages.create(model="local-small", max_tokens=100, messages=user("hi [[tokens=5]]"),
                                         stream=True))
    types = [e.type for e in events]
    assert types[0] == "message_start" and types[-2:] == ["message_delta", "message_stop"]
    assert types.count("content_block_start") == 1 and types.count("content_block_stop") == 1
    text = "".join(e.delta.text for e in events if e.type == "content_block_delta")
    assert len(text.split()) == 5
    delta = events[-2]
    assert delta.delta.stop_reason == "end_turn" and delta.usage.output_tokens == 5


def test_tool_use_round_trip(client):
    r = client.messages.create(model="local-small", max_tokens=100, tools=[WEATHER],
                               messages=user("weather in Paris? [[tool]]"))
    assert r.stop_reason == "tool_use"
    call = next(b for b in r.content if b.type == "tool_use")
    assert call.name == "get_weather" and isinstance(call.input, dict)
    r2 = client.messages.create(
        model="local-small", max_tokens=100, tools=[WEATHER],
        messages=[
            {"role": "user", "content": "weather in Paris?"},
            {"role": "assistant", "content": r.content},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "22C"}]},
        ])
    assert r2.stop_reason == "end_turn" and r2.content[0].text


def test_tool_use_streamed(client):
    with client.messages.stream(model="local-small", max_tokens=100, tools=[WEATHER],
                                tool_choice={"type": "tool", "name": "get_weather"},
                                messages=user("weather in Paris? [[tool]]")) as s:
        final = s.get_final_message()
    call = next(b for b in final.content if b.type == "tool_use")
    assert call.name == "get_weather" and isinstance(call.input, dict)
    assert final.stop_reason == "tool_use"


def test_count_tokens(client):
    n = client.messages.count_tokens(model="local-small", messages=user("How many tokens is this?"))
    assert n.input_tokens > 0
    more = client.messages.count_tokens(model="local-small", messages=user("How many tokens is this?"),
                                        system="Be brief.", tools=[WEATHER])
    assert more.input_tokens > n.input_tokens


def test_overflow_is_invalid_request_error(client):
    for stream in (False, True):
        with pytest.raises(anthropic.BadRequestError) as e:
            client.messages.create(model="local-small", max_tokens=100, messages=user("the cat " * 20000),
                                   stream=stream)
        assert e.value.status_code == 400
        assert e.value.body["type"] == "error"
        assert e.value.body["error"]["type"] == "invalid_request_error"


def test_unknown_model_is_not_found(client):
    with pytest.raises(anthropic.NotFoundError) as e:
        client.messages.create(model="claude-sonnet-4-5", max_tokens=10, messages=user("hi"))
    assert e.value.body["error"]["type"] == "not_found_error"


def test_async_client_stream():
    import asyncio

    async def run():
        c = anthropic.AsyncAnthropic(base_url=BASE, api_key="not-needed", max_retries=0, timeout=30)
        async with c.messages.stream(model="local-small", max_tokens=50, messages=user("hi [[tokens=4]]")) as s:
            return await s.get_final_message()

    final = asyncio.run(run())
    assert len(final.content[0].text.split()) == 4
