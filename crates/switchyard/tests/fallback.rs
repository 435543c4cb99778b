//! Reactive fallback: each failure class leads where it should, and the client only ever sees the
//! final answer.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use serde_json::Value;
use switchyard_sim::{Fault, FaultRule, SimConfig, SimHandle, SimModel};

fn header(r: &reqwest::Response, name: &str) -> String {
    r.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

/// Two Ollama groups on one simulator: `small` (window 2048) falls back to `big` (8192).
fn two_groups(base: &str, extra: &str) -> String {
    format!(
        r#"
model_list:
  - model_name: small
    litellm_params: {{model: "ollama/tiny", api_base: "{base}", max_tokens: 2048 {extra}}}
  - model_name: big
    litellm_params: {{model: "ollama/large", api_base: "{base}", max_tokens: 8192}}
router_settings:
  fallbacks: [small, big]
  num_retries: 0
  allowed_fails: 2
  cooldown_time: 60
"#
    )
}

async fn sim_with_small_trained_context() -> SimHandle {
    // The model really only holds 1024 tokens (Ollama clamps num_ctx to the trained length),
    // although the config claims 2048.
    SimHandle::start(SimConfig::ollama(vec![
        SimModel::new("tiny", 1024),
        SimModel::new("large", 32768),
    ]))
    .await
    .unwrap()
}

#[tokio::test]
async fn overflow_error_falls_back_to_a_larger_window() {
    let sim = sim_with_small_trained_context().await;
    let gw = common::serve(common::config_from(&two_groups(&sim.base_url(), ""))).await;
    let resp = common::client()
        .post(gw.url("/v1/chat/completions"))
        .json(&common::chat_body("small", &common::words(1200), false))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-switchyard-model"), "large");
    assert_eq!(header(&resp, "x-switchyard-attempts"), "2");
    // Switchyard asked Ollama for an error instead of silent truncation.
    let first = &sim.requests()[0];
    assert_eq!(first.model, "tiny");
    assert_eq!(first.body["truncate"], Value::Bool(false));
}

#[tokio::test]
async fn silent_truncation_is_detected_and_falls_back() {
    let sim = sim_with_small_trained_context().await;
    // `truncate: true` lets Ollama truncate silently, as servers before 0.12.4 always do.
    let gw = common::serve(common::config_from(&two_groups(
        &sim.base_url(),
        ", truncate: true",
    )))
    .await;
    let resp = common::client()
        .post(gw.url("/v1/chat/completions"))
        .json(&common::chat_body("small", &common::words(1200), false))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "x-switchyard-model"), "large");
    let reqs = sim.requests();
    assert!(
        reqs[0].truncated,
        "the simulator should have truncated the first attempt"
    );
    assert!(!reqs[1].truncated);
}

#[tokio::test]
async fn dead_host_busy_and_cooldown() {
    let sim = common::reference_ollama().await;
    // A deployment on a port nobody listens on, ahead of a healthy one in the same group.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let text = format!(
        r#"
model_list:
  - model_name: g
    litellm_params: {{model: "ollama/llama3.2:1b", api_base: "http://{dead}", max_tokens: 2048}}
  - model_name: g
    litellm_params: {{model: "ollama/llama3.2:1b", api_base: "{base}", max_tokens: 2048}}
router_settings:
  num_retries: 0
  allowed_fails: 1
  cooldown_time: 60
"#,
        base = sim.base_url()
    );
    let gw = common::serve(common::config_from(&text)).await;
    let http = common::client();
    let mut attempts = Vec::new();
    for _ in 0..4 {
        let r = http
            .post(gw.url("/v1/chat/completions"))
            .json(&common::chat_body("g", "hi", false))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        attempts.push(header(&r, "x-switchyard-attempts"));
    }
    // A refused connection marks the host down at once (passive health): after the first
    // failure it is not tried at all.
    assert_eq!(attempts, ["2", "1", "1", "1"]);

    // A busy backend (503) moves on; the client's own 4xx does not.
    sim.add_fault(FaultRule::for_model(
        "llama3.2:1b",
        Fault::Status {
            code: 400,
            message: "invalid format".into(),
        },
        Some(1),
    ));
    let r = http
        .post(gw.url("/v1/chat/completions"))
        .json(&common::chat_body("g", "hi", false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("invalid format"),
        "{v}"
    );
}

#[tokio::test]
async fn busy_then_retry_pass_succeeds() {
    let sim = common::reference_ollama().await;
    let text = format!(
        r#"
model_list:
  - model_name: only
    litellm_params: {{model: "ollama/llama3.2:1b", api_base: "{}", max_tokens: 2048}}
router_settings: {{num_retries: 2, retry_after: 0.01, allowed_fails: 10}}
"#,
        sim.base_url()
    );
    let gw = common::serve(common::config_from(&text)).await;
    sim.add_fault(FaultRule::for_model(
        "llama3.2:1b",
        Fault::Status {
            code: 503,
            message: "server busy, please try again.  maximum pending requests exceeded".into(),
        },
        Some(2),
    ));
    let r = common::client()
        .post(gw.url("/v1/chat/completions"))
        .json(&common::chat_body("only", "hi", false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-switchyard-attempts"), "3");

    // Every pass failing ends in one clear error listing the attempts.
    sim.add_fault(FaultRule::for_model(
        "llama3.2:1b",
        Fault::Status {
            code: 503,
            message: "busy".into(),
        },
        None,
    ));
    let r = common::client()
        .post(gw.url("/v1/chat/completions"))
        .json(&common::chat_body("only", "hi", true))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "upstream_busy");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("3 attempt"),
        "{v}"
    );
}

