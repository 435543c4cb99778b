//! Streams never restart: when a backend dies after the client has part of the answer, the next
//! candidate continues it, and the client sees one well-formed stream.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use serde_json::{Value, json};
use switchyard_sim::{Fault, FaultRule, SimConfig, SimHandle, SimModel};

/// `small` (llama3.2:1b) falls back to `medium` (llama3.1:8b), both on one simulated Ollama.
fn config(sim: &SimHandle, extra_routing: &str) -> String {
    format!(
        r#"
model_list:
  - model_name: small
    litellm_params: {{model: "ollama/llama3.2:1b", api_base: "{b}", max_tokens: 2048}}
  - model_name: medium
    litellm_params: {{model: "ollama/llama3.1:8b", api_base: "{b}", max_tokens: 8192}}
router_settings: {{fallbacks: [small, medium], num_retries: 0, allowed_fails: 100}}
routing: {{idle_timeout: 0.3 {extra_routing}}}
"#,
        b = sim.base_url()
    )
}

fn request(n_tokens: usize) -> Value {
    json!({
        "model": "small",
        "messages": [{"role": "user", "content": format!("tell me a story [[tokens={n_tokens}]]")}],
        "stream": true,
        "stream_options": {"include_usage": true},
    })
}

struct Parsed {
    text: String,
    ids: Vec<String>,
    finishes: Vec<String>,
    dones: usize,
    errors: Vec<Value>,
    usage: Option<Value>,
    roles: usize,
}

fn parse(body: &str) -> Parsed {
    let mut p = Parsed {
        text: String::new(),
        ids: vec![],
        finishes: vec![],
        dones: 0,
        errors: vec![],
        usage: None,
        roles: 0,
    };
    for payload in common::sse_payloads(body) {
        if payload == "[DONE]" {
            p.dones += 1;
            continue;
        }
        let v: Value = serde_json::from_str(&payload).unwrap();
        if v.get("error").is_some() {
            p.errors.push(v);
            continue;
        }
        p.ids.push(v["id"].as_str().unwrap().to_string());
        if !v["usage"].is_null() {
            p.usage = Some(v["usage"].clone());
        }
        if let Some(c) = v["choices"].get(0) {
            if c["delta"]["role"] == "assistant" {
                p.roles += 1;
            }
            if let Some(t) = c["delta"]["content"].as_str() {
                p.text.push_str(t);
            }
            if let Some(f) = c["finish_reason"].as_str() {
                p.finishes.push(f.to_string());
            }
        }
    }
    p
}

async fn stream(gw: &common::Serve, body: &Value) -> (reqwest::StatusCode, String) {
    let r = common::client()
        .post(gw.url("/v1/chat/completions"))
        .json(body)
        .send()
        .await
        .unwrap();
    (r.status(), r.text().await.unwrap())
}

#[tokio::test]
async fn cut_streams_continue_without_gap_or_duplicate() {
    let sim = common::reference_ollama().await;
    let gw = common::serve(common::config_from(&config(&sim, ""))).await;
    let (status, body) = stream(&gw, &request(12)).await;
    assert_eq!(status, 200);
    let whole = parse(&body);
    assert_eq!(whole.text.split(' ').count(), 12);

    for n in [0usize, 1, 2, 5, 11] {
        // A fresh router each time: three broken streams in a row would (rightly) mark the 1B
        // model down, and this test is about continuing from it.
        let gw = common::serve(common::config_from(&config(&sim, ""))).await;
        sim.add_fault(FaultRule::for_model(
            "llama3.2:1b",
            Fault::CutAfter { chunks: n },
            Some(1),
        ));
        let (status, body) = stream(&gw, &request(12)).await;
        assert_eq!(status, 200, "cut after {n}");
        let p = parse(&body);
        assert_eq!(p.text, whole.text, "cut after {n}: {body}");
        assert!(p.errors.is_empty(), "cut after {n}: {body}");
        assert_eq!(p.finishes, ["stop"], "cut after {n}");
        assert_eq!(p.dones, 1, "cut after {n}");
        assert_eq!(p.roles, 1, "cut after {n}");
        let first = &p.ids[0];
        assert!(p.ids.iter().all(|id| id == first), "one id per stream");
        assert_eq!(
            p.usage.as_ref().unwrap()["completion_tokens"],
            12,
            "usage adds up (cut after {n})"
        );
    }
    // The continuation asked the 8B model to continue the partial answer.
    let last = sim.requests().into_iter().last().unwrap();
    assert_eq!(last.model, "llama3.1:8b");
    let msgs = last.body["messages"].as_array().unwrap();
    assert_eq!(msgs.last().unwrap()["role"], "assistant");
}

#[tokio::test]
async fn stalls_and_error_lines_continue_too() {
    let sim = common::reference_ollama().await;
    let gw = common::serve(common::config_from(&config(&sim, ""))).await;
    let (_, body) = stream(&gw, &request(10)).await;
    let whole = parse(&body).text;

    sim.add_fault(FaultRule::for_model(
        "llama3.2:1b",
        Fault::StallAfter {
            chunks: 4,
            stall: Duration::from_secs(5),
        },
        Some(1),
    ));
    let (status, body) = stream(&gw, &request(10)).await;
    assert_eq!(status, 200);
    let p = parse(&body);
    assert_eq!(p.text, whole, "{body}");
    assert_eq!((p.finishes.len(), p.dones, p.errors.len()), (1, 1, 0));

    sim.add_fault(FaultRule::for_model(
        "llama3.2:1b",
        Fault::ErrorLineAfter { chunks: 3 },
        Some(1),
    ));
    let (status, body) = stream(&gw, &request(10)).await;
    assert_eq!(status, 200);
    let p = parse(&body);
    assert_eq!(p.text, whole, "{body}");
    assert_eq!((p.finishes.len(), p.dones, p.errors.len()), (1, 1, 0));
}

