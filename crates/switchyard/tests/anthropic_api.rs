//! Anthropic's Messages API on the gateway's port (`/v1/messages`, `/v1/messages/count_tokens`),
//! against a live gateway over the simulator: whole and streamed answers, the event sequence,
//! tools both ways, images, count_tokens, errors in Anthropic's shape, a mid-stream continuation
//! and the usage record's API. Then the official `anthropic` Python SDK over the simulator
//! (tests/sdk/test_anthropic_sdk.py, interpreter from `SWITCHYARD_PYTHON`) and through Switchyard
//! to a real llama-cpp-python SmolLM2 server (tests/sdk/test_anthropic_real.py,
//! `SWITCHYARD_E2E_PYTHON` and `SWITCHYARD_E2E_MODEL`); each says it was skipped without them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use switchyard_router::{RequestRecord, UsageSink};
use switchyard_sim::{Fault, FaultRule};

#[derive(Default)]
struct Collect(Mutex<Vec<RequestRecord>>);

impl UsageSink for Collect {
    fn record(&self, r: RequestRecord) {
        self.0.lock().unwrap().push(r);
    }
}

/// The seed configuration over `sim`, usage records collected.
async fn gateway(sim: &switchyard_sim::SimHandle) -> (common::Serve, Arc<Collect>) {
    let sink = Arc::new(Collect::default());
    let gw = common::serve_with(
        common::config_from(&common::seed_config_text(&sim.base_url())),
        switchyard::ServeOptions {
            usage_sink: Some(sink.clone()),
            embedded_prober: Some(false),
            ..Default::default()
        },
    )
    .await;
    (gw, sink)
}

fn body(content: &str, stream: bool) -> Value {
    json!({
        "model": "local-small",
        "max_tokens": 200,
        "messages": [{"role": "user", "content": content}],
        "stream": stream,
    })
}

async fn post(gw: &common::Serve, path: &str, body: &Value) -> reqwest::Response {
    common::client()
        .post(gw.url(path))
        .header("anthropic-version", "2023-06-01")
        .header("x-api-key", "anything")
        .json(body)
        .send()
        .await
        .unwrap()
}

/// An SSE body as its `(event, data)` pairs.
fn sse_events(text: &str) -> Vec<(String, Value)> {
    text.split("\n\n")
        .filter(|f| !f.trim().is_empty())
        .map(|f| {
            let mut name = String::new();
            let mut data = Value::Null;
            for line in f.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    name = n.to_owned();
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data = serde_json::from_str(d).unwrap();
                }
            }
            assert_eq!(
                data["type"],
                name.as_str(),
                "event name and type agree: {f}"
            );
            (name, data)
        })
        .collect()
}

/// Streams `b` and returns its events.
async fn stream_events(gw: &common::Serve, b: &Value) -> Vec<(String, Value)> {
    let r = post(gw, "/v1/messages", b).await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    sse_events(&r.text().await.unwrap())
}

/// The text of all `text_delta`s.
fn streamed_text(events: &[(String, Value)]) -> String {
    events
        .iter()
        .filter(|(n, d)| n == "content_block_delta" && d["delta"]["type"] == "text_delta")
        .map(|(_, d)| d["delta"]["text"].as_str().unwrap().to_owned())
        .collect()
}

/// Checks the stream's grammar: one message_start first, blocks started, delta'd and stopped in
/// order with consecutive indices, then message_delta and message_stop last.
fn assert_well_formed(events: &[(String, Value)]) {
    let names: Vec<&str> = events
        .iter()
        .map(|(n, _)| n.as_str())
        .filter(|n| *n != "ping")
        .collect();
    assert_eq!(names.first(), Some(&"message_start"), "{names:?}");
    assert_eq!(
        &names[names.len() - 2..],
        ["message_delta", "message_stop"],
        "{names:?}"
    );
    let mut open: Option<u64> = None;
    let mut next = 0u64;
    for (n, d) in events {
        match n.as_str() {
            "content_block_start" => {
                assert_eq!(open, None, "a block starts while another is open");
                assert_eq!(d["index"], next);
                open = Some(next);
                next += 1;
            }
            "content_block_delta" => assert_eq!(Some(d["index"].as_u64().unwrap()), open),
            "content_block_stop" => {
                assert_eq!(Some(d["index"].as_u64().unwrap()), open);
                open = None;
            }
            _ => {}
        }
    }
    assert_eq!(open, None);
}

