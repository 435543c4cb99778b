//! What browser and non-chat clients meet at the HTTP surface: the Responses API over the router,
//! CORS preflights, and unknown routes counted under one label.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use serde_json::{Value, json};

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
