//! With a master key configured, nothing but the health endpoints answers without it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use serde_json::Value;

const KEY: &str = "sk-test-master-key-123";

#[tokio::test]
async fn master_key_guards_every_api_route() {
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
    let chat = common::chat_body("local-small", "hi", false);
    let routes: Vec<(reqwest::Method, &str)> = vec![
        (reqwest::Method::POST, "/v1/chat/completions"),
        (reqwest::Method::POST, "/chat/completions"),
        (reqwest::Method::GET, "/v1/models"),
        (reqwest::Method::GET, "/v1/models/local-small"),
        (reqwest::Method::POST, "/v1/explain"),
        (reqwest::Method::GET, "/v1/usage"),
        (reqwest::Method::GET, "/v1/usage/summary"),
        (reqwest::Method::GET, "/metrics"),
    ];
    for (method, path) in &routes {
        for auth in [
            None,
            Some(("authorization", "Bearer wrong-key")),
            Some(("x-api-key", "wrong-key")),
        ] {
            let mut rb = http.request(method.clone(), gw.url(path)).json(&chat);
            if let Some((h, v)) = auth {
                rb = rb.header(h, v);
            }
            let r = rb.send().await.unwrap();
            assert_eq!(r.status(), 401, "{method} {path} with {auth:?}");
            let v: Value = r.json().await.unwrap();
            assert_eq!(v["error"]["type"], "authentication_error");
        }
        for (h, v) in [
            ("authorization", format!("Bearer {KEY}")),
            ("x-api-key", KEY.to_string()),
        ] {
            let r = http
                .request(method.clone(), gw.url(path))
                .header(h, v)
                .json(&chat)
                .send()
                .await
                .unwrap();
            assert_ne!(r.status(), 401, "{method} {path} with the right key in {h}");
        }
    }
    for path in ["/health/liveness", "/health/readiness"] {
        assert_eq!(
            http.get(gw.url(path)).send().await.unwrap().status(),
            200,
            "{path} stays open"
        );
    }
    // Only the authorised chat requests reached a backend.
    assert_eq!(sim.requests().len(), 4);
}
