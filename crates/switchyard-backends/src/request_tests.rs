//! Tests of the request bodies sent to backends for the fields only Ollama's own API carries:
//! `think` and `keep_alive` from the request, and a `num_ctx` that is always the deployment's.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;

use serde_json::{Value, json};
use switchyard_core::config::{Config, load_str};
use switchyard_proto as pb;

use crate::embed::{EmbedCall, ollama_body, openai_body};
use crate::{Attempt, ollama, openai};
use switchyard_core::config::Continuation;

const CONFIG: &str = "
model_list:
  - model_name: small
    litellm_params:
      model: ollama/llama3.2:1b
      api_base: http://127.0.0.1:1
      max_tokens: 2048
      keep_alive: 5m
  - model_name: served
    litellm_params:
      model: openai/qwen
      api_base: http://127.0.0.1:2
      max_tokens: 4096
";

fn config() -> Config {
    load_str("test.yaml", CONFIG, None, &HashMap::<String, String>::new()).unwrap()
}

fn chat(think: Option<&str>, keep_alive: Option<&str>) -> pb::ChatRequest {
    pb::ChatRequest {
        model: "small".into(),
        messages: vec![pb::Message {
            role: "user".into(),
            content: Some("hi".into()),
            ..Default::default()
        }],
        api: "ollama.chat".into(),
        min_context: Some(1024),
        think_json: think.map(str::to_owned),
        keep_alive_json: keep_alive.map(str::to_owned),
        ..Default::default()
    }
}

fn ollama_chat_body(c: &Config, req: &pb::ChatRequest) -> Value {
    let attempt = Attempt {
        deployment: &c.deployments[0],
        request: req,
        extra_assistant_prefix: None,
        max_tokens: None,
        traceparent: None,
    };
    let (_, bytes) = ollama::request(&attempt).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn openai_chat_body(c: &Config, req: &pb::ChatRequest) -> Value {
    let attempt = Attempt {
        deployment: &c.deployments[1],
        request: req,
        extra_assistant_prefix: None,
        max_tokens: None,
        traceparent: None,
    };
    let (_, bytes) = openai::request(&attempt, Continuation::Completions).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[test]
fn ollama_chat_carries_think_and_the_requests_keep_alive() {
    let c = config();
    let body = ollama_chat_body(&c, &chat(Some("true"), Some("\"30m\"")));
    assert_eq!(body["think"], json!(true));
    assert_eq!(body["keep_alive"], json!("30m"));
    // The window sent is the deployment's, whatever the client asked for.
    assert_eq!(body["options"]["num_ctx"], json!(2048));

    let body = ollama_chat_body(&c, &chat(Some("\"high\""), Some("0")));
    assert_eq!(body["think"], json!("high"));
    assert_eq!(body["keep_alive"], json!(0));

    let body = ollama_chat_body(&c, &chat(Some("false"), None));
    assert_eq!(body["think"], json!(false));
    // No keep_alive in the request: the deployment's.
    assert_eq!(body["keep_alive"], json!("5m"));

    let body = ollama_chat_body(&c, &chat(None, None));
    assert!(body.get("think").is_none(), "{body}");
    // A think that is neither a boolean nor a level is not sent.
    let body = ollama_chat_body(&c, &chat(Some("{\"x\":1}"), Some("not json")));
    assert!(body.get("think").is_none(), "{body}");
    assert_eq!(body["keep_alive"], json!("5m"));
}

#[test]
fn ollama_generate_carries_think_and_keep_alive() {
    let c = config();
    let mut req = chat(Some("\"low\""), Some("\"1h\""));
    req.prompt = Some("Once upon".into());
    let body = ollama_chat_body(&c, &req);
    assert_eq!(body["prompt"], json!("Once upon"));
    assert_eq!(body["think"], json!("low"));
    assert_eq!(body["keep_alive"], json!("1h"));
    assert_eq!(body["options"]["num_ctx"], json!(2048));
}

#[test]
fn openai_backends_get_a_level_as_reasoning_effort_and_no_keep_alive() {
    let c = config();
    let body = openai_chat_body(&c, &chat(Some("\"medium\""), Some("\"30m\"")));
    assert_eq!(body["reasoning_effort"], json!("medium"));
    assert!(body.get("keep_alive").is_none(), "{body}");
    assert!(body.get("think").is_none(), "{body}");
    let body = openai_chat_body(&c, &chat(Some("true"), None));
    assert!(body.get("reasoning_effort").is_none(), "{body}");
    // The caller's own reasoning_effort (passed through) wins.
    let mut req = chat(Some("\"low\""), None);
    req.extra_json = r#"{"reasoning_effort":"high"}"#.into();
    assert_eq!(
        openai_chat_body(&c, &req)["reasoning_effort"],
        json!("high")
    );
}

#[test]
fn ollama_embeddings_carry_the_requests_keep_alive() {
    let c = config();
    let inputs = vec![pb::EmbedInput {
        input: Some(pb::embed_input::Input::Text("hello".into())),
    }];
    let call = |d: usize, keep_alive_json: Option<&'static str>| EmbedCall {
        deployment: &c.deployments[d],
        inputs: &inputs,
        dimensions: None,
        user: None,
        traceparent: None,
        keep_alive_json,
    };
    let body: Value =
        serde_json::from_slice(&ollama_body(&call(0, Some("\"10m\""))).unwrap()).unwrap();
    assert_eq!(body["keep_alive"], json!("10m"));
    assert_eq!(body["options"]["num_ctx"], json!(2048));
    let body: Value = serde_json::from_slice(&ollama_body(&call(0, None)).unwrap()).unwrap();
    assert_eq!(body["keep_alive"], json!("5m"));
    let body: Value = serde_json::from_slice(&openai_body(&call(1, Some("\"10m\"")))).unwrap();
    assert!(body.get("keep_alive").is_none(), "{body}");
}
