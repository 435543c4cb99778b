//! With no `continuation` key, how an OpenAI-compatible deployment continues a broken stream is
//! found out once, the first time it has to: a server with `/health` is asked to continue a
//! trailing assistant message; Ollama's `/v1` layer is known by `/api/version`; an explicit key
//! is used as it is, with nothing asked. (The real llama-cpp-python case is in
//! `e2e_continuation`.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use serde_json::{Value, json};
use switchyard_sim::{Fault, FaultRule, SimConfig, SimHandle, SimModel};

async fn llamacpp(model: &str) -> SimHandle {
    SimHandle::start(SimConfig::llamacpp(SimModel::new(model, 8192)))
        .await
        .unwrap()
}

/// `first` (a llama.cpp simulator) falls back to `second` at `second_base`.
fn config(first: &SimHandle, second_base: &str, second_model: &str, extra: &str) -> String {
    format!(
        r#"
deployments:
  - {{group: first, id: first, provider: openai, model: smol, api_base: "{a}", context_window: 8192}}
  - {{group: second, id: second, provider: openai, model: {second_model}, api_base: "{second_base}", context_window: 8192 {extra}}}
fallbacks: [first, second]
routing: {{num_retries: 0, allowed_fails: 100}}
"#,
        a = first.base_url(),
    )
}

fn request() -> Value {
    json!({
        "model": "first",
        "messages": [{"role": "user", "content": "tell me a story [[tokens=12]]"}],
        "stream": true,
    })
}

/// The streamed text, and whether the stream was well formed (one finish, one `[DONE]`, no
/// error).
async fn stream(gw: &common::Serve) -> (String, bool) {
    let body = common::client()
        .post(gw.url("/v1/chat/completions"))
        .json(&request())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let payloads = common::sse_payloads(&body);
    let finishes = payloads
        .iter()
        .filter_map(|p| serde_json::from_str::<Value>(p).ok())
        .filter(|v| v["choices"][0]["finish_reason"].is_string())
        .count();
    let ok = finishes == 1
        && payloads.iter().filter(|p| *p == "[DONE]").count() == 1
        && !body.contains("\"error\"");
    (common::sse_text(&payloads), ok)
}

fn cut_first(sim: &SimHandle, chunks: usize) {
    sim.add_fault(FaultRule::for_model(
        "smol",
        Fault::CutAfter { chunks },
        Some(1),
    ));
}

/// Whether a recorded request is the continuation probe.
fn is_probe(body: &Value) -> bool {
    body["messages"]
        .as_array()
        .and_then(|m| m.last())
        .is_some_and(|m| m["role"] == "assistant" && m["content"] == "The capital of France is")
}

#[tokio::test]
async fn a_server_with_health_is_asked_once_and_then_continues_a_trailing_message() {
    let (first, second) = tokio::join!(llamacpp("smol"), llamacpp("smol2"));
    let gw = common::serve(common::config_from(&config(
        &first,
        &second.base_url(),
        "smol2",
        "",
    )))
    .await;
    let (whole, ok) = stream(&gw).await;
    assert!(ok);
    for n in [3, 7] {
        cut_first(&first, n);
        let (text, ok) = stream(&gw).await;
        assert!(ok, "cut after {n}");
        assert_eq!(text, whole, "cut after {n}");
    }
    let requests = second.requests();
    let probes: Vec<_> = requests.iter().filter(|r| is_probe(&r.body)).collect();
    assert_eq!(probes.len(), 1, "asked once, then remembered");
    assert_eq!(probes[0].body["max_tokens"], 4);
    assert_eq!(probes[0].body["temperature"], 0);
    let continuations: Vec<_> = requests.iter().filter(|r| !is_probe(&r.body)).collect();
    assert_eq!(continuations.len(), 2);
    for c in continuations {
        assert_eq!(c.path, "/v1/chat/completions");
        let last = c.body["messages"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()
            .clone();
        assert_eq!(last["role"], "assistant");
        let partial = last["content"].as_str().unwrap();
        assert!(
            !partial.is_empty() && whole.starts_with(partial),
            "{partial:?}"
        );
        assert_eq!(
            partial,
            partial.trim_end(),
            "sent without trailing whitespace"
        );
    }
}

#[tokio::test]
async fn ollamas_openai_layer_is_known_by_its_version_route_without_a_probe() {
    let first = llamacpp("smol").await;
    let ollama = SimHandle::start(SimConfig::ollama(vec![SimModel::new("llama3.2:1b", 8192)]))
        .await
        .unwrap();
    let gw = common::serve(common::config_from(&config(
        &first,
        &ollama.base_url(),
        "llama3.2:1b",
        "",
    )))
    .await;
    cut_first(&first, 4);
    let (text, ok) = stream(&gw).await;
    assert!(ok);
    assert!(text.split(' ').count() >= 5, "{text:?}");
    let requests = ollama.requests();
    assert_eq!(requests.len(), 1, "no probe: {requests:?}");
    assert_eq!(requests[0].path, "/v1/chat/completions");
    assert!(!is_probe(&requests[0].body));
    let last = requests[0].body["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["role"], "assistant");
}

#[tokio::test]
async fn an_explicit_key_wins_and_nothing_is_asked() {
    let (first, second) = tokio::join!(llamacpp("smol"), llamacpp("smol2"));
    let gw = common::serve(common::config_from(&config(
        &first,
        &second.base_url(),
        "smol2",
        ", continuation: completions, template: chatml",
    )))
    .await;
    cut_first(&first, 4);
    let (_, ok) = stream(&gw).await;
    assert!(ok);
    let requests = second.requests();
    assert_eq!(requests.len(), 1, "no probe: {requests:?}");
    assert_eq!(requests[0].path, "/v1/completions");
    let prompt = requests[0].body["prompt"].as_str().unwrap();
    assert!(prompt.contains("<|im_start|>assistant\n"), "{prompt:?}");
    assert!(!prompt.ends_with(char::is_whitespace), "{prompt:?}");
    assert_eq!(requests[0].body["stop"], json!(["<|im_end|>"]));
}
