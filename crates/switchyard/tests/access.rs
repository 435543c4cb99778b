//! Access control and honest status codes (issue 16): a key's `tpm_limit` holds under a parallel
//! burst (memory and Redis limiters), its allow-list reaches `/v1/explain`, `/v1/models` and
//! `/metrics`, an allowed group cooling down is a 5xx (never 403), and every route reads a JSON
//! body whatever its content type and answers bad input in OpenAI's error shape.
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

async fn serve_text(text: &str, dir: &std::path::Path) -> common::Serve {
    common::serve_with(
        common::config_from(text),
        switchyard::ServeOptions {
            data_dir: Some(dir.to_path_buf()),
            embedded_prober: Some(false),
            ..Default::default()
        },
    )
    .await
}

async fn generate(http: &reqwest::Client, base: &str, body: Value) -> String {
    let r = http
        .post(format!("{base}/key/generate"))
        .bearer_auth(MASTER)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    v["key"].as_str().unwrap().to_string()
}

fn assert_openai_error(v: &Value) {
    assert!(v["error"]["message"].is_string(), "{v}");
    assert!(v["error"]["type"].is_string(), "{v}");
}

/// 50 requests at once against `tpm_limit: 100`: the tokens the admitted ones use stay within
/// the limit (before, all 50 were admitted, since tokens were only counted once answers ended).
async fn burst(gw: &common::Serve) {
    let http = common::client();
    let base = format!("http://{}", gw.addr);
    let key = generate(&http, &base, json!({"tpm_limit": 100})).await;
    let url = gw.url("/v1/chat/completions");
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let (http, url, key) = (http.clone(), url.clone(), key.clone());
            tokio::spawn(async move {
                let mut body =
                    common::chat_body("local-small", &format!("b{i} [[tokens=5]]"), false);
                body["max_tokens"] = 20.into();
                let r = http
                    .post(&url)
                    .bearer_auth(&key)
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                let status = r.status().as_u16();
                (status, r.json::<Value>().await.unwrap())
            })
        })
        .collect();
    let (mut admitted, mut limited, mut used) = (0, 0, 0);
    for t in tasks {
        let (status, v) = t.await.unwrap();
        match status {
            200 => {
                admitted += 1;
                used += v["usage"]["total_tokens"].as_u64().unwrap();
            }
            429 => {
                assert_eq!(v["error"]["code"], "rate_limit_exceeded", "{v}");
                limited += 1;
            }
            s => panic!("unexpected {s}: {v}"),
        }
    }
    assert!(admitted >= 1, "nothing admitted");
    assert_eq!(admitted + limited, 50);
    assert!(
        used <= 100,
        "{admitted} of 50 admitted used {used} tokens against tpm_limit 100"
    );
}

#[tokio::test]
async fn a_tpm_limit_holds_under_a_parallel_burst_in_memory() {
    let sim = common::reference_ollama().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = serve_text(&config_text(&sim.base_url()), dir.path()).await;
    burst(&gw).await;
}

#[tokio::test]
async fn a_tpm_limit_holds_under_a_parallel_burst_in_redis() {
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
    let gw = serve_text(&text, dir.path()).await;
    burst(&gw).await;
    // The window really lives in Redis.
    let keys = redis_keys(&format!("{prefix}*")).await;
    assert!(keys.contains(":tpm"), "no TPM window in Redis: {keys}");
}

