//! Virtual keys: issued and managed with the master key, refused when wrong, deleted or expired,
//! limited to their model groups (fallbacks included), to their rate across gateway replicas
//! sharing Redis, and to their token budget as the ledger counts it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use serde_json::{Value, json};
use switchyard_sim::{Fault, FaultRule};

const MASTER: &str = "sk-test-master-key-123";

fn config_text(base: &str) -> String {
    let mut text = common::seed_config_text(base);
    text.push_str(&format!("general_settings:\n  master_key: {MASTER}\n"));
    text
}

async fn serve_with_keys(base: &str, dir: &std::path::Path) -> common::Serve {
    common::serve_with(
        common::config_from(&config_text(base)),
        switchyard::ServeOptions {
            data_dir: Some(dir.to_path_buf()),
            embedded_prober: Some(false),
            ..Default::default()
        },
    )
    .await
}

async fn generate(http: &reqwest::Client, base: &str, body: Value) -> Value {
    let r = http
        .post(format!("{base}/key/generate"))
        .bearer_auth(MASTER)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

async fn chat(
    http: &reqwest::Client,
    url: &str,
    key: &str,
    model: &str,
    text: &str,
) -> reqwest::Response {
    http.post(url)
        .bearer_auth(key)
        .json(&common::chat_body(model, text, false))
        .send()
        .await
        .unwrap()
}

const API_ROUTES: &[(&str, &str)] = &[
    ("POST", "/v1/chat/completions"),
    ("POST", "/chat/completions"),
    ("GET", "/v1/models"),
    ("GET", "/v1/models/local-small"),
    ("POST", "/v1/explain"),
    ("GET", "/v1/usage"),
    ("GET", "/v1/usage/summary"),
    ("GET", "/metrics"),
    ("POST", "/key/generate"),
    ("GET", "/key/info"),
    ("GET", "/key/list"),
    ("POST", "/key/update"),
    ("POST", "/key/delete"),
];

async fn status_everywhere(http: &reqwest::Client, base: &str, key: &str) -> Vec<(String, u16)> {
    let mut out = Vec::new();
    for (method, path) in API_ROUTES {
        let r = http
            .request(method.parse().unwrap(), format!("{base}{path}"))
            .bearer_auth(key)
            .json(&common::chat_body("local-small", "hi", false))
            .send()
            .await
            .unwrap();
        out.push((format!("{method} {path}"), r.status().as_u16()));
    }
    out
}

#[tokio::test]
async fn keys_are_issued_once_and_refused_when_wrong_deleted_or_expired() {
    let sim = common::reference_ollama().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = serve_with_keys(&sim.base_url(), dir.path()).await;
    let base = format!("http://{}", gw.addr);
    let http = common::client();

    let made = generate(
        &http,
        &base,
        json!({"key_alias": "n8n", "metadata": {"team": "lab"}}),
    )
    .await;
    let key = made["key"].as_str().unwrap().to_string();
    assert!(key.starts_with("sk-") && key.len() > 40, "{key}");
    let id = made["key_id"].as_str().unwrap().to_string();

    // The key works, and its usage is recorded under its id, never the key itself.
    let r = chat(
        &http,
        &gw.url("/v1/chat/completions"),
        &key,
        "local-small",
        "hello",
    )
    .await;
    assert_eq!(r.status(), 200);
    // It cannot manage keys or read usage reports.
    let r = http
        .get(format!("{base}/key/list"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // Info by id shows the key's settings but never the key.
    let info: Value = http
        .get(format!("{base}/key/info?key={id}"))
        .bearer_auth(MASTER)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["info"]["key_alias"], "n8n");
    assert_eq!(info["info"]["metadata"]["team"], "lab");
    assert!(!info.to_string().contains(&key));
    let list: Value = http
        .get(format!("{base}/key/list"))
        .bearer_auth(MASTER)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["keys"].as_array().unwrap().len(), 1);
    assert!(!list.to_string().contains(&key));
    // Nor does the database.
    let db = std::fs::read(dir.path().join("switchyard-usage.db")).unwrap();
    assert!(!db.windows(key.len()).any(|w| w == key.as_bytes()));

    // Without a key, with a wrong one: 401 everywhere.
    for wrong in ["", "sk-not-a-key", &format!("{key}x")] {
        for (route, status) in status_everywhere(&http, &base, wrong).await {
            assert_eq!(status, 401, "{route} with {wrong:?}");
        }
    }

    // Deleted: 401 everywhere.
    let r = http
        .post(format!("{base}/key/delete"))
        .bearer_auth(MASTER)
        .json(&json!({"keys": [key]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    for (route, status) in status_everywhere(&http, &base, &key).await {
        assert_eq!(status, 401, "{route} with a deleted key");
    }

    // Expired: 401 everywhere; extended by an update, it works again.
    let made = generate(&http, &base, json!({"expires": 1_000_000_000})).await;
    let old = made["key"].as_str().unwrap().to_string();
    for (route, status) in status_everywhere(&http, &base, &old).await {
        assert_eq!(status, 401, "{route} with an expired key");
    }
    let r = http
        .post(format!("{base}/key/update"))
        .bearer_auth(MASTER)
        .json(&json!({"key": made["key_id"], "duration": "1h"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = chat(
        &http,
        &gw.url("/v1/chat/completions"),
        &old,
        "local-small",
        "hello",
    )
    .await;
    assert_eq!(r.status(), 200);

    // Bad input to the key API is a clear 400.
    for body in [
        json!({"models": ["no-such-group"]}),
        json!({"budget_duration": "soon"}),
        json!({"rpm_limit": -1}),
        json!({"team_id": "x"}),
    ] {
        let r = http
            .post(format!("{base}/key/generate"))
            .bearer_auth(MASTER)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{body}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["type"], "invalid_request_error", "{v}");
    }
}

#[tokio::test]
async fn a_key_limited_to_one_group_never_reaches_another_even_by_fallback() {
    let sim = common::reference_ollama().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = serve_with_keys(&sim.base_url(), dir.path()).await;
    let base = format!("http://{}", gw.addr);
    let http = common::client();
    let key = generate(&http, &base, json!({"models": ["local-small"]})).await["key"]
        .as_str()
        .unwrap()
        .to_string();
    let url = gw.url("/v1/chat/completions");

    for other in ["local-medium", "local-large"] {
        let r = chat(&http, &url, &key, other, "hello").await;
        assert_eq!(r.status(), 403, "{other}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], "model_not_allowed");
    }
    assert_eq!(
        chat(&http, &url, &key, "local-small", "hello")
            .await
            .status(),
        200
    );

    // The small model fails every time: with the master key the request would fall back to
    // local-medium; with this key it must not.
    sim.add_fault(FaultRule::for_model(
        "llama3.2:1b",
        Fault::Status {
            code: 500,
            message: "down".into(),
        },
        None,
    ));
    let before = sim.request_count("llama3.1:8b");
    let r = chat(&http, &url, &key, "local-small", "hello again").await;
    assert!(r.status().is_server_error(), "{}", r.status());
    let v: Value = r.json().await.unwrap();
    let message = v["error"]["message"].as_str().unwrap();
    assert!(message.contains("allow-list"), "{message}");
    assert!(message.contains("local-medium"), "{message}");
    assert_eq!(
        sim.request_count("llama3.1:8b"),
        before,
        "fell back outside the allow-list"
    );
    // A prompt too long for local-small only fits groups the key may not use.
    let r = chat(&http, &url, &key, "local-small", &common::words(3000)).await;
    assert_eq!(r.status(), 403);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "model_not_allowed");
    assert_eq!(sim.request_count("llama3.1:8b"), before);
    // The master key still falls back.
    let r = chat(&http, &url, MASTER, "local-small", "hello master").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-switchyard-group"], "local-medium");
}

#[tokio::test]
async fn a_token_budget_stops_the_key_once_the_ledger_has_it_spent() {
    let sim = common::reference_ollama().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = serve_with_keys(&sim.base_url(), dir.path()).await;
    let base = format!("http://{}", gw.addr);
    let http = common::client();
    let made = generate(
        &http,
        &base,
        json!({"max_budget": 60, "budget_duration": "30d"}),
    )
    .await;
    let (key, id) = (
        made["key"].as_str().unwrap().to_string(),
        made["key_id"].as_str().unwrap().to_string(),
    );
    let url = gw.url("/v1/chat/completions");
    let ledger_total = || {
        let (http, base, id) = (http.clone(), base.clone(), id.clone());
        async move {
            let v: Value = http
                .get(format!("{base}/v1/usage?key={id}&group_by=key"))
                .bearer_auth(MASTER)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v["data"]
                .as_array()
                .and_then(|a| a.first())
                .map(|a| {
                    a["prompt_tokens"].as_u64().unwrap() + a["completion_tokens"].as_u64().unwrap()
                })
                .unwrap_or(0)
        }
    };
    let mut admitted = 0;
    let mut stopped = None;
    for i in 0..30 {
        let total_before = ledger_total().await;
        let r = chat(
            &http,
            &url,
            &key,
            "local-small",
            &format!("request {i} [[tokens=10]]"),
        )
        .await;
        if r.status() == 429 {
            let v: Value = r.json().await.unwrap();
            stopped = Some((total_before, v));
            break;
        }
        assert_eq!(r.status(), 200);
        assert!(
            total_before < 60,
            "admitted with {total_before} of 60 tokens spent"
        );
        admitted += 1;
        // Wait until the ledger has this request, so the next check sees it.
        common::eventually(20, "the ledger records the request", || {
            let t = ledger_total();
            async move { t.await > total_before }
        })
        .await;
    }
    let (total, v) = stopped.expect("the budget never stopped the key");
    assert!(admitted >= 2, "stopped after {admitted}");
    assert!(total >= 60, "stopped at {total} of 60 tokens");
    assert_eq!(v["error"]["code"], "budget_exceeded");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(message.contains("max_budget of 60 tokens"), "{message}");
    // The master key is not limited.
    assert_eq!(
        chat(&http, &url, MASTER, "local-small", "hi")
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn an_rpm_limit_holds_across_two_gateway_replicas_sharing_redis() {
    if !common::redis_available().await {
        eprintln!("skipped: Redis not reachable at 127.0.0.1:6379");
        return;
    }
    let sim = common::reference_ollama().await;
    let dir = tempfile::tempdir().unwrap();
    let prefix = common::unique_prefix();
    let mut text = config_text(&sim.base_url());
    text.push_str(&format!(
        "state: {{redis_url: \"redis://127.0.0.1:6379\", key_prefix: \"{prefix}\"}}\n"
    ));
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, text).unwrap();
    let path = path.to_str().unwrap();
    let data = dir.path().to_str().unwrap();
    let ledger = common::spawn_switchyard(&[
        "ledger",
        "--config",
        path,
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        data,
    ])
    .await;
    let ledger_url = format!("http://{}", ledger.addr);
    let env = [("SWITCHYARD__LEDGER__ADDRESS", ledger_url.as_str())];
    let router = common::spawn_switchyard_env(
        &[
            "router",
            "--config",
            path,
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data,
        ],
        &env,
    )
    .await;
    let router_url = format!("http://{}", router.addr);
    let args = [
        "gateway",
        "--config",
        path,
        "--listen",
        "127.0.0.1:0",
        "--router",
        router_url.as_str(),
    ];
    let a = common::spawn_switchyard_env(&args, &env).await;
    let b = common::spawn_switchyard_env(&args, &env).await;
    let http = common::client();
    let made = generate(
        &http,
        &format!("http://{}", a.addr),
        json!({"rpm_limit": 5}),
    )
    .await;
    let key = made["key"].as_str().unwrap().to_string();

    let (mut ok, mut limited) = (0, 0);
    for i in 0..12 {
        let gw = if i % 2 == 0 { &a } else { &b };
        let r = chat(
            &http,
            &gw.url("/v1/chat/completions"),
            &key,
            "local-small",
            "hi",
        )
        .await;
        match r.status().as_u16() {
            200 => ok += 1,
            429 => {
                let retry: u64 = r.headers()["retry-after"]
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                assert!((1..=60).contains(&retry), "Retry-After {retry}");
                let v: Value = r.json().await.unwrap();
                assert_eq!(v["error"]["code"], "rate_limit_exceeded");
                limited += 1;
            }
            s => panic!("unexpected status {s}"),
        }
    }
    assert!(
        (4..=6).contains(&ok),
        "{ok} requests admitted with rpm_limit 5 over two replicas"
    );
    assert_eq!(ok + limited, 12);
}