#[tokio::test]
async fn whole_and_streamed_answers() {
    let sim = common::reference_ollama().await;
    let (gw, sink) = gateway(&sim).await;

    let r = post(&gw, "/v1/messages", &body("hello [[tokens=7]]", false)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-switchyard-group"], "local-small");
    assert!(r.headers().contains_key("request-id"));
    let v: Value = r.json().await.unwrap();
    assert!(v["id"].as_str().unwrap().starts_with("msg_"), "{v}");
    assert_eq!(v["type"], "message");
    assert_eq!(v["role"], "assistant");
    assert_eq!(v["model"], "local-small");
    assert_eq!(v["content"][0]["type"], "text");
    let whole = v["content"][0]["text"].as_str().unwrap().to_owned();
    assert_eq!(whole.split_whitespace().count(), 7, "{whole:?}");
    assert_eq!(v["stop_reason"], "end_turn");
    assert_eq!(v["stop_sequence"], Value::Null);
    assert_eq!(v["usage"]["output_tokens"], 7);
    assert!(v["usage"]["input_tokens"].as_u64().unwrap() > 0);

    let events = stream_events(&gw, &body("hello [[tokens=7]]", true)).await;
    assert_well_formed(&events);
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        &names[..3],
        ["message_start", "ping", "content_block_start"]
    );
    let start = &events[0].1["message"];
    assert_eq!(start["content"], json!([]));
    assert_eq!(start["stop_reason"], Value::Null);
    assert!(start["usage"]["input_tokens"].as_u64().unwrap() > 0);
    assert_eq!(
        events[2].1["content_block"],
        json!({"type": "text", "text": ""})
    );
    assert_eq!(streamed_text(&events), whole);
    let (_, delta) = &events[events.len() - 2];
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    assert_eq!(delta["usage"]["output_tokens"], 7);
    assert_eq!(delta["usage"]["input_tokens"], v["usage"]["input_tokens"]);

    // max_tokens reached is Anthropic's max_tokens stop reason.
    let mut short = body("hello [[tokens=30]]", false);
    short["max_tokens"] = json!(3);
    let v: Value = post(&gw, "/v1/messages", &short)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["stop_reason"], "max_tokens", "{v}");

    // Every request's usage record says which API it came through.
    common::eventually(10, "three usage records", || {
        let sink = sink.clone();
        async move { sink.0.lock().unwrap().len() == 3 }
    })
    .await;
    for r in sink.0.lock().unwrap().iter() {
        assert_eq!(r.api, "anthropic.messages");
    }
}

