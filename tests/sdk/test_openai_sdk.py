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


# --- The Responses API (`client.responses`), as n8n's OpenAI node (>= 1.3) and LangChain call it.

WEATHER_TOOL = {
    "type": "function", "name": "get_weather", "description": "Weather for a city", "strict": False,
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}


def test_responses_create(client):
    r = client.responses.create(model="local-small", input="hello there", instructions="be brief",
                                max_output_tokens=50, metadata={"run": "1"})
    assert r.object == "response"
    assert r.status == "completed"
    assert r.error is None
    assert r.output_text
    assert r.output[0].type == "message" and r.output[0].role == "assistant"
    assert r.usage.input_tokens > 0 and r.usage.output_tokens > 0
    assert r.usage.total_tokens == r.usage.input_tokens + r.usage.output_tokens
    assert r.metadata == {"run": "1"}


def test_responses_stream(client):
    events = list(client.responses.create(model="local-small", input="stream this [[tokens=9]]", stream=True))
    types = [e.type for e in events]
    assert types[0] == "response.created" and types[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert len(text.split()) == 9
    final = events[-1].response
    assert final.output_text == text
    assert final.usage.output_tokens == 9


def test_responses_function_tool_round_trip(client):
    r = client.responses.create(model="local-small", input="weather? [[tool]]", tools=[WEATHER_TOOL],
                                tool_choice={"type": "function", "name": "get_weather"})
    calls = [o for o in r.output if o.type == "function_call"]
    assert calls and calls[0].name == "get_weather"
    call = calls[0]
    r2 = client.responses.create(
        model="local-small",
        input=[{"role": "user", "content": "weather?"}, *[o.model_dump(exclude_none=True) for o in r.output],
               {"type": "function_call_output", "call_id": call.call_id, "output": "22C"}],
        tools=[WEATHER_TOOL],
    )
    assert r2.output_text

    # Streamed: the call's name arrives with output_item.added, its arguments as deltas.
    events = list(client.responses.create(model="local-small", input="weather? [[tool]]",
                                          tools=[WEATHER_TOOL], stream=True))
    added = [e for e in events if e.type == "response.output_item.added" and e.item.type == "function_call"]
    assert added and added[0].item.name == "get_weather" and added[0].item.arguments == ""
    args = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
    final = [o for o in events[-1].response.output if o.type == "function_call"][0]
    assert final.arguments == args


def test_responses_errors_are_typed(client):
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="no-such-model", input="hi")
    with pytest.raises(openai.BadRequestError) as e:
        client.responses.create(model="local-small", input="hi", previous_response_id="resp_1")
    assert "previous_response_id" in str(e.value)


def test_n_choices(client):
    r = client.chat.completions.create(
        model="local-small", messages=[{"role": "user", "content": "two please [[tokens=4]]"}], n=2
    )
    assert [c.index for c in r.choices] == [0, 1]
    assert all(c.message.content for c in r.choices)
    assert r.usage.completion_tokens == 8


def test_text_completions(client):
    r = client.completions.create(model="local-small", prompt="Once upon a time [[tokens=5]]", max_tokens=20)
    assert r.object == "text_completion"
    assert len(r.choices[0].text.split()) == 5
    assert r.usage.completion_tokens == 5
    chunks = list(client.completions.create(model="local-small", prompt="Once more [[tokens=4]]", stream=True))
    assert len("".join(c.choices[0].text for c in chunks if c.choices).split()) == 4
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]


def test_logprobs(client):
    r = client.chat.completions.create(
        model="local-small",
        messages=[{"role": "user", "content": "how sure are you [[tokens=3]]"}],
        logprobs=True,
        top_logprobs=2,
    )
    content = r.choices[0].logprobs.content
    assert "".join(t.token for t in content) == r.choices[0].message.content
    assert len(content[0].top_logprobs) == 2
    assert all(t.logprob <= 0 for t in content)
