"""LangChain's ChatOpenAI and OpenAIEmbeddings against a running Switchyard, unchanged.

Run by the Rust test `crates/switchyard/tests/clients.rs`, which starts the simulator and the gateway
on ephemeral ports and passes the base URL in SWITCHYARD_URL. The simulator answers `[[tokens=N]]`
with N words and `[[tool]]` (with tools sent) with a call of the first tool, `{"city": "Tokyo"}`;
in JSON mode its answer is `{"answer": "..."}`.
"""

import importlib.util
import os
import pathlib

import pytest
from pydantic import BaseModel

from probe import route_missing

BASE = os.environ.get("SWITCHYARD_URL")

pytestmark = pytest.mark.skipif(not BASE, reason="SWITCHYARD_URL not set (run through cargo test)")

# OpenAIEmbeddings tokenizes with tiktoken, which downloads its encodings unless they are cached; CI
# has no internet, and LiteLLM ships the cache files.
if "TIKTOKEN_CACHE_DIR" not in os.environ and importlib.util.find_spec("litellm"):
    _litellm = pathlib.Path(importlib.util.find_spec("litellm").origin).parent
    os.environ["TIKTOKEN_CACHE_DIR"] = str(_litellm / "litellm_core_utils" / "tokenizers")

from langchain_core.messages import HumanMessage, ToolMessage  # noqa: E402
from langchain_openai import ChatOpenAI, OpenAIEmbeddings  # noqa: E402


def get_weather(city: str) -> str:
    """Weather for a city"""
    return "22C"


class Weather(BaseModel):
    """The city to get the weather for."""

    city: str


class Answer(BaseModel):
    answer: str


def chat(**kw):
    return ChatOpenAI(model="local-small", base_url=f"{BASE}/v1", api_key="not-needed", max_retries=0,
                      timeout=30, **kw)


def test_invoke():
    r = chat().invoke("hello there [[tokens=5]]")
    assert len(r.content.split()) == 5
    assert r.response_metadata["finish_reason"] == "stop"
    assert r.usage_metadata["output_tokens"] == 5
    assert r.usage_metadata["total_tokens"] == r.usage_metadata["input_tokens"] + 5


def test_stream():
    chunks = list(chat().stream("stream this [[tokens=7]]"))
    text = "".join(c.content for c in chunks)
    assert len(text.split()) == 7
    assert text == chat().invoke("stream this [[tokens=7]]").content


def test_batch_of_four():
    prompts = [f"question {i} [[tokens={i + 2}]]" for i in range(4)]
    answers = chat().batch(prompts)
    assert [len(a.content.split()) for a in answers] == [2, 3, 4, 5]


def test_bind_tools_named_choice():
    llm = chat().bind_tools([get_weather], tool_choice="get_weather")
    ai = llm.invoke("weather in Tokyo? [[tool]]")
    assert [c["name"] for c in ai.tool_calls] == ["get_weather"]
    assert ai.tool_calls[0]["args"] == {"city": "Tokyo"}
    # The tool's answer goes back; the model answers in text.
    msgs = [HumanMessage("weather in Tokyo?"), ai, ToolMessage("22C", tool_call_id=ai.tool_calls[0]["id"])]
    final = chat().bind_tools([get_weather]).invoke(msgs)
    assert final.content and not final.tool_calls


def test_structured_output_function_calling():
    out = chat().with_structured_output(Weather, method="function_calling").invoke("weather? [[tool]]")
    assert out == Weather(city="Tokyo")


def test_structured_output_json_schema():
    out = chat().with_structured_output(Answer, method="json_schema").invoke("answer in JSON [[tokens=3]]")
    assert isinstance(out, Answer) and len(out.answer.split()) == 3


def test_responses_api_invoke():
    r = chat(use_responses_api=True).invoke("hello there [[tokens=5]]")
    assert len(r.text.split()) == 5
    assert r.response_metadata["status"] == "completed"
    assert r.usage_metadata["output_tokens"] == 5


def test_responses_api_stream():
    chunks = list(chat(use_responses_api=True).stream("stream this [[tokens=6]]"))
    full = chunks[0]
    for c in chunks[1:]:
        full = full + c
    assert len(full.text.split()) == 6
    assert full.usage_metadata["output_tokens"] == 6


def test_responses_api_tool_round_trip():
    llm = chat(use_responses_api=True).bind_tools([get_weather], tool_choice="get_weather")
    ai = llm.invoke("weather in Tokyo? [[tool]]")
    assert [c["name"] for c in ai.tool_calls] == ["get_weather"]
    msgs = [HumanMessage("weather in Tokyo?"), ai, ToolMessage("22C", tool_call_id=ai.tool_calls[0]["id"])]
    final = chat(use_responses_api=True).bind_tools([get_weather]).invoke(msgs)
    assert final.text and not final.tool_calls
    # Streamed, the call is put together from the chunks.
    chunks = list(llm.stream("weather in Tokyo? [[tool]]"))
    full = chunks[0]
    for c in chunks[1:]:
        full = full + c
    assert [(c["name"], c["args"]) for c in full.tool_calls] == [("get_weather", {"city": "Tokyo"})]


def test_responses_api_structured_output():
    out = chat(use_responses_api=True).with_structured_output(Answer, method="json_schema").invoke(
        "answer in JSON [[tokens=3]]")
    assert isinstance(out, Answer) and len(out.answer.split()) == 3


EMBED_MISSING = route_missing(BASE, "/v1/embeddings", {"model": "embed", "input": "probe"})


def embeddings(**kw):
    return OpenAIEmbeddings(model="embed", base_url=f"{BASE}/v1", api_key="not-needed", max_retries=0, **kw)


@pytest.mark.skipif(bool(EMBED_MISSING), reason=f"embeddings not served yet: {EMBED_MISSING}")
def test_openai_embeddings_text():
    # check_embedding_ctx_length=False sends the texts as strings (common with local models).
    emb = embeddings(check_embedding_ctx_length=False)
    vectors = emb.embed_documents(["the first text", "a second one"])
    assert len(vectors) == 2 and len(vectors[0]) > 0 and len(vectors[0]) == len(vectors[1])
    assert vectors[0] != vectors[1]
    assert emb.embed_query("the first text") == vectors[0]


@pytest.mark.skipif(bool(EMBED_MISSING), reason=f"embeddings not served yet: {EMBED_MISSING}")
def test_openai_embeddings_default_token_arrays():
    # LangChain's default (and n8n's Embeddings OpenAI node): each text goes as an array of
    # tiktoken cl100k_base token ids, which Switchyard decodes to text for backends that take text
    # only (Ollama), as the LiteLLM proxy does.
    vectors = embeddings().embed_documents(["the first text", "a second one"])
    assert len(vectors) == 2 and len(vectors[0]) > 0
    text = embeddings(check_embedding_ctx_length=False).embed_documents(["the first text"])
    assert vectors[0] == text[0]
