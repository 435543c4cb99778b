"""LiteLLM used as a client of Switchyard (`openai/<group>` with `api_base`), unchanged.

Run by the Rust test `crates/switchyard/tests/clients.rs` (simulator + gateway on ephemeral ports,
base URL in SWITCHYARD_URL). LiteLLM maps errors by their text, so the overflow test checks that
Switchyard's 400 reads as OpenAI's and becomes `ContextWindowExceededError`, the error LiteLLM's
context-window fallbacks act on.
"""

import os

import pytest

from probe import route_missing

# LiteLLM fetches its model cost map from GitHub at import unless told not to (CI has no internet).
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import litellm  # noqa: E402

BASE = os.environ.get("SWITCHYARD_URL")

pytestmark = pytest.mark.skipif(not BASE, reason="SWITCHYARD_URL not set (run through cargo test)")

KW = {"api_base": f"{BASE}/v1", "api_key": "not-needed", "num_retries": 0, "timeout": 30}


def test_completion():
    r = litellm.completion(model="openai/local-small", messages=[{"role": "user", "content": "hi [[tokens=4]]"}],
                           **KW)
    assert len(r.choices[0].message.content.split()) == 4
    assert r.choices[0].finish_reason == "stop"
    assert r.usage.completion_tokens == 4
    assert r.usage.total_tokens == r.usage.prompt_tokens + 4


def test_streaming_completion():
    stream = litellm.completion(model="openai/local-small", stream=True,
                                messages=[{"role": "user", "content": "stream [[tokens=6]]"}], **KW)
    text, finishes = [], []
    for chunk in stream:
        for choice in chunk.choices:
            if choice.delta.content:
                text.append(choice.delta.content)
            if choice.finish_reason:
                finishes.append(choice.finish_reason)
    assert len("".join(text).split()) == 6
    assert finishes == ["stop"]


def test_tool_call():
    tools = [{"type": "function", "function": {
        "name": "get_weather", "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]
    r = litellm.completion(model="openai/local-small", tools=tools,
                           tool_choice={"type": "function", "function": {"name": "get_weather"}},
                           messages=[{"role": "user", "content": "weather? [[tool]]"}], **KW)
    call = r.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert r.choices[0].finish_reason == "tool_calls"


def test_responses():
    r = litellm.responses(model="openai/local-small", input="hi [[tokens=3]]", **KW)
    assert len(r.output[0].content[0].text.split()) == 3
    assert r.usage.output_tokens == 3
    events = list(litellm.responses(model="openai/local-small", input="hi [[tokens=3]]", stream=True, **KW))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert len(text.split()) == 3
    assert events[-1].type == "response.completed"


def test_context_window_exceeded_error():
    # Larger than every window of the chain (the largest is 32,768): fits nowhere.
    with pytest.raises(litellm.ContextWindowExceededError) as e:
        litellm.completion(model="openai/local-small",
                           messages=[{"role": "user", "content": "the cat " * 20000}], **KW)
    assert e.value.status_code == 400


EMBED_MISSING = route_missing(BASE, "/v1/embeddings", {"model": "embed", "input": "probe"})
COMPLETIONS_MISSING = route_missing(BASE, "/v1/completions", {"model": "local-small", "prompt": "probe"})


@pytest.mark.skipif(bool(EMBED_MISSING), reason=f"embeddings not served yet: {EMBED_MISSING}")
def test_embedding():
    r = litellm.embedding(model="openai/embed", input=["the first text", "a second one"], **KW)
    vectors = [d["embedding"] for d in r.data]
    assert len(vectors) == 2 and len(vectors[0]) > 0 and len(vectors[0]) == len(vectors[1])
    assert r.usage.prompt_tokens > 0


@pytest.mark.skipif(bool(COMPLETIONS_MISSING), reason=f"legacy completions not served yet: {COMPLETIONS_MISSING}")
def test_text_completion():
    # `text-completion-openai/` sends POST /v1/completions (`openai/` would turn it into a chat call).
    r = litellm.text_completion(model="text-completion-openai/local-small", prompt="Once upon a time [[tokens=5]]",
                                **KW)
    assert len(r.choices[0].text.split()) == 5
    assert r.usage.completion_tokens == 5
