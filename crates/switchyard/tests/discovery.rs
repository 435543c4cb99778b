//! Model discovery (`model: ollama/*`): a simulated Ollama host's models become groups, with
//! their windows, and follow `ollama pull` / `ollama rm` without a restart, in `serve` and in
//! split mode (the prober publishing the catalog through Redis).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use serde_json::Value;
use switchyard_sim::{SimConfig, SimHandle, SimModel};

/// Five models: four chat models with different trained contexts and one embedding model.
async fn five_models() -> SimHandle {
    let mut embed = SimModel::new("nomic-embed-text", 2048);
    embed.capabilities = Some(vec!["embedding".into()]);
    let mut vision = SimModel::new("gemma3:4b", 131072);
    vision.architecture = "gemma3".into();
    vision.capabilities = Some(vec!["completion".into(), "vision".into(), "tools".into()]);
    SimHandle::start(SimConfig::ollama(vec![
        SimModel::new("llama3.2:1b", 4096),
        SimModel::new("qwen3:8b", 40960),
        SimModel::new("smollm2:135m", 8192),
        vision,
        embed,
    ]))
    .await
    .unwrap()
}

fn wildcard_config(base: &str, extra: &str) -> String {
    format!(
        r#"
model_list:
  - model_name: "ollama/*"
    litellm_params: {{model: "ollama/*", api_base: "{base}"}}
    model_info:
      discovery: {{max_context: 32768, auto_fallbacks: by_context}}
prober: {{interval: 0.1, timeout: 2}}
{extra}"#
    )
}

async fn models(url: &str) -> Vec<Value> {
    let v: Value = common::client()
        .get(url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["data"].as_array().cloned().unwrap_or_default()
}

fn ids(models: &[Value]) -> Vec<String> {
    models
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect()
}

fn find<'a>(models: &'a [Value], id: &str) -> &'a Value {
    models
        .iter()
        .find(|m| m["id"] == id)
        .unwrap_or_else(|| panic!("no {id} in {models:#?}"))
}

async fn chat(url: &str, model: &str) -> reqwest::Response {
    common::client()
        .post(url)
        .json(&common::chat_body(model, "hello there", false))
        .send()
        .await
        .unwrap()
}

/// The five groups, windows, capabilities and chain a five-model host yields.
fn assert_five(m: &[Value]) {
    assert_eq!(
        ids(m),
        [
            "ollama/gemma3:4b",
            "ollama/llama3.2:1b",
            "ollama/nomic-embed-text",
            "ollama/qwen3:8b",
            "ollama/smollm2:135m"
        ]
    );
    let window = |id: &str| find(m, id)["context_window"].as_u64().unwrap();
    assert_eq!(window("ollama/llama3.2:1b"), 4096);
    assert_eq!(window("ollama/smollm2:135m"), 8192);
    assert_eq!(window("ollama/nomic-embed-text"), 2048);
    // Trained for more than max_context: capped.
    assert_eq!(window("ollama/qwen3:8b"), 32768);
    assert_eq!(window("ollama/gemma3:4b"), 32768);
    let gemma = find(m, "ollama/gemma3:4b");
    let d = &gemma["deployments"][0];
    assert!(
        gemma["discovered_from"]
            .as_str()
            .unwrap()
            .starts_with("ollama/* at http://127.0.0.1:"),
        "{gemma:#}"
    );
    assert_eq!(
        d["capabilities"],
        serde_json::json!(["completion", "vision", "tools"])
    );
    assert_eq!(d["family"], "gemma3");
    assert!(
        d["context_window_source"]
            .as_str()
            .unwrap()
            .contains("/api/show gemma3.context_length 131072, capped at 32768 by max_context"),
        "{d:#}"
    );
    // by_context: smallest window first, each falling back to every larger one; ties by name.
    assert_eq!(
        find(m, "ollama/llama3.2:1b")["fallbacks"],
        serde_json::json!(["ollama/smollm2:135m", "ollama/gemma3:4b", "ollama/qwen3:8b"])
    );
    assert_eq!(
        find(m, "ollama/gemma3:4b")["fallbacks"],
        serde_json::json!(["ollama/qwen3:8b"])
    );
    assert_eq!(
        find(m, "ollama/nomic-embed-text")["fallbacks"],
        serde_json::json!([])
    );
}