#[tokio::test]
async fn tool_call_streams_end_with_an_error_event_not_a_hang() {
    let sim = common::reference_ollama().await;
    let gw = common::serve(common::config_from(&config(&sim, ""))).await;
    let tools = json!([{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]);
    // JSON mode: never continued.
    sim.add_fault(FaultRule::for_model(
        "llama3.2:1b",
        Fault::CutAfter { chunks: 2 },
        Some(1),
    ));
    let mut body = request(10);
    body["response_format"] = json!({"type": "json_object"});
    let (status, text) = stream(&gw, &body).await;
    assert_eq!(status, 200);
    let p = parse(&text);
    assert_eq!(p.errors.len(), 1, "{text}");
    assert_eq!(p.errors[0]["error"]["code"], "stream_interrupted");
    assert_eq!(p.dones, 1);
    assert!(p.finishes.is_empty());

    // A tool call that breaks: the tool call was streamed, so no continuation.
    sim.add_fault(FaultRule::for_model(
        "llama3.2:1b",
        Fault::CutAfter { chunks: 1 },
        Some(1),
    ));
    let body = json!({
        "model": "small", "stream": true, "tools": tools,
        "messages": [{"role": "user", "content": "weather? [[tool]]"}],
    });
    let (status, text) = tokio::time::timeout(Duration::from_secs(20), stream(&gw, &body))
        .await
        .unwrap();
    assert_eq!(status, 200);
    let p = parse(&text);
    assert_eq!(p.dones, 1, "{text}");
    assert!(
        p.errors.len() == 1 || p.finishes == ["tool_calls"],
        "{text}"
    );
}

/// Both models with 8k windows (the reference windows would not matter to these tests).
async fn both_models_8k() -> SimHandle {
    SimHandle::start(SimConfig::ollama(vec![
        SimModel::new("llama3.2:1b", 8192),
        SimModel::new("llama3.1:8b", 8192),
    ]))
    .await
    .unwrap()
}

/// A gateway that sends an SSE keep-alive comment after 100 ms of silence.
const KEEPALIVE_100MS: &str = "gateway: {sse_keepalive: 0.1}\n";

#[tokio::test]
async fn slow_first_token_gets_keepalives_then_the_answer() {
    let sim = both_models_8k().await;
    let text = config(&sim, ", first_byte_timeout: 10") + KEEPALIVE_100MS;
    let gw = common::serve(common::config_from(&text)).await;
    sim.add_fault(FaultRule::for_model(
        "llama3.2:1b",
        Fault::SlowFirstByte(Duration::from_millis(450)),
        Some(1),
    ));
    let (status, body) = stream(&gw, &request(5)).await;
    assert_eq!(status, 200);
    assert!(body.contains(": keep-alive"), "{body}");
    let p = parse(&body);
    assert_eq!(p.text.split(' ').count(), 5);
    assert_eq!((p.finishes.len(), p.dones, p.roles), (1, 1, 1));
}

#[tokio::test]
async fn silence_between_tokens_gets_keepalives_and_the_answer_goes_on() {
    let sim = both_models_8k().await;
    // An idle timeout well past the stall: the answer must go on from the same backend.
    let text = config(&sim, "").replace("idle_timeout: 0.3", "idle_timeout: 10") + KEEPALIVE_100MS;
    let gw = common::serve(common::config_from(&text)).await;
    sim.add_fault(FaultRule::for_model(
        "llama3.2:1b",
        Fault::StallAfter {
            chunks: 2,
            stall: Duration::from_millis(450),
        },
        Some(1),
    ));
    let (status, body) = stream(&gw, &request(5)).await;
    assert_eq!(status, 200);
    let p = parse(&body);
    assert_eq!(p.text.split(' ').count(), 5, "{body}");
    // The stall comes after the second token: a keep-alive must sit between it and the third.
    let words: Vec<&str> = p.text.split(' ').collect();
    let at = |chunk: String| {
        body.find(&format!("\"content\":\"{chunk}\""))
            .expect(&chunk)
    };
    let (second, third) = (at(format!(" {}", words[1])), at(format!(" {}", words[2])));
    let keepalive = body[second..third].find(": keep-alive");
    assert!(keepalive.is_some(), "{body}");
    assert_eq!((p.finishes.len(), p.dones, p.roles), (1, 1, 1));
    assert_eq!(sim.request_count("llama3.1:8b"), 0);
}

#[tokio::test]
async fn client_disconnect_cancels_the_backend_request() {
    let sim = common::reference_ollama().await;
    let gw = common::serve(common::config_from(&config(&sim, ""))).await;
    // The 1B model stalls after its first chunk; had the client stayed, the 300 ms idle timeout
    // would move the answer to the 8B model.
    sim.add_fault(FaultRule::for_model(
        "llama3.2:1b",
        Fault::StallAfter {
            chunks: 1,
            stall: Duration::from_secs(5),
        },
        Some(1),
    ));
    let mut resp = common::client()
        .post(gw.url("/v1/chat/completions"))
        .json(&request(50))
        .send()
        .await
        .unwrap();
    let first = resp.chunk().await.unwrap();
    assert!(first.is_some());
    drop(resp);
    // Waiting for an absence needs a bound: well past the idle timeout that would have fired.
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(sim.request_count("llama3.2:1b"), 1);
    assert_eq!(
        sim.request_count("llama3.1:8b"),
        0,
        "a disconnected client's request was continued elsewhere"
    );
}