/// A llama.cpp-style server with one model and a slot of `ctx` tokens.
async fn llamacpp(model: &str, ctx: u32) -> SimHandle {
    SimHandle::start(SimConfig::llamacpp(SimModel::new(model, ctx)))
        .await
        .unwrap()
}

#[tokio::test]
async fn a_short_prompt_counted_high_by_the_estimate_is_not_taken_for_a_truncated_one() {
    // The heuristic counter adds a fixed template overhead that is several times what the backend
    // reports for "hi"; before the absolute floor, all three attempts were called truncated and
    // the caller got a 400 for a prompt any model fits.
    let sim = llamacpp("smol", 2048).await;
    let text = format!(
        "model_list:\n  - model_name: smol\n    litellm_params: {{model: \"openai/smol\", api_base: \"{}/v1\"}}\n",
        sim.base_url()
    );
    let gw = common::serve(common::config_from(&text)).await;
    let r = common::client()
        .post(gw.url("/v1/chat/completions"))
        .json(&common::chat_body("smol", "hi", false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-switchyard-attempts"), "1");
    let reported = sim.requests()[0].evaluated_tokens;
    let predicted: u32 = header(&r, "x-switchyard-prompt-tokens").parse().unwrap();
    assert!(
        reported * 2 < predicted,
        "{reported} vs {predicted}: no longer a regression test"
    );
}

#[tokio::test]
async fn a_deployments_api_key_goes_to_its_backend_as_a_bearer_token_and_nowhere_else() {
    let keyed = llamacpp("smol-a", 2048).await;
    let open = llamacpp("smol-b", 2048).await;
    let text = format!(
        r#"
model_list:
  - model_name: keyed
    litellm_params: {{model: "openai/smol", api_base: "{}/v1", api_key: "sk-local-1"}}
  - model_name: open
    litellm_params: {{model: "openai/smol", api_base: "{}/v1"}}
"#,
        keyed.base_url(),
        open.base_url()
    );
    let gw = common::serve(common::config_from(&text)).await;
    for (group, stream) in [("keyed", false), ("keyed", true), ("open", false)] {
        let r = common::client()
            .post(gw.url("/v1/chat/completions"))
            .json(&common::chat_body(group, "hello there", stream))
            .send()
            .await
            .unwrap();
        let status = r.status();
        let body = r.text().await.unwrap();
        assert_eq!(status, 200, "{group}: {body}");
    }
    let sent = |sim: &SimHandle| -> Vec<Option<String>> {
        sim.requests()
            .iter()
            .map(|r| r.authorization.clone())
            .collect()
    };
    let bearer = Some("Bearer sk-local-1".to_string());
    assert_eq!(sent(&keyed), vec![bearer.clone(), bearer]);
    assert_eq!(sent(&open), vec![None]);
}

#[tokio::test]
async fn openai_compatible_backend_overflow_and_stream() {
    // llama.cpp-style servers: a 512-token slot and a 2048-token slot.
    let small = llamacpp("smol-512", 512).await;
    let large = llamacpp("smol-2048", 2048).await;
    // The config overstates the small server's window, so the overflow is only found by asking.
    let text = format!(
        r#"
model_list:
  - model_name: smol
    litellm_params: {{model: "openai/smol", api_base: "{}/v1"}}
    model_info: {{max_input_tokens: 1024}}
  - model_name: smol-large
    litellm_params: {{model: "openai/smol", api_base: "{}/v1"}}
    model_info: {{max_input_tokens: 2048}}
router_settings: {{fallbacks: [smol, smol-large], num_retries: 0}}
routing: {{reserve_output_tokens: 64}}
"#,
        small.base_url(),
        large.base_url()
    );
    let gw = common::serve(common::config_from(&text)).await;
    let http = common::client();
    let r = http
        .post(gw.url("/v1/chat/completions"))
        .json(&common::chat_body("smol", &common::words(700), true))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-switchyard-group"), "smol-large");
    assert_eq!(header(&r, "x-switchyard-attempts"), "2");
    let body = r.text().await.unwrap();
    let payloads = common::sse_payloads(&body);
    assert_eq!(payloads.last().unwrap(), "[DONE]");
    assert!(!common::sse_text(&payloads).is_empty());
    assert_eq!(small.requests().len(), 1);
    assert_eq!(large.requests().len(), 1);
    assert_eq!(
        large.requests()[0].body["stream_options"]["include_usage"],
        true
    );

    // include_usage is honoured: exactly one usage chunk with choices: [].
    let mut req = common::chat_body("smol", "short one", true);
    req["stream_options"] = serde_json::json!({"include_usage": true});
    let body = http
        .post(gw.url("/v1/chat/completions"))
        .json(&req)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let usage: Vec<Value> = common::sse_payloads(&body)
        .iter()
        .filter_map(|p| serde_json::from_str::<Value>(p).ok())
        .filter(|v| v.get("usage").is_some_and(|u| !u.is_null()))
        .collect();
    assert_eq!(usage.len(), 1, "{body}");
    assert_eq!(usage[0]["choices"], serde_json::json!([]));
    assert!(usage[0]["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
}
