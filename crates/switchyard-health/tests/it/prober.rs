//! The prober against the simulator: what it reads from Ollama and llama.cpp, and when a
//! deployment goes Down.

use std::collections::HashMap;
use std::time::Duration;

use switchyard_core::config::Provider;
use switchyard_health::{MemoryStore, ProbeTarget, Prober, ProberSettings, Source, Status};
use switchyard_sim::{SimConfig, SimHandle, SimModel};

fn settings() -> ProberSettings {
    ProberSettings {
        interval: Duration::from_millis(50),
        jitter: Duration::ZERO,
        timeout: Duration::from_millis(500),
        ..ProberSettings::default()
    }
}

async fn load_model(base: &str, model: &str, num_ctx: u32) {
    let resp = reqwest::Client::new()
        .post(format!("{base}/api/generate"))
        .json(
            &serde_json::json!({"model": model, "prompt": "hi", "stream": false,
                                  "options": {"num_ctx": num_ctx}}),
        )
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
}

#[tokio::test]
async fn ollama_up_with_contexts_then_down_after_shutdown() {
    let sim = SimHandle::start(SimConfig::ollama(vec![
        SimModel::new("llama3.2:1b", 131_072),
        SimModel::new("mistral:7b", 32_768),
    ]))
    .await
    .unwrap();
    let base = sim.base_url();
    load_model(&base, "llama3.2:1b", 2048).await;
    let target = ProbeTarget::new(
        &base,
        Provider::Ollama,
        &[
            ("small", "llama3.2:1b"),
            ("large", "mistral:7b"),
            ("gone", "qwen:0.5b"),
        ],
    );
    let store = MemoryStore::new();
    let prober = Prober::new(vec![target], store.clone(), settings()).unwrap();

    let states = prober.probe_once().await;
    let small = &states["small"];
    assert_eq!(small.status, Status::Up);
    assert!(small.latency_ms.is_some());
    assert_eq!(small.model_present, Some(true));
    assert_eq!(small.loaded, Some(true));
    assert_eq!(small.loaded_context, Some(2048));
    assert_eq!(small.trained_context, Some(131_072));
    assert_eq!(small.source, Source::Probe);
    let large = &states["large"];
    assert_eq!(large.status, Status::Up);
    assert_eq!(large.loaded, Some(false));
    assert_eq!(large.trained_context, Some(32_768));
    let gone = &states["gone"];
    assert_eq!(gone.status, Status::Down, "model missing from /api/tags");
    assert_eq!(gone.model_present, Some(false));
    // What was probed is what the store holds.
    assert_eq!(store.snapshot(), states);

    sim.shutdown().await;
    let states = prober.probe_once().await;
    for id in ["small", "large"] {
        let s = &states[id];
        assert_eq!(s.status, Status::Down, "{id}");
        assert_eq!(s.consecutive_failures, 1);
        assert!(s.trained_context.is_some(), "trained context is kept");
    }
    assert_eq!(store.get("small").status, Status::Down);
    assert_eq!(prober.rounds(), 2);
}

#[tokio::test]
async fn show_is_asked_once_per_digest() {
    let sim = SimHandle::start(SimConfig::ollama(vec![SimModel::new(
        "llama3.2:1b",
        131_072,
    )]))
    .await
    .unwrap();
    let target = ProbeTarget::new(&sim.base_url(), Provider::Ollama, &[("a", "llama3.2:1b")]);
    let prober = Prober::new(vec![target], MemoryStore::new(), settings()).unwrap();
    let first = prober.probe_once().await;
    assert_eq!(first["a"].trained_context, Some(131_072));
    let second = prober.probe_once().await;
    assert_eq!(second["a"].trained_context, Some(131_072));
    // Nothing routing acts on changed, so the second round did not rewrite the state.
    assert_eq!(
        prober.store().get("a").await.unwrap().updated_ms,
        first["a"].updated_ms
    );
}

#[tokio::test]
async fn llamacpp_reports_slot_and_trained_context() {
    let mut model = SimModel::new("smol", 8192);
    model.n_ctx = Some(2048);
    let sim = SimHandle::start(SimConfig::llamacpp(model)).await.unwrap();
    let target = ProbeTarget::new(&sim.base_url(), Provider::OpenAi, &[("cpp", "smol")]);
    let prober = Prober::new(vec![target], MemoryStore::new(), settings()).unwrap();
    let s = &prober.probe_once().await["cpp"];
    assert_eq!(s.status, Status::Up);
    assert_eq!(s.loaded_context, Some(2048));
    assert_eq!(s.trained_context, Some(8192));
    assert_eq!(s.model_present, Some(true));
    assert!(s.latency_ms.is_some());
    sim.shutdown().await;
    let s = &prober.probe_once().await["cpp"];
    assert_eq!(s.status, Status::Down);
}

#[test]
fn targets_group_deployments_by_host() {
    let yaml = r#"
model_list:
  - model_name: small
    litellm_params: {model: ollama/llama3.2:1b, api_base: "http://gpu:11434", max_tokens: 2048}
  - model_name: medium
    litellm_params: {model: ollama/llama3.1:8b, api_base: "http://gpu:11434/", max_tokens: 8192}
  - model_name: cpp
    litellm_params: {model: openai/smol, api_base: "http://cpu:8080/v1"}
"#;
    let config =
        switchyard_core::config::load_str("t.yaml", yaml, None, &HashMap::<String, String>::new())
            .unwrap();
    let targets = ProbeTarget::from_config(&config);
    assert_eq!(targets.len(), 2, "{targets:#?}");
    assert_eq!(targets[0].api_base, "http://gpu:11434");
    assert_eq!(targets[0].provider, Provider::Ollama);
    let models: Vec<_> = targets[0]
        .deployments
        .iter()
        .map(|d| d.model.as_str())
        .collect();
    assert_eq!(models, ["llama3.2:1b", "llama3.1:8b"]);
    assert_eq!(targets[1].provider, Provider::OpenAi);
    assert_eq!(targets[1].api_base, "http://cpu:8080");
    assert_eq!(targets[1].deployments[0].id, config.deployments[2].id);
}

/// llama-cpp-python's route set as far as the prober meets it: no `/health`, no `/props`, and a
/// `/v1/models` that takes the generation lock (every call is counted: with the server's default
/// `interrupt_requests`, each one would cut a running stream).
#[tokio::test]
async fn a_server_without_health_is_live_and_its_locking_model_list_is_never_asked() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let model_calls = Arc::new(AtomicUsize::new(0));
    let counted = model_calls.clone();
    let app = axum::Router::new().route(
        "/v1/models",
        axum::routing::get(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            async { axum::Json(serde_json::json!({"object": "list", "data": [{"id": "smol"}]})) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let target = ProbeTarget::new(&base, Provider::OpenAi, &[("cpp", "smol")]);
    let prober = Prober::new(vec![target], MemoryStore::new(), settings()).unwrap();
    for _ in 0..3 {
        let states = prober.probe_once().await;
        assert_eq!(states["cpp"].status, Status::Up);
    }
    assert_eq!(model_calls.load(Ordering::SeqCst), 0);
}
