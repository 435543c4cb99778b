//! What browser and non-chat clients meet at the HTTP surface: the Responses API over the router,
//! CORS preflights, and unknown routes counted under one label.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use switchyard_router::{RequestRecord, UsageSink};

#[derive(Default)]
struct Collect(Mutex<Vec<RequestRecord>>);

impl UsageSink for Collect {
    fn record(&self, r: RequestRecord) {
        self.0.lock().unwrap().push(r);
    }
}

async fn gateway(extra: &str) -> (switchyard_sim::SimHandle, common::Serve) {
    let sim = common::reference_ollama().await;
    let mut text = common::seed_config_text(&sim.base_url());
    text.push_str(extra);
    let gw = common::serve(common::config_from(&text)).await;
    (sim, gw)
}

#[tokio::test]
async fn responses_api_answers_through_the_router_with_route_headers() {
    let (_sim, gw) = gateway("").await;
    let r = common::client()
        .post(gw.url("/v1/responses"))
        .json(&json!({"model": "local-small", "input": "hello [[tokens=5]]", "instructions": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-switchyard-group"], "local-small");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["object"], "response");
    assert_eq!(v["status"], "completed");
    assert!(v["error"].is_null());
    let text = v["output"][0]["content"][0]["text"].as_str().unwrap();
    assert_eq!(text.split_whitespace().count(), 5);
    assert_eq!(v["usage"]["output_tokens"], 5);
}

#[tokio::test]
async fn responses_stream_is_typed_events_ending_in_completed_without_done() {
    let (_sim, gw) = gateway("").await;
    let body = common::client()
        .post(gw.url("/v1/responses"))
        .json(&json!({"model": "local-small", "input": "hi [[tokens=4]]", "stream": true}))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let frames: Vec<&str> = body.split("\n\n").filter(|f| !f.is_empty()).collect();
    let first = frames.first().unwrap();
    assert!(first.starts_with("event: response.created\n"), "{first}");
    let last = frames.last().unwrap();
    assert!(last.starts_with("event: response.completed\n"), "{last}");
    assert!(!body.contains("[DONE]"));
    let deltas = frames
        .iter()
        .filter(|f| f.starts_with("event: response.output_text.delta"))
        .count();
    assert_eq!(deltas, 4);
}

#[tokio::test]
async fn responses_errors_keep_their_status_and_openai_shape() {
    let (_sim, gw) = gateway("").await;
    let c = common::client();
    let r = c
        .post(gw.url("/v1/responses"))
        .json(&json!({"model": "nope", "input": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = c
        .post(gw.url("/v1/responses"))
        .json(&json!({"model": "local-large", "input": common::words(200_000), "stream": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "context_length_exceeded");
    let r = c
        .post(gw.url("/v1/responses"))
        .json(&json!({"model": "local-small", "input": [{"type": "item_reference", "id": "x"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["param"], "input");
}

#[tokio::test]
async fn cors_preflight_is_answered_before_the_key_check_and_exposes_route_headers() {
    let (_sim, gw) = gateway("general_settings: {master_key: sk-test-master-1}\n").await;
    let c = common::client();
    let r = c
        .request(reqwest::Method::OPTIONS, gw.url("/v1/chat/completions"))
        .header("origin", "http://localhost:3000")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,content-type",
        )
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    let allowed = r.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(allowed.contains("authorization"), "{allowed}");
    let r = c
        .post(gw.url("/v1/chat/completions"))
        .header("origin", "http://localhost:3000")
        .bearer_auth("sk-test-master-1")
        .json(&common::chat_body("local-small", "hi", false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    let exposed = r.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(exposed.contains("x-switchyard-group"), "{exposed}");
}

#[tokio::test]
async fn cors_origins_can_be_listed_or_turned_off() {
    let (_sim, gw) = gateway("gateway: {cors_allow_origins: ['https://chat.example.org']}\n").await;
    let c = common::client();
    let preflight = |origin: &'static str| {
        c.request(reqwest::Method::OPTIONS, gw.url("/v1/models"))
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .send()
    };
    let r = preflight("https://chat.example.org").await.unwrap();
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://chat.example.org"
    );
    let r = preflight("https://evil.example.com").await.unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());

    let (_sim2, off) = gateway("gateway: {cors_allow_origins: []}\n").await;
    let r = c
        .get(off.url("/v1/models"))
        .header("origin", "https://chat.example.org")
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
}

#[test]
fn a_cors_origin_that_is_not_an_origin_is_refused_naming_the_key() {
    let e = switchyard_core::config::load_str(
        "t.yaml",
        &format!(
            "{}gateway: {{cors_allow_origins: ['chat.example.org/x']}}\n",
            common::seed_config_text("http://127.0.0.1:1")
        ),
        None,
        &std::collections::HashMap::<String, String>::new(),
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("gateway.cors_allow_origins[0]"),
        "{e}"
    );
}

#[tokio::test]
async fn unknown_routes_are_counted_under_one_fixed_label() {
    let (_sim, gw) = gateway("").await;
    let c = common::client();
    for path in ["/v1/nope", "/wp-admin/x", "/v1/assistants"] {
        let r = c.get(gw.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 404);
    }
    let page = c
        .get(gw.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let line = page
        .lines()
        .find(|l| {
            l.starts_with("switchyard_gateway_http_requests_total")
                && l.contains("route=\"unknown\"")
                && l.contains("code=\"404\"")
        })
        .unwrap_or_else(|| panic!("no unknown-route line in:\n{page}"));
    assert!(line.ends_with(" 3"), "{line}");
    assert!(!page.contains("wp-admin"));
}

#[tokio::test]
async fn n_choices_are_separate_routed_answers_joined_in_one_response() {
    let (_sim, gw) = gateway("").await;
    let c = common::client();
    let mut body = common::chat_body("local-small", "hi [[tokens=3]]", false);
    body["n"] = json!(2);
    let r = c
        .post(gw.url("/v1/chat/completions"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let choices = v["choices"].as_array().unwrap();
    assert_eq!(choices.len(), 2);
    assert_eq!(choices[0]["index"], 0);
    assert_eq!(choices[1]["index"], 1);
    assert_eq!(v["usage"]["completion_tokens"], 6);

    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let text = c
        .post(gw.url("/v1/chat/completions"))
        .json(&body)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let payloads = common::sse_payloads(&text);
    assert_eq!(payloads.iter().filter(|p| *p == "[DONE]").count(), 1);
    let chunks: Vec<Value> = payloads
        .iter()
        .filter(|p| *p != "[DONE]")
        .map(|p| serde_json::from_str(p).unwrap())
        .collect();
    for i in 0..2 {
        let finishes = chunks
            .iter()
            .filter(|c| {
                c["choices"][0]["index"] == i && c["choices"][0]["finish_reason"].is_string()
            })
            .count();
        assert_eq!(finishes, 1, "choice {i}: {text}");
    }
    let usage = chunks.iter().find(|c| c["usage"].is_object()).unwrap();
    assert_eq!(usage["usage"]["completion_tokens"], 6);

    for n in [0, 17] {
        body["n"] = json!(n);
        let r = c
            .post(gw.url("/v1/chat/completions"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["param"], "n");
    }
}

#[tokio::test]
async fn text_completions_reach_ollama_raw_and_come_back_as_text_completion() {
    let (sim, gw) = gateway("").await;
    let c = common::client();
    let r = c
        .post(gw.url("/v1/completions"))
        .json(&json!({"model": "local-small", "prompt": "Once upon a time [[tokens=5]]", "echo": true, "max_tokens": 50}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-switchyard-group"], "local-small");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["object"], "text_completion");
    let text = v["choices"][0]["text"].as_str().unwrap();
    let answer = text.strip_prefix("Once upon a time [[tokens=5]]").unwrap();
    assert_eq!(answer.split_whitespace().count(), 5, "{text}");
    assert_eq!(v["usage"]["completion_tokens"], 5);
    let sent = sim.requests().into_iter().last().unwrap();
    assert_eq!(sent.path, "/api/generate");
    assert_eq!(sent.body["raw"], true);
    assert_eq!(sent.body["prompt"], "Once upon a time [[tokens=5]]");
    assert_eq!(sent.body["options"]["num_ctx"], 2048);

    // Two prompts, streamed: chunks carry their index, one finish each, one [DONE].
    let body = c
        .post(gw.url("/v1/completions"))
        .json(&json!({"model": "local-small", "prompt": ["a [[tokens=3]]", "b [[tokens=4]]"], "stream": true,
                      "stream_options": {"include_usage": true}}))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let payloads = common::sse_payloads(&body);
    assert_eq!(payloads.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = payloads[..payloads.len() - 1]
        .iter()
        .map(|p| serde_json::from_str(p).unwrap())
        .collect();
    let text_of = |i: u64| -> String {
        chunks
            .iter()
            .filter(|c| c["choices"][0]["index"] == i)
            .filter_map(|c| c["choices"][0]["text"].as_str())
            .collect()
    };
    assert_eq!(text_of(0).split_whitespace().count(), 3);
    assert_eq!(text_of(1).split_whitespace().count(), 4);
    assert!(chunks.iter().all(|c| c["object"] == "text_completion"));
    let usage = chunks.iter().find(|c| c["usage"].is_object()).unwrap();
    assert_eq!(usage["usage"]["completion_tokens"], 7);

    let r = c
        .post(gw.url("/v1/completions"))
        .json(&json!({"model": "local-small", "prompt": [1, 2, 3]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn a_text_completion_to_an_openai_compatible_server_keeps_its_prompt_and_suffix() {
    let sim = switchyard_sim::SimHandle::start(switchyard_sim::SimConfig::llamacpp(
        switchyard_sim::SimModel::new("smol", 8192),
    ))
    .await
    .unwrap();
    let cfg = format!(
        "model_list:\n  - model_name: code\n    litellm_params: {{model: openai/smol, api_base: \"{}\"}}\n    model_info: {{max_input_tokens: 8192}}\n",
        sim.base_url()
    );
    let gw = common::serve(common::config_from(&cfg)).await;
    let r = common::client()
        .post(gw.url("/v1/completions"))
        .json(&json!({"model": "code", "prompt": "def add(a, b):", "suffix": "\n\nprint(add(1, 2))", "max_tokens": 8}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["choices"][0]["text"]
            .as_str()
            .is_some_and(|t| !t.is_empty()),
        "{v}"
    );
    let sent = sim.requests().into_iter().last().unwrap();
    assert_eq!(sent.path, "/v1/completions");
    assert_eq!(sent.body["prompt"], "def add(a, b):");
    assert_eq!(sent.body["suffix"], "\n\nprint(add(1, 2))");
    assert_eq!(sent.body["stream"], false);
}

#[tokio::test]
async fn a_broken_text_completion_stream_is_continued_by_appending_what_was_produced() {
    use switchyard_sim::{Fault, FaultRule};
    let (sim, gw) = gateway("").await;
    let c = common::client();
    let req =
        json!({"model": "local-small", "prompt": "Count with me [[tokens=10]]", "stream": true});
    let text_of = |body: &str| -> String {
        common::sse_payloads(body)
            .iter()
            .filter(|p| *p != "[DONE]")
            .filter_map(|p| serde_json::from_str::<Value>(p).ok())
            .filter_map(|v| v["choices"][0]["text"].as_str().map(str::to_owned))
            .collect()
    };
    let whole = text_of(
        &c.post(gw.url("/v1/completions"))
            .json(&req)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );
    sim.add_fault(FaultRule::for_model(
        "llama3.2:1b",
        Fault::CutAfter { chunks: 4 },
        Some(1),
    ));
    let body = c
        .post(gw.url("/v1/completions"))
        .json(&req)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(text_of(&body), whole, "{body}");
    assert!(!body.contains("\"error\""), "{body}");
    // The continuation sent the prompt with the partial answer appended, raw.
    let last = sim.requests().into_iter().last().unwrap();
    assert_eq!(last.path, "/api/generate");
    assert_eq!(last.body["raw"], true);
    let prompt = last.body["prompt"].as_str().unwrap();
    assert!(
        prompt.starts_with("Count with me [[tokens=10]]") && prompt.len() > 27,
        "{prompt}"
    );
}

#[tokio::test]
async fn a_prompt_that_fits_only_without_the_full_reserve_is_served_with_the_room_left() {
    let sim = common::reference_ollama().await;
    let cfg = format!(
        "model_list:\n  - model_name: only\n    litellm_params: {{model: ollama/llama3.2:1b, api_base: \"{}\", max_tokens: 2048}}\n",
        sim.base_url()
    );
    let sink = Arc::new(Collect::default());
    let gw = common::serve_with(
        common::config_from(&cfg),
        switchyard::ServeOptions {
            usage_sink: Some(sink.clone()),
            embedded_prober: Some(false),
            ..Default::default()
        },
    )
    .await;
    let c = common::client();
    let prompt = format!("{} [[tokens=5]]", common::words(1700));
    let r = c
        .post(gw.url("/v1/chat/completions"))
        .json(&common::chat_body("only", &prompt, false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let limit: u32 = r.headers()["x-switchyard-output-limit"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((64..512).contains(&limit), "{limit}");
    let sent = sim.requests().into_iter().last().unwrap();
    assert_eq!(sent.body["options"]["num_predict"], limit);
    common::eventually(20, "the usage record", || {
        let sink = sink.clone();
        async move { !sink.0.lock().unwrap().is_empty() }
    })
    .await;
    let record = sink.0.lock().unwrap()[0].clone();
    let served = record.attempts.last().unwrap();
    assert!(
        served.message.starts_with("output_limited: max_tokens"),
        "{}",
        served.message
    );

    // A limit the caller set is theirs: it does not fit, so it is refused.
    let mut body = common::chat_body("only", &prompt, false);
    body["max_tokens"] = json!(512);
    let r = c
        .post(gw.url("/v1/chat/completions"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // And a prompt that leaves no room anywhere still gets the overflow error.
    let r = c
        .post(gw.url("/v1/chat/completions"))
        .json(&common::chat_body("only", &common::words(2100), false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "context_length_exceeded");
}

#[tokio::test]
async fn a_wrong_method_gets_405_in_openai_shape() {
    let (_sim, gw) = gateway("").await;
    let r = common::client()
        .get(gw.url("/v1/chat/completions"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "method_not_allowed");
}

#[tokio::test]
async fn readiness_counts_the_deployments_up_and_says_degraded_when_none_is() {
    let mut bases = Vec::new();
    for _ in 0..2 {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        bases.push(format!("http://{}", l.local_addr().unwrap()));
    }
    let cfg = format!(
        "model_list:\n  - model_name: chat\n    litellm_params: {{model: ollama/a, api_base: \"{}\", max_tokens: 4096}}\n  - model_name: chat\n    litellm_params: {{model: ollama/b, api_base: \"{}\", max_tokens: 4096}}\n",
        bases[0], bases[1]
    );
    let gw = common::serve(common::config_from(&cfg)).await;
    let c = common::client();
    let ready = || async {
        let r = c.get(gw.url("/health/readiness")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        r.json::<Value>().await.unwrap()
    };
    let v = ready().await;
    assert_eq!(v["status"], "ready");
    assert_eq!(v["deployments"]["total"], 2);
    assert_eq!(v["deployments"]["unknown"], 2);
    // Both refuse connections: passive health marks them down.
    let _ = c
        .post(gw.url("/v1/chat/completions"))
        .json(&common::chat_body("chat", "hi", false))
        .send()
        .await
        .unwrap();
    let v = ready().await;
    assert_eq!(v["deployments"]["down"], 2, "{v}");
    assert_eq!(v["deployments"]["up"], 0);
    assert_eq!(v["status"], "degraded");
}