fn weather_tool() -> Value {
    json!({
        "name": "get_weather",
        "description": "Weather for a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    })
}

#[tokio::test]
async fn tools_round_trip_whole_and_streamed() {
    let sim = common::reference_ollama().await;
    let (gw, _) = gateway(&sim).await;
    let mut b = body("weather in Paris? [[tool]]", false);
    b["tools"] = json!([weather_tool()]);
    b["system"] = json!([{"type": "text", "text": "You are terse."}]);
    let v: Value = post(&gw, "/v1/messages", &b).await.json().await.unwrap();
    assert_eq!(v["stop_reason"], "tool_use", "{v}");
    let call = v["content"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "tool_use")
        .unwrap()
        .clone();
    assert_eq!(call["name"], "get_weather");
    assert!(call["input"].is_object(), "{call}");
    assert!(!call["id"].as_str().unwrap().is_empty());

    // The result goes back as a tool_result block; the model answers in text.
    let round = json!({
        "model": "local-small", "max_tokens": 100, "tools": [weather_tool()],
        "messages": [
            {"role": "user", "content": "weather in Paris?"},
            {"role": "assistant", "content": v["content"]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": call["id"], "content": [{"type": "text", "text": "22C"}]},
                {"type": "text", "text": "thanks"}]},
        ],
    });
    let r = post(&gw, "/v1/messages", &round).await;
    assert_eq!(r.status(), 200);
    let v2: Value = r.json().await.unwrap();
    assert_eq!(v2["stop_reason"], "end_turn", "{v2}");
    assert!(!v2["content"][0]["text"].as_str().unwrap().is_empty());
    let sent = sim.requests().last().unwrap().body.clone();
    let roles: Vec<&str> = sent["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["user", "assistant", "tool", "user"], "{sent}");

    // Streamed: a tool_use block whose input_json_delta pieces make the input.
    b["stream"] = json!(true);
    b["tool_choice"] = json!({"type": "tool", "name": "get_weather"});
    let events = stream_events(&gw, &b).await;
    assert_well_formed(&events);
    let start = events
        .iter()
        .find(|(n, d)| n == "content_block_start" && d["content_block"]["type"] == "tool_use")
        .unwrap();
    assert_eq!(start.1["content_block"]["name"], "get_weather");
    assert_eq!(start.1["content_block"]["input"], json!({}));
    let index = &start.1["index"];
    let json_text: String = events
        .iter()
        .filter(|(n, d)| n == "content_block_delta" && &d["index"] == index)
        .map(|(_, d)| {
            assert_eq!(d["delta"]["type"], "input_json_delta");
            d["delta"]["partial_json"].as_str().unwrap().to_owned()
        })
        .collect();
    let input: Value = serde_json::from_str(&json_text).unwrap();
    assert_eq!(input, call["input"]);
    assert_eq!(
        events[events.len() - 2].1["delta"]["stop_reason"],
        "tool_use"
    );
}

#[tokio::test]
async fn images_and_request_fields_reach_the_backend() {
    let sim = common::reference_ollama().await;
    let (gw, _) = gateway(&sim).await;
    let b = json!({
        "model": "local-small", "max_tokens": 50, "temperature": 0.2, "top_k": 5,
        "stop_sequences": ["STOP"], "metadata": {"user_id": "user-42"},
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "system": "Describe images.",
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": "what is this?"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}]}],
    });
    let r = post(&gw, "/v1/messages", &b).await;
    assert_eq!(r.status(), 200);
    let sent = sim.requests().last().unwrap().body.clone();
    assert_eq!(sent["messages"][0]["role"], "system");
    let user = &sent["messages"][1];
    assert_eq!(user["content"], "what is this?");
    assert_eq!(user["images"].as_array().unwrap().len(), 1, "{sent}");
    assert!(
        user["images"][0]
            .as_str()
            .unwrap()
            .ends_with("iVBORw0KGgo=")
    );
    assert_eq!(sent["options"]["top_k"], 5, "{sent}");
    assert_eq!(sent["options"]["stop"], json!(["STOP"]), "{sent}");
    assert_eq!(sent["options"]["num_predict"], 50, "{sent}");
}

#[tokio::test]
async fn output_config_format_asks_the_backend_for_json() {
    let sim = common::reference_ollama().await;
    let (gw, _) = gateway(&sim).await;
    let schema = json!({"type": "object", "properties": {"city": {"type": "string"}}});
    let mut b = body("a city as JSON", false);
    b["output_config"] = json!({"format": {"type": "json_schema", "schema": schema}});
    let r = post(&gw, "/v1/messages", &b).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let text = v["content"][0]["text"].as_str().unwrap();
    assert!(serde_json::from_str::<Value>(text).is_ok(), "{text}");
    let sent = sim.requests().last().unwrap().body.clone();
    assert_eq!(sent["format"], schema, "{sent}");
}

#[tokio::test]
async fn count_tokens_is_the_serving_deployments_count() {
    let sim = common::reference_ollama().await;
    let (gw, _) = gateway(&sim).await;
    let messages = json!([{"role": "user", "content": "How many tokens is this sentence?"}]);
    let r = post(
        &gw,
        "/v1/messages/count_tokens",
        &json!({"model": "local-small", "messages": messages}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let counted = v["input_tokens"].as_u64().unwrap();
    assert!(counted > 0, "{v}");
    assert_eq!(v.as_object().unwrap().len(), 1, "{v}");

    // The same prompt sent: the route's prediction is the same number.
    let r = post(
        &gw,
        "/v1/messages",
        &json!({"model": "local-small", "max_tokens": 20, "messages": messages}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let predicted: u64 = r.headers()["x-switchyard-prompt-tokens"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(counted, predicted);

    // Tools and a system prompt count too.
    let more: Value = post(
        &gw,
        "/v1/messages/count_tokens",
        &json!({"model": "local-small", "messages": messages, "system": "Be brief.", "tools": [weather_tool()]}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert!(more["input_tokens"].as_u64().unwrap() > counted, "{more}");

    // Claude Code adds `?beta=true` to both routes. (Counts are compared right after each
    // other: the router's calibration learns from every answer.)
    let plain: Value = post(
        &gw,
        "/v1/messages/count_tokens",
        &json!({"model": "local-small", "messages": messages}),
    )
    .await
    .json()
    .await
    .unwrap();
    let beta: Value = post(
        &gw,
        "/v1/messages/count_tokens?beta=true",
        &json!({"model": "local-small", "messages": messages}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(beta, plain);
    let r = post(&gw, "/v1/messages?beta=true", &body("hi", false)).await;
    assert_eq!(r.status(), 200);

    let r = post(
        &gw,
        "/v1/messages/count_tokens",
        &json!({"model": "no-such-model", "messages": messages}),
    )
    .await;
    assert_eq!(r.status(), 404);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "not_found_error");
}

/// `{"type":"error","error":{"type": kind, ...}}` with `status`.
async fn assert_error(r: reqwest::Response, status: u16, kind: &str) -> Value {
    assert_eq!(r.status(), status);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["type"], "error", "{v}");
    assert_eq!(v["error"]["type"], kind, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
    v
}

#[tokio::test]
async fn errors_have_anthropics_shape() {
    let sim = common::reference_ollama().await;
    let (gw, _) = gateway(&sim).await;

    let mut no_max = body("hi", false);
    no_max.as_object_mut().unwrap().remove("max_tokens");
    let v = assert_error(
        post(&gw, "/v1/messages", &no_max).await,
        400,
        "invalid_request_error",
    )
    .await;
    assert_eq!(v["error"]["message"], "max_tokens: Field required");

    let mut unknown = body("hi", false);
    unknown["model"] = json!("claude-no-such-model");
    assert_error(
        post(&gw, "/v1/messages", &unknown).await,
        404,
        "not_found_error",
    )
    .await;

    let bad_block = json!({"model": "local-small", "max_tokens": 5, "messages": [
        {"role": "user", "content": [{"type": "server_tool_use", "id": "x"}]}]});
    assert_error(
        post(&gw, "/v1/messages", &bad_block).await,
        400,
        "invalid_request_error",
    )
    .await;

    // A prompt no window holds is invalid_request_error, streamed or not (before any event).
    for stream in [false, true] {
        let long = body(&"the cat ".repeat(20000), stream);
        let v = assert_error(
            post(&gw, "/v1/messages", &long).await,
            400,
            "invalid_request_error",
        )
        .await;
        assert!(
            v["error"]["message"].as_str().unwrap().contains("context"),
            "{v}"
        );
    }
    // max_tokens is a firm request, as in Anthropic's API: prompt + max_tokens must fit.
    let mut huge = body("hi", false);
    huge["max_tokens"] = json!(100_000);
    assert_error(
        post(&gw, "/v1/messages", &huge).await,
        400,
        "invalid_request_error",
    )
    .await;
}

#[tokio::test]
async fn keys_are_checked_with_a_master_key() {
    const KEY: &str = "sk-anthropic-test-master";
    let sim = common::reference_ollama().await;
    let mut text = common::seed_config_text(&sim.base_url());
    text.push_str(&format!("general_settings:\n  master_key: {KEY}\n"));
    let dir = tempfile::tempdir().unwrap();
    let gw = common::serve_with(
        common::config_from(&text),
        switchyard::ServeOptions {
            data_dir: Some(dir.path().to_path_buf()),
            embedded_prober: Some(false),
            ..Default::default()
        },
    )
    .await;
    let http = common::client();
    for path in ["/v1/messages", "/v1/messages/count_tokens"] {
        for key in [None, Some("wrong")] {
            let mut rb = http.post(gw.url(path)).json(&body("hi", false));
            if let Some(k) = key {
                rb = rb.header("x-api-key", k);
            }
            assert_error(rb.send().await.unwrap(), 401, "authentication_error").await;
        }
        let r = http
            .post(gw.url(path))
            .header("x-api-key", KEY)
            .header("anthropic-version", "2023-06-01")
            .json(&body("hi", false))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }
}

#[tokio::test]
async fn a_stream_cut_mid_answer_is_continued() {
    let sim = common::reference_ollama().await;
    let (gw, _) = gateway(&sim).await;
    let whole =
        streamed_text(&stream_events(&gw, &body("a long answer [[tokens=16]]", true)).await);
    sim.add_fault(FaultRule::for_model(
        "llama3.2:1b",
        Fault::CutAfter { chunks: 5 },
        Some(1),
    ));
    let events = stream_events(&gw, &body("a long answer [[tokens=16]]", true)).await;
    assert_well_formed(&events);
    assert_eq!(streamed_text(&events), whole);
    assert_eq!(
        events
            .iter()
            .filter(|(n, _)| n == "content_block_start")
            .count(),
        1
    );
    assert_eq!(
        events[events.len() - 2].1["delta"]["stop_reason"],
        "end_turn"
    );
}

#[tokio::test]
async fn a_failing_deployment_falls_back() {
    let sim = common::reference_ollama().await;
    let (gw, _) = gateway(&sim).await;
    sim.add_fault(FaultRule::for_model(
        "llama3.2:1b",
        Fault::Status {
            code: 500,
            message: "boom".into(),
        },
        None,
    ));
    for stream in [false, true] {
        let r = post(&gw, "/v1/messages", &body("hi [[tokens=4]]", stream)).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["x-switchyard-requested-group"], "local-small");
        assert_ne!(r.headers()["x-switchyard-group"], "local-small");
        let text = r.text().await.unwrap();
        if stream {
            assert_eq!(
                streamed_text(&sse_events(&text)).split_whitespace().count(),
                4
            );
        } else {
            let v: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(v["model"], "local-small");
        }
    }
}

#[tokio::test]
async fn a_slow_first_token_gets_pings_then_the_answer() {
    let sim = common::reference_ollama().await;
    let text = format!(
        "{}gateway: {{sse_keepalive: 0.1}}\n",
        common::seed_config_text(&sim.base_url())
    );
    let gw = common::serve(common::config_from(&text)).await;
    sim.add_fault(FaultRule::for_model(
        "llama3.2:1b",
        Fault::SlowFirstByte(std::time::Duration::from_millis(600)),
        Some(1),
    ));
    let r = post(&gw, "/v1/messages", &body("hi [[tokens=5]]", true)).await;
    assert_eq!(r.status(), 200);
    // Opened before the route was known: no route headers, but the request id.
    assert!(!r.headers().contains_key("x-switchyard-group"));
    assert!(r.headers().contains_key("x-request-id"));
    let events = sse_events(&r.text().await.unwrap());
    assert_well_formed(&events);
    let pings = events.iter().filter(|(n, _)| n == "ping").count();
    assert!(pings >= 3, "{events:?}");
    assert_eq!(events[0].1["message"]["usage"]["input_tokens"], 0);
    let (_, delta) = &events[events.len() - 2];
    assert!(
        delta["usage"]["input_tokens"].as_u64().unwrap() > 0,
        "{delta}"
    );
    assert_eq!(streamed_text(&events).split_whitespace().count(), 5);
}

#[tokio::test]
async fn an_error_after_the_stream_opened_is_an_error_event() {
    let sim = common::reference_ollama().await;
    let text = format!(
        "model_list:\n  - model_name: only\n    litellm_params: {{model: ollama/llama3.2:1b, api_base: \"{}\", max_tokens: 2048}}\nrouter_settings: {{num_retries: 0}}\n",
        sim.base_url()
    );
    let gw = common::serve(common::config_from(&text)).await;
    sim.add_fault(FaultRule::for_model(
        "llama3.2:1b",
        Fault::ErrorLineAfter { chunks: 3 },
        None,
    ));
    let mut b = body("a long answer [[tokens=16]]", true);
    b["model"] = json!("only");
    let r = post(&gw, "/v1/messages", &b).await;
    assert_eq!(r.status(), 200);
    let events = sse_events(&r.text().await.unwrap());
    let (name, last) = events.last().unwrap();
    assert_eq!(name, "error", "{events:?}");
    assert!(last["error"]["type"].as_str().is_some(), "{last}");
    assert!(!last["error"]["message"].as_str().unwrap().is_empty());
    assert!(events.iter().all(|(n, _)| n != "message_stop"));
}

// --- The official SDK, over the simulator and through to a real model.

fn repo() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs pytest on tests/sdk/`file` with `env`; asserts it passed with `passed` tests.
async fn pytest(python: &str, file: &str, env: &[(&str, String)], passed: usize) {
    let out = tokio::process::Command::new(python)
        .args(["-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider"])
        .arg(repo().join("tests/sdk").join(file))
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "pytest failed:\n{stdout}\n{stderr}");
    eprintln!(
        "pytest {file}: {}",
        stdout.lines().last().unwrap_or_default()
    );
    assert!(
        stdout.contains(&format!("{passed} passed")) && !stdout.contains("skipped"),
        "{stdout}"
    );
}

/// Tests in tests/sdk/test_anthropic_sdk.py, all of which must pass.
const SDK_TESTS: usize = 9;
/// Tests in tests/sdk/test_anthropic_real.py, all of which must pass.
const REAL_TESTS: usize = 5;

#[tokio::test]
async fn anthropic_python_sdk_works_against_the_gateway() {
    let Ok(python) = std::env::var("SWITCHYARD_PYTHON") else {
        eprintln!("skipped: SWITCHYARD_PYTHON is not set (make test sets it up)");
        return;
    };
    let sim = common::reference_ollama().await;
    let (gw, _) = gateway(&sim).await;
    let env = [
        ("SWITCHYARD_URL", format!("http://{}", gw.addr)),
        ("SIM_URL", sim.base_url()),
    ];
    pytest(&python, "test_anthropic_sdk.py", &env, SDK_TESTS).await;
}

#[tokio::test]
async fn anthropic_python_sdk_through_the_gateway_to_a_real_llama_cpp_server() {
    let (Ok(python), Ok(model)) = (
        std::env::var("SWITCHYARD_E2E_PYTHON"),
        std::env::var("SWITCHYARD_E2E_MODEL"),
    ) else {
        eprintln!(
            "skipped: SWITCHYARD_E2E_PYTHON / SWITCHYARD_E2E_MODEL not set (make test sets them up)"
        );
        return;
    };
    let server = common::llama_cpp_python::start_with(
        &common::llama_cpp_python::Env {
            python: python.clone(),
            model: model.clone(),
        },
        2048,
        false,
    )
    .await;
    let url = server.url.clone();
    let text = format!(
        "deployments:\n  - {{group: smol, provider: openai, model: smol, api_base: \"{url}\", context_window: 2048, tokenizer: \"{model}\", template: chatml}}\nrouting: {{num_retries: 0, idle_timeout: 20, first_byte_timeout: 60}}\n"
    );
    let gw = common::serve(common::config_from(&text)).await;
    let env = [
        ("SWITCHYARD_REAL_URL", format!("http://{}", gw.addr)),
        ("SWITCHYARD_REAL_BACKEND", url),
    ];
    pytest(&python, "test_anthropic_real.py", &env, REAL_TESTS).await;
}
