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
    let prober_metrics = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let _prober = common::spawn_switchyard_env(
        &[
            "prober",
            "--config",
            path,
            "--metrics-listen",
            &prober_metrics,
        ],
        &env,
    )
    .await;
    let metrics_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let metrics_addr = format!("127.0.0.1:{metrics_port}");
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
            "--metrics-listen",
            &metrics_addr,
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
    // The prober's own /metrics says so too.
    let prober_page = http
        .get(format!("http://{prober_metrics}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        prober_page
            .contains("switchyard_prober_deployment_up{deployment=\"local-small/llama3.2:1b\"} 1"),
        "{prober_page}"
    );
    assert!(
        prober_page.contains("switchyard_prober_leader 1"),
        "{prober_page}"
    );
    assert!(prober_page.trim_end().ends_with("# EOF"));
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
    // The router process serves its own metrics page.
    let page = http
        .get(format!("http://{metrics_addr}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(r#"switchyard_requests_total{group="local-small",status="ok"} 6"#),
        "{page}"
    );
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

async fn usage_count(http: &reqwest::Client, base: &str) -> Option<Vec<Value>> {
    let v: Value = http
        .get(format!("{base}/v1/usage?limit=10000"))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    v["data"].as_array().cloned()
}

#[tokio::test]
async fn no_record_is_lost_when_the_ledger_or_the_router_restarts() {
    let sim = common::reference_ollama().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, common::seed_config_text(&sim.base_url())).unwrap();
    let path = path.to_str().unwrap();
    let ledger_dir = dir.path().join("ledger");
    let ledger_data = ledger_dir.to_str().unwrap();
    let router_dir = dir.path().join("router");
    let router_data = router_dir.to_str().unwrap();

    let mut ledger = common::spawn_switchyard(&[
        "ledger",
        "--config",
        path,
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        ledger_data,
    ])
    .await;
    let ledger_addr = ledger.addr.to_string();
    let ledger_url = format!("http://{ledger_addr}");
    let env = [("SWITCHYARD__LEDGER__ADDRESS", ledger_url.as_str())];
    let router_args = [
        "router",
        "--config",
        path,
        "--listen",
        "127.0.0.1:0",
        "--no-prober",
        "--data-dir",
        router_data,
    ];
    let mut router = common::spawn_switchyard_env(&router_args, &env).await;
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
    let http = common::client();
    let base = gateway.url("");
    let send = |i: usize| {
        let http = http.clone();
        let url = format!("{base}/v1/chat/completions");
        async move {
            let r = http
                .post(url)
                .json(&common::chat_body(
                    "local-small",
                    &format!("request {i} [[tokens=3]]"),
                    i.is_multiple_of(2),
                ))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "request {i}");
            r.text().await.unwrap();
        }
    };

    // 200 requests; the ledger is killed after 60 and restarted (same port) after 140.
    for i in 0..200 {
        if i == 60 {
            ledger.child.kill().await.unwrap();
        }
        if i == 140 {
            ledger = common::spawn_switchyard(&[
                "ledger",
                "--config",
                path,
                "--listen",
                &ledger_addr,
                "--data-dir",
                ledger_data,
            ])
            .await;
        }
        send(i).await;
    }
    common::eventually(30, "200 records in the ledger", || async {
        usage_count(&http, &base)
            .await
            .is_some_and(|r| r.len() == 200)
    })
    .await;
    let records = usage_count(&http, &base).await.unwrap();
    assert!(
        records
            .iter()
            .all(|r| r["completion_tokens"] == 3 && r["status"] == "ok")
    );

    // Now the router goes away with records still spooled: ledger down, 20 requests, router
    // stopped gracefully, ledger back, router back — the new router delivers the spool.
    ledger.child.kill().await.unwrap();
    for i in 200..220 {
        send(i).await;
    }
    common::signal(&router.child, "TERM");
    let status = router.child.wait().await.unwrap();
    assert!(
        status.success(),
        "the router should exit cleanly on SIGTERM: {status}"
    );
    let _ledger = common::spawn_switchyard(&[
        "ledger",
        "--config",
        path,
        "--listen",
        &ledger_addr,
        "--data-dir",
        ledger_data,
    ])
    .await;
    let router_addr = router.addr.to_string();
    let _router = common::spawn_switchyard_env(
        &[
            "router",
            "--config",
            path,
            "--listen",
            &router_addr,
            "--no-prober",
            "--data-dir",
            router_data,
        ],
        &env,
    )
    .await;
    common::eventually(30, "220 records in the ledger", || async {
        usage_count(&http, &base)
            .await
            .is_some_and(|r| r.len() == 220)
    })
    .await;
    let records = usage_count(&http, &base).await.unwrap();
    let mut ids: Vec<&str> = records
        .iter()
        .map(|r| r["request_id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 220, "every request exactly once");
}

#[tokio::test]
async fn two_router_replicas_share_least_busy_counts() {
    if !common::redis_available().await {
        eprintln!("skipped: Redis not reachable at 127.0.0.1:6379");
        return;
    }
    use switchyard_sim::{Fault, FaultRule, SimConfig, SimHandle, SimModel};
    let host1 = SimHandle::start(SimConfig::ollama(vec![SimModel::new("llama3.2:1b", 8192)]))
        .await
        .unwrap();
    let host2 = SimHandle::start(SimConfig::ollama(vec![SimModel::new("llama3.2:1b", 8192)]))
        .await
        .unwrap();
    let text = format!(
        r#"
model_list:
  - model_name: g
    litellm_params: {{model: "ollama/llama3.2:1b", api_base: "{}", max_tokens: 2048}}
    model_info: {{id: host1}}
  - model_name: g
    litellm_params: {{model: "ollama/llama3.2:1b", api_base: "{}", max_tokens: 2048}}
    model_info: {{id: host2}}
router_settings: {{routing_strategy: least-busy}}
state: {{redis_url: "redis://127.0.0.1:6379", key_prefix: "{}"}}
"#,
        host1.base_url(),
        host2.base_url(),
        common::unique_prefix()
    );
    let replica_a = common::serve(common::config_from(&text)).await;
    let replica_b = common::serve(common::config_from(&text)).await;
    let http = common::client();

    // Replica A: a slow request that holds host1 (first in order while both are idle).
    host1.add_fault(FaultRule::for_model(
        "llama3.2:1b",
        Fault::SlowFirstByte(std::time::Duration::from_secs(2)),
        Some(1),
    ));
    let slow = tokio::spawn({
        let http = http.clone();
        let url = replica_a.url("/v1/chat/completions");
        async move {
            http.post(url)
                .json(&common::chat_body("g", "slow one", false))
                .send()
                .await
                .unwrap()
        }
    });
    common::eventually(5, "host1 holds the slow request", || async {
        host1.request_count("llama3.2:1b") == 1
    })
    .await;

    // Replica B sees host1 busy through Redis and sends new work to host2.
    let r = http
        .post(replica_b.url("/v1/chat/completions"))
        .json(&common::chat_body("g", "quick one", false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-switchyard-deployment"], "host2");
    assert_eq!(host2.request_count("llama3.2:1b"), 1);
    let slow = slow.await.unwrap();
    assert_eq!(slow.headers()["x-switchyard-deployment"], "host1");
}
