//! Property tests of the chat request decoder: whatever bytes or JSON arrive — random, deeply
//! nested, near-valid with one field replaced by anything — decoding never panics, and every
//! refusal is a 4xx in OpenAI's error shape. Bounded (a few hundred cases each) so CI runs it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use serde_json::{Value, json};
use switchyard_gateway::openai::request::ChatCompletionRequest;
use switchyard_gateway::{ApiError, parse_json_body};

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        Just(json!(u64::MAX)),
        Just(json!(-1)),
        ".{0,12}".prop_map(Value::String),
        Just(json!("\u{0}\u{202e}\u{1F600}")),
    ];
    leaf.prop_recursive(6, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("role".to_string()),
                    Just("content".to_string()),
                    Just("type".to_string()),
                    Just("text".to_string()),
                    "[a-z_]{1,10}"
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

const FIELDS: &[&str] = &[
    "model",
    "messages",
    "stream",
    "stream_options",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "n",
    "stop",
    "seed",
    "tools",
    "tool_choice",
    "response_format",
    "presence_penalty",
    "frequency_penalty",
    "user",
    "logit_bias",
];

fn valid() -> Value {
    json!({
        "model": "local-small",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "hi"}]},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "ok"}
        ],
        "max_tokens": 16,
        "temperature": 0.5,
        "stream": true,
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    })
}

/// Decodes like the chat route does; any refusal must be a well-formed client error.
fn decode(bytes: &[u8]) {
    let result = parse_json_body::<ChatCompletionRequest>(bytes)
        .and_then(|r| r.into_router_request("req".into()).map(|_| ()));
    if let Err(e) = result {
        check_error(&e);
    }
}

fn check_error(e: &ApiError) {
    assert!(e.status.is_client_error(), "status {} for {e}", e.status);
    let body = e.body();
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(body["error"]["type"].as_str().is_some(), "{body}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        decode(&bytes);
    }

    #[test]
    fn random_json_never_panics(v in json_value()) {
        decode(v.to_string().as_bytes());
    }

    #[test]
    fn a_valid_request_with_one_field_replaced_never_panics(
        field in prop::sample::select(FIELDS),
        v in json_value(),
    ) {
        let mut req = valid();
        req[field] = v;
        decode(req.to_string().as_bytes());
    }

    #[test]
    fn a_valid_request_with_one_message_replaced_never_panics(
        index in 0usize..4,
        v in json_value(),
    ) {
        let mut req = valid();
        req["messages"][index] = v;
        decode(req.to_string().as_bytes());
    }

    #[test]
    fn truncated_valid_requests_never_panic(cut in 0usize..400) {
        let text = valid().to_string();
        let cut = cut.min(text.len());
        decode(&text.as_bytes()[..cut]);
    }
}

#[test]
fn deep_nesting_is_refused_not_overflowed() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    decode(deep.as_bytes());
    let deep = format!(
        "{{\"model\":\"m\",\"messages\":[{{\"role\":\"user\",\"content\":{}1{}}}]}}",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    decode(deep.as_bytes());
}
