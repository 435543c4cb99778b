//! Bad input always gets a clear OpenAI-shaped error with the right status — never a panic or a
//! hang — and never reaches a backend.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use serde_json::{Value, json};

async fn post_raw(gw: &common::Serve, body: impl Into<reqwest::Body>, ct: &str) -> (u16, Value) {
    let resp = common::client()
        .post(gw.url("/v1/chat/completions"))
        .header("content-type", ct)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let v: Value = resp.json().await.unwrap();
    (status, v)
}

fn assert_openai_error(v: &Value) {
    let e = &v["error"];
    assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
    assert!(e["type"].is_string(), "{v}");
    assert!(e.get("param").is_some() && e.get("code").is_some(), "{v}");
}

#[tokio::test]
async fn malformed_and_invalid_requests() {
    let sim = common::reference_ollama().await;
    let mut text = common::seed_config_text(&sim.base_url());
    text.push_str("gateway:\n  max_body_bytes: 100000\n");
    let gw = common::serve(common::config_from(&text)).await;
    let j = "application/json";

    let cases: Vec<(&str, String, u16, &str)> = vec![
        ("not json", "{\"model\": ".into(), 400, "not valid JSON"),
        ("empty body", "".into(), 400, "empty"),
        ("missing messages", json!({"model": "local-small"}).to_string(), 400, "messages"),
        ("missing model", json!({"messages": [{"role": "user", "content": "hi"}]}).to_string(), 400, "model"),
        ("wrong type", json!({"model": "local-small", "messages": "hi"}).to_string(), 400, "messages"),
        ("bad role", json!({"model": "local-small", "messages": [{"role": "bot", "content": "hi"}]}).to_string(), 400, "messages[0].role"),
        ("empty messages", json!({"model": "local-small", "messages": []}).to_string(), 400, "at least one message"),
        ("bad temperature", json!({"model": "local-small", "messages": [{"role": "user", "content": "hi"}], "temperature": 7}).to_string(), 400, "temperature"),
        ("max_tokens zero", json!({"model": "local-small", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 0}).to_string(), 400, "max_tokens"),
        ("negative max_tokens", json!({"model": "local-small", "messages": [{"role": "user", "content": "hi"}], "max_tokens": -5}).to_string(), 400, "max_tokens"),
        ("unknown group", json!({"model": "gpt-4", "messages": [{"role": "user", "content": "hi"}]}).to_string(), 404, "gpt-4"),
        ("max_tokens larger than any window", json!({"model": "local-small", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 100000}).to_string(), 400, "context window"),
    ];
    for (name, body, status, needle) in cases {
        let (got, v) = post_raw(&gw, body, j).await;
        assert_eq!(got, status, "{name}: {v}");
        assert_openai_error(&v);
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(msg.contains(needle), "{name}: {msg:?} lacks {needle:?}");
    }

    let (got, v) = post_raw(&gw, "hi", "text/plain").await;
    assert_eq!(got, 400, "{v}");
    assert_openai_error(&v);

    let huge = json!({"model": "local-small", "messages": [{"role": "user", "content": "x".repeat(200_000)}]}).to_string();
    let (got, v) = post_raw(&gw, huge, j).await;
    assert_eq!(got, 413, "{v}");
    assert_openai_error(&v);

    // Unknown routes answer in the same shape.
    let resp = common::client()
        .get(gw.url("/v1/nothing"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert_openai_error(&resp.json().await.unwrap());

    assert!(sim.requests().is_empty(), "bad input reached a backend");
}

#[tokio::test]
async fn models_health_and_explain() {
    let sim = common::reference_ollama().await;
    let gw = common::serve(common::config_from(&common::seed_config_text(
        &sim.base_url(),
    )))
    .await;
    let http = common::client();

    let v: Value = http
        .get(gw.url("/v1/models"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["object"], "list");
    let ids: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["local-small", "local-medium", "local-large"]);
    assert_eq!(v["data"][0]["context_window"], 2048);

    let r = http.get(gw.url("/health/liveness")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = http.get(gw.url("/health/readiness")).send().await.unwrap();
    assert_eq!(r.status(), 200);

    let v: Value = http
        .post(gw.url("/v1/explain"))
        .json(&common::chat_body(
            "local-small",
            &common::words(1600),
            false,
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let deps = v["deployments"].as_array().unwrap();
    let first = deps.iter().find(|d| d["rank"] == 1).unwrap();
    assert_eq!(first["group"], "local-medium");
    let small = deps.iter().find(|d| d["group"] == "local-small").unwrap();
    assert_eq!(small["verdict"], "excluded");
    assert!(small["reason"].as_str().unwrap().contains("window 2048"));
    assert!(sim.requests().is_empty(), "explain must not call a backend");
}

#[tokio::test]
async fn more_messages_than_gateway_max_messages_get_400_naming_the_limit() {
    let sim = common::reference_ollama().await;
    let mut text = common::seed_config_text(&sim.base_url());
    text.push_str("gateway:\n  max_messages: 3\n");
    let gw = common::serve(common::config_from(&text)).await;
    let messages: Vec<serde_json::Value> = (0..4)
        .map(|i| serde_json::json!({"role": "user", "content": format!("m{i}")}))
        .collect();
    let r = common::client()
        .post(gw.url("/v1/chat/completions"))
        .json(&serde_json::json!({"model": "local-small", "messages": messages}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"]["param"], "messages");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("gateway.max_messages"),
        "{v}"
    );
    assert!(sim.requests().is_empty());
}