/// The raw reply of `KEYS pattern`.
async fn redis_keys(pattern: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect("127.0.0.1:6379")
        .await
        .unwrap();
    s.write_all(format!("KEYS {pattern}\r\n").as_bytes())
        .await
        .unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let n = s.read(&mut buf).await.unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[tokio::test]
async fn a_keys_allow_list_reaches_explain_models_and_metrics() {
    let sim = common::reference_ollama().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = serve_text(&config_text(&sim.base_url()), dir.path()).await;
    let base = format!("http://{}", gw.addr);
    let http = common::client();
    let key = generate(&http, &base, json!({"models": ["local-small"]})).await;

    // Explain: 403 for a group the key may not use.
    let r = http
        .post(gw.url("/v1/explain"))
        .bearer_auth(&key)
        .json(&common::chat_body("local-medium", "hi", false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "model_not_allowed", "{v}");

    // For its own group, fallbacks it may not use are excluded, with the reason.
    let v: Value = http
        .post(gw.url("/v1/explain"))
        .bearer_auth(&key)
        .json(&common::chat_body("local-small", "hi", false))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let deployments = v["deployments"].as_array().unwrap();
    let candidates: Vec<&Value> = deployments
        .iter()
        .filter(|d| d["verdict"] == "candidate")
        .collect();
    assert_eq!(candidates.len(), 1, "{v}");
    assert_eq!(candidates[0]["group"], "local-small", "{v}");
    for group in ["local-medium", "local-large"] {
        let d = deployments
            .iter()
            .find(|d| d["group"] == group)
            .unwrap_or_else(|| panic!("{group} not shown: {v}"));
        assert_eq!(d["verdict"], "excluded", "{v}");
        assert!(d["reason"].as_str().unwrap().contains("allow-list"), "{v}");
    }
    // The master key's plan is not cut.
    let v: Value = http
        .post(gw.url("/v1/explain"))
        .bearer_auth(MASTER)
        .json(&common::chat_body("local-small", "hi", false))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let n = v["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["verdict"] == "candidate")
        .count();
    assert_eq!(n, 3, "{v}");

    // Models: only its groups, and only OpenAI's fields.
    let v: Value = http
        .get(gw.url("/v1/models"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let data = v["data"].as_array().unwrap();
    assert_eq!(data.len(), 1, "{v}");
    assert_eq!(data[0]["id"], "local-small");
    let text = v.to_string();
    for hidden in ["deployments", "llama3.2", "fallbacks", "health"] {
        assert!(
            !text.contains(hidden),
            "{hidden} shown to a virtual key: {v}"
        );
    }
    let r = http
        .get(gw.url("/v1/models/local-medium"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_openai_error(&r.json().await.unwrap());
    let v: Value = http
        .get(gw.url("/v1/models/local-small"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["id"], "local-small");
    assert!(v.get("deployments").is_none(), "{v}");
    // The master key sees everything.
    let v: Value = http
        .get(gw.url("/v1/models"))
        .bearer_auth(MASTER)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["data"].as_array().unwrap().len(), 3);
    assert!(v["data"][0]["deployments"].is_array(), "{v}");

    // Metrics: every group's traffic, so like usage reports, master key only.
    let r = http
        .get(gw.url("/metrics"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_openai_error(&r.json().await.unwrap());
    let r = http
        .get(gw.url("/metrics"))
        .bearer_auth(MASTER)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn an_allowed_group_cooling_down_is_an_availability_error_not_a_permission_error() {
    let sim = common::reference_ollama().await;
    let dir = tempfile::tempdir().unwrap();
    // One failure cools a deployment down for a minute.
    let text = config_text(&sim.base_url()).replace(
        "  num_retries: 2\n",
        "  num_retries: 0\n  allowed_fails: 0\n  cooldown_time: 60\n",
    );
    let gw = serve_text(&text, dir.path()).await;
    let base = format!("http://{}", gw.addr);
    let http = common::client();
    let key = generate(&http, &base, json!({"models": ["local-small"]})).await;
    let url = gw.url("/v1/chat/completions");
    sim.add_fault(FaultRule::for_model(
        "llama3.2:1b",
        Fault::Status {
            code: 500,
            message: "down".into(),
        },
        None,
    ));
    let send = |text: &'static str| {
        let (http, url, key) = (http.clone(), url.clone(), key.clone());
        async move {
            http.post(&url)
                .bearer_auth(&key)
                .json(&common::chat_body("local-small", text, false))
                .send()
                .await
                .unwrap()
        }
    };
    let r = send("first").await;
    assert!(r.status().is_server_error(), "{}", r.status());
    // Cooling down now: still the availability of a group the key may use, not policy; the
    // cooling deployment is tried (a third failure in a row would mark it down, which fails
    // fast with 503).
    let r = send("second").await;
    let status = r.status();
    let attempts = r.headers().get("x-switchyard-attempts").cloned();
    let v: Value = r.json().await.unwrap();
    assert!(status.is_server_error(), "{status}: {v}");
    assert_ne!(v["error"]["code"], "model_not_allowed", "{v}");
    assert_eq!(attempts.unwrap(), "1", "{v}");
    // Back up while still cooling: it is tried anyway (nothing else may serve this key).
    sim.clear_faults();
    let r = send("third").await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["x-switchyard-deployment"],
        "local-small/llama3.2:1b"
    );
}

#[tokio::test]
async fn every_route_reads_json_whatever_the_content_type_and_answers_errors_as_openai_does() {
    let sim = common::reference_ollama().await;
    let dir = tempfile::tempdir().unwrap();
    let gw = serve_text(&config_text(&sim.base_url()), dir.path()).await;
    let http = common::client();
    let body = json!({"key_alias": "curl"}).to_string();

    // README's curl example sends no content type; `curl -d` sends a form type.
    for ct in [
        None,
        Some("application/x-www-form-urlencoded"),
        Some("text/plain"),
    ] {
        let mut r = http
            .post(gw.url("/key/generate"))
            .bearer_auth(MASTER)
            .body(body.clone());
        if let Some(ct) = ct {
            r = r.header("content-type", ct);
        }
        let r = r.send().await.unwrap();
        assert_eq!(r.status(), 200, "content type {ct:?}");
        let v: Value = r.json().await.unwrap();
        assert!(v["key"].as_str().unwrap().starts_with("sk-"), "{v}");
    }
    let chat = common::chat_body("local-small", "hi", false).to_string();
    let r = http
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(MASTER)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(chat)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Malformed JSON, to every JSON route, with or without a content type: 400 in OpenAI's shape.
    for path in [
        "/key/generate",
        "/key/update",
        "/key/delete",
        "/v1/chat/completions",
        "/v1/explain",
    ] {
        for ct in [
            None,
            Some("application/json"),
            Some("application/x-www-form-urlencoded"),
        ] {
            let mut r = http
                .post(gw.url(path))
                .bearer_auth(MASTER)
                .body("{\"models\": [");
            if let Some(ct) = ct {
                r = r.header("content-type", ct);
            }
            let r = r.send().await.unwrap();
            assert_eq!(r.status(), 400, "{path} {ct:?}");
            let v: Value = r.json().await.expect("a JSON error body");
            assert_openai_error(&v);
            assert_eq!(v["error"]["type"], "invalid_request_error", "{v}");
        }
    }

    // A bad query string and a bad path parameter: 400 in OpenAI's shape, not plain text.
    for path in ["/key/info?key=a&key=b", "/v1/models/%FF"] {
        let r = http
            .get(gw.url(path))
            .bearer_auth(MASTER)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{path}");
        let v: Value = r.json().await.expect("a JSON error body");
        assert_openai_error(&v);
    }
}