#[tokio::test]
async fn a_five_model_host_yields_five_groups_from_the_first_request() {
    let sim = five_models().await;
    let gw = common::serve(common::config_from(&wildcard_config(&sim.base_url(), ""))).await;
    // Discovered before serving: no waiting for a probe round.
    let m = models(&gw.url("/v1/models")).await;
    assert_five(&m);
    let r = chat(&gw.url("/v1/chat/completions"), "ollama/llama3.2:1b").await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["x-switchyard-deployment"],
        format!("llama3.2:1b@{}", sim.addr())
    );
    // Ollama's API lists them too, with what the server said.
    let tags: Value = common::client()
        .get(gw.url("/api/tags"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = tags["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"ollama/qwen3:8b"), "{names:?}");
    let show: Value = common::client()
        .post(gw.url("/api/show"))
        .json(&serde_json::json!({"model": "ollama/gemma3:4b"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        show["capabilities"],
        serde_json::json!(["completion", "vision", "tools"])
    );
    // Explain says where the deployment came from.
    let ex: Value = common::client()
        .post(gw.url("/v1/explain"))
        .json(&common::chat_body("ollama/qwen3:8b", "hi", false))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let reason = ex["deployments"][0]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("discovered by ollama/* at") && reason.contains("/api/show"),
        "{ex:#}"
    );
}

#[tokio::test]
async fn pulling_and_removing_models_changes_the_groups_without_a_restart() {
    let sim = five_models().await;
    let gw = common::serve_with(
        common::config_from(&wildcard_config(&sim.base_url(), "")),
        switchyard::ServeOptions::default(),
    )
    .await;
    assert_eq!(models(&gw.url("/v1/models")).await.len(), 5);

    // `ollama pull`, through the simulator's control API.
    let r = common::client()
        .post(format!("{}/_sim/models", sim.base_url()))
        .json(&serde_json::json!({"name": "mistral:7b", "context_length": 16384}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let url = gw.url("/v1/models");
    common::eventually(20, "mistral:7b appears in /v1/models", || async {
        ids(&models(&url).await).contains(&"ollama/mistral:7b".to_owned())
    })
    .await;
    let m = models(&url).await;
    assert_eq!(m.len(), 6);
    assert_eq!(find(&m, "ollama/mistral:7b")["context_window"], 16384);
    // It joined the chain at its window (8192 < 16384 < 32768).
    assert_eq!(
        find(&m, "ollama/smollm2:135m")["fallbacks"],
        serde_json::json!(["ollama/mistral:7b", "ollama/gemma3:4b", "ollama/qwen3:8b"])
    );
    let r = chat(&gw.url("/v1/chat/completions"), "ollama/mistral:7b").await;
    assert_eq!(r.status(), 200);

    // `ollama rm`: the group and its routes go.
    let r = common::client()
        .delete(format!("{}/_sim/models/llama3.2:1b", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    common::eventually(20, "llama3.2:1b leaves /v1/models", || async {
        !ids(&models(&url).await).contains(&"ollama/llama3.2:1b".to_owned())
    })
    .await;
    let r = chat(&gw.url("/v1/chat/completions"), "ollama/llama3.2:1b").await;
    assert_eq!(r.status(), 404);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "model_not_found", "{body:#}");
    assert_eq!(models(&url).await.len(), 5);
}

#[tokio::test]
async fn split_mode_routers_follow_the_catalog_the_prober_publishes() {
    if !common::redis_available().await {
        eprintln!("skipped: no Redis on 127.0.0.1:6379");
        return;
    }
    let sim = five_models().await;
    let prefix = common::unique_prefix();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("switchyard.yaml");
    let extra =
        format!("state: {{redis_url: \"redis://127.0.0.1:6379\", key_prefix: \"{prefix}\"}}\n");
    std::fs::write(&path, wildcard_config(&sim.base_url(), &extra)).unwrap();
    let config = path.to_str().unwrap();
    let _prober = common::spawn_switchyard(&["prober", "--config", config]).await;
    let router = common::spawn_switchyard(&[
        "router",
        "--config",
        config,
        "--listen",
        "127.0.0.1:0",
        "--no-prober",
    ])
    .await;
    let router_url = format!("http://{}", router.addr);
    let gateway = common::spawn_switchyard(&[
        "gateway",
        "--config",
        config,
        "--listen",
        "127.0.0.1:0",
        "--router",
        &router_url,
    ])
    .await;
    let url = gateway.url("/v1/models");
    assert_five(&models(&url).await);

    sim.pull_model(SimModel::new("phi4:14b", 16384));
    common::eventually(30, "phi4:14b reaches the router through Redis", || async {
        ids(&models(&url).await).contains(&"ollama/phi4:14b".to_owned())
    })
    .await;
    assert!(sim.remove_model("qwen3:8b"));
    common::eventually(30, "qwen3:8b leaves the router", || async {
        !ids(&models(&url).await).contains(&"ollama/qwen3:8b".to_owned())
    })
    .await;
    let r = chat(&gateway.url("/v1/chat/completions"), "ollama/qwen3:8b").await;
    assert_eq!(r.status(), 404);
}

/// `switchyard check FILE` (the binary).
async fn check(text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("switchyard.yaml");
    std::fs::write(&path, text).unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["check", path.to_str().unwrap()])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn check_lists_what_was_discovered_and_a_silent_host() {
    let sim = five_models().await;
    let out = check(&wildcard_config(&sim.base_url(), "")).await;
    assert!(
        out.contains("discovery: one group per model the host lists"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "ollama/qwen3:8b (qwen3:8b via ollama at {}): discovered by ollama/* at {} (model_list[0]); chat model (completion, tools), window 32768 from /api/show llama.context_length 40960, capped at 32768 by max_context",
            sim.base_url(),
            sim.base_url()
        )),
        "{out}"
    );
    assert!(out.contains("5 of the host's 5 model(s) taken"), "{out}");
    assert!(
        out.contains(
            "auto_fallbacks: by_context: ollama/llama3.2:1b (4096) -> ollama/smollm2:135m (8192)"
        ),
        "{out}"
    );
    // A host that does not answer (a loopback port nobody listens on) is a warning.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let out = check(&wildcard_config(&format!("http://{closed}"), "")).await;
    assert!(out.contains("Warnings:"), "{out}");
    assert!(
        out.contains(&format!("discovery: ollama http://{closed} did not answer")),
        "{out}"
    );
}
