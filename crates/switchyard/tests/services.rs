//! Switchyard as the four services of the design — gateway, router, prober, ledger — each its
//! own process, sharing state through the real Redis, with usage recorded by the ledger.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Stdio;

use serde_json::Value;

async fn models(http: &reqwest::Client, base: &str) -> Value {
    http.get(format!("{base}/v1/models"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn deployment_health(models: &Value, model: &str) -> String {
    models["data"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["deployments"].as_array().unwrap().iter())
        .find(|d| d["model"] == model)
        .map(|d| d["health"].as_str().unwrap().to_string())
        .unwrap_or_default()
}

#[tokio::test]
async fn four_processes_route_around_a_stopped_model_and_account_every_request() {
    if !common::redis_available().await {
        eprintln!("skipped: Redis not reachable at 127.0.0.1:6379");
        return;
    }
    let sim = common::reference_ollama().await;
    let dir = tempfile::tempdir().unwrap();
    let prefix = common::unique_prefix();
    let mut text = common::seed_config_text(&sim.base_url());
    text.push_str(&format!(
        "state: {{redis_url: \"redis://127.0.0.1:6379\", key_prefix: \"{prefix}\"}}\nprober: {{interval: 0.2}}\n"
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
    let _prober = common::spawn_switchyard_env(&["prober", "--config", path], &env).await;
    let router = common::spawn_switchyard_env(
        &[
            "router",
            "--config",
            path,
            "--listen",
            "127.0.0.1:0",
            "--no-prober",
            "--data-dir",
            data,
        ],
        &env,
    )
    .await;
    let router_url = format!("http://{}", router.addr);
    let gateway = common::spawn_switchyard_env(
        &[
            "gateway",
            "--config",
            path,
            "--listen",
            "127.0.0.1:0",
            "--router",
            &router_url,
        ],
        &env,
    )
    .await;
    let base = gateway.url("");
    let http = common::client();

    // The reference scenario, through four processes.
    common::scenario::run(&base, &sim).await;

    // The prober (its own process) sees the 1B model; then the model stops being served.
    common::eventually(20, "the prober reports llama3.2:1b up", || async {
        deployment_health(&models(&http, &base).await, "llama3.2:1b") == "up"
    })
    .await;
    sim.stop_model("llama3.2:1b");
    common::eventually(20, "the prober reports llama3.2:1b down", || async {
        deployment_health(&models(&http, &base).await, "llama3.2:1b") == "down"
    })
    .await;
    let before = sim.request_count("llama3.2:1b");
    let r = http
        .post(format!("{base}/v1/chat/completions"))
        .json(&common::chat_body(
            "local-small",
            "hello after the stop",
            false,
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-switchyard-model"], "llama3.1:8b");
    assert_eq!(
        r.headers()["x-switchyard-attempts"],
        "1",
        "no attempt against the stopped model"
    );
    assert_eq!(sim.request_count("llama3.2:1b"), before);

    // Every request (7, one refused before any backend call) has exactly one ledger record.
    common::eventually(20, "7 usage records in the ledger", || async {
        let v: Value = http
            .get(format!("{base}/v1/usage"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["data"].as_array().map_or(0, Vec::len) == 7
    })
    .await;
    let v: Value = http
        .get(format!("{base}/v1/usage"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut ids: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["request_id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 7);
    let summary: Value = http
        .get(format!("{base}/v1/usage/summary"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let small = summary["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["model"] == "llama3.2:1b")
        .unwrap();
    assert_eq!(small["requests"], 1, "{summary}");
    let csv = http
        .get(format!("{base}/v1/usage?group_by=model&format=csv"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(csv.starts_with("key,requests,"), "{csv}");
}

/// A Redis of this test's own, so stopping it disturbs nobody else.
struct PrivateRedis {
    port: u16,
    child: tokio::process::Child,
}

async fn private_redis() -> Option<PrivateRedis> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let child = tokio::process::Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .ok()?;
    let up = async {
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(5), up)
        .await
        .ok()?;
    Some(PrivateRedis { port, child })
}

#[tokio::test]
async fn requests_survive_redis_going_away_and_readiness_says_so() {
    let Some(mut redis) = private_redis().await else {
        eprintln!("skipped: redis-server cannot be started");
        return;
    };
    let sim = common::reference_ollama().await;
    let mut text = common::seed_config_text(&sim.base_url());
    text.push_str(&format!(
        "state: {{redis_url: \"redis://127.0.0.1:{}\", key_prefix: \"{}\"}}\nrouting: {{strategy: least-busy}}\n",
        redis.port,
        common::unique_prefix()
    ));
    let gw = common::serve(common::config_from(&text)).await;
    let http = common::client();
    let ask = || {
        http.post(gw.url("/v1/chat/completions"))
            .json(&common::chat_body("local-small", "hi", false))
            .send()
    };
    assert_eq!(ask().await.unwrap().status(), 200);
    let ready: Value = http
        .get(gw.url("/health/readiness"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["status"], "ready", "{ready}");

    redis.child.kill().await.unwrap();
    // Requests keep working on local state, and fast (calls to a dead Redis time out quickly).
    for _ in 0..3 {
        let r = tokio::time::timeout(std::time::Duration::from_secs(5), ask())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    common::eventually(10, "readiness reports the degradation", || async {
        let v: Value = http
            .get(gw.url("/health/readiness"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["status"] == "degraded"
    })
    .await;
}
