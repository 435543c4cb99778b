"""`client.embeddings.create` of the official OpenAI Python SDK against a running Switchyard.

Run by the Rust driver `crates/switchyard/tests/sdk.rs`, which starts the simulator and the gateway
with an embedding group and passes SWITCHYARD_URL and SWITCHYARD_EMBED_MODEL. The SDK asks for
base64 vectors unless told otherwise and decodes them itself, so the default call checks the
gateway's base64 as much as the explicit one does.
"""

import base64
import math
import os
import struct

import openai
import pytest

BASE = os.environ.get("SWITCHYARD_URL")
MODEL = os.environ.get("SWITCHYARD_EMBED_MODEL", "local-embed")

pytestmark = pytest.mark.skipif(not BASE, reason="SWITCHYARD_URL not set (run through cargo test)")


@pytest.fixture()
def client():
    return openai.OpenAI(base_url=f"{BASE}/v1", api_key="not-needed", max_retries=0, timeout=30)


def norm(v):
    return math.sqrt(sum(x * x for x in v))


def test_embedding_of_a_string(client):
    r = client.embeddings.create(model=MODEL, input="hello world")
    assert r.object == "list"
    assert len(r.data) == 1
    assert r.data[0].object == "embedding" and r.data[0].index == 0
    v = list(r.data[0].embedding)
    assert len(v) > 0 and all(isinstance(x, float) for x in v)
    assert abs(norm(v) - 1.0) < 1e-4
    assert r.usage.prompt_tokens > 0
    assert r.usage.total_tokens == r.usage.prompt_tokens


def test_embeddings_of_a_list_keep_their_order(client):
    texts = ["the first text", "hello world", "a third one"]
    r = client.embeddings.create(model=MODEL, input=texts)
    assert [d.index for d in r.data] == [0, 1, 2]
    single = client.embeddings.create(model=MODEL, input="hello world")
    assert list(r.data[1].embedding) == pytest.approx(list(single.data[0].embedding), abs=1e-6)
    assert list(r.data[0].embedding) != list(r.data[1].embedding)


def test_base64_and_float_agree(client):
    floats = client.embeddings.create(model=MODEL, input="same text", encoding_format="float")
    b64 = client.embeddings.create(model=MODEL, input="same text", encoding_format="base64")
    # Asked for explicitly, base64 comes back as the string the server sent.
    raw = b64.data[0].embedding
    assert isinstance(raw, str)
    data = base64.b64decode(raw)
    decoded = list(struct.unpack(f"<{len(data) // 4}f", data))
    assert decoded == pytest.approx(list(floats.data[0].embedding), abs=0)
    # The SDK's default (base64 requested and decoded by the SDK) gives the same vector.
    default = client.embeddings.create(model=MODEL, input="same text")
    assert list(default.data[0].embedding) == pytest.approx(list(floats.data[0].embedding), abs=0)


def test_embeddings_against_a_chat_model_is_a_clear_400(client):
    with pytest.raises(openai.BadRequestError) as e:
        client.embeddings.create(model="local-small", input="hello")
    assert e.value.body["param"] == "model"
