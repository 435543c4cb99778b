//! Model discovery against the simulator: the catalog a prober builds from Ollama's `/api/tags`
//! and `/api/show` (and a llama.cpp server's `/v1/models` and `/props`), written to the store
//! only when it changes, and followed by watchers in memory and through Redis.

use std::time::Duration;

use switchyard_core::config::{Catalog, Provider, load_str};
use switchyard_health::{HealthStore, MemoryStore, Prober, ProberSettings, RedisStore};
use switchyard_sim::{SimConfig, SimHandle, SimModel};

use crate::common;

fn settings() -> ProberSettings {
    ProberSettings {
        interval: Duration::from_millis(50),
        jitter: Duration::ZERO,
        timeout: Duration::from_millis(500),
        ..ProberSettings::default()
    }
}

fn config(base: &str, provider: &str) -> switchyard_core::config::Config {
    let text = format!(
        "model_list:\n  - model_name: \"*\"\n    litellm_params: {{model: \"{provider}/*\", api_base: \"{base}\"}}\n"
    );
    load_str(
        "t.yaml",
        &text,
        None,
        &std::collections::HashMap::<String, String>::new(),
    )
    .unwrap()
}

async fn ollama_sim() -> SimHandle {
    let mut embed = SimModel::new("nomic-embed-text", 8192);
    embed.architecture = "nomic-bert".into();
    embed.capabilities = Some(vec!["embedding".into()]);
    SimHandle::start(SimConfig::ollama(vec![
        SimModel::new("llama3.2:1b", 131_072),
        embed,
    ]))
    .await
    .unwrap()
}

fn names(c: &Catalog) -> Vec<String> {
    c.hosts
        .values()
        .flat_map(|h| h.models.iter().map(|m| m.name.clone()))
        .collect()
}

#[tokio::test]
async fn ollama_models_windows_and_capabilities() {
    let sim = ollama_sim().await;
    let store = MemoryStore::new();
    let prober = Prober::for_config(
        &config(&sim.base_url(), "ollama"),
        store.clone(),
        settings(),
    )
    .unwrap();
    let c = prober.discover_once().await.unwrap();
    let host = c.host(Provider::Ollama, &sim.base_url()).unwrap();
    assert_eq!(host.models.len(), 2);
    let llama = &host.models[0];
    assert_eq!(llama.name, "llama3.2:1b");
    assert_eq!(llama.context_length, Some(131_072));
    assert_eq!(
        llama.context_source.as_deref(),
        Some("/api/show llama.context_length")
    );
    assert_eq!(llama.family.as_deref(), Some("llama"));
    assert_eq!(llama.capabilities, ["completion", "tools"]);
    let embed = &host.models[1];
    assert_eq!(embed.name, "nomic-embed-text:latest");
    assert_eq!(embed.context_length, Some(8192));
    assert!(embed.is_embedding());
    // Written to the store.
    let stored = HealthStore::from(store).catalog().await.unwrap().unwrap();
    assert_eq!(stored, c);
}

#[tokio::test]
async fn pulls_and_removals_reach_a_memory_watcher_and_a_dead_host_keeps_its_models() {
    let sim = ollama_sim().await;
    let store: HealthStore = MemoryStore::new().into();
    let prober = Prober::for_config(
        &config(&sim.base_url(), "ollama"),
        store.clone(),
        settings(),
    )
    .unwrap();
    let mut watch = store.watch_catalog(Duration::from_millis(20));
    prober.discover_once().await.unwrap();
    assert_eq!(names(&watch.next().await.unwrap()).len(), 2);

    sim.pull_model(SimModel::new("qwen3:8b", 40_960));
    prober.discover_once().await.unwrap();
    let c = watch.next().await.unwrap();
    assert_eq!(
        names(&c),
        ["llama3.2:1b", "nomic-embed-text:latest", "qwen3:8b"]
    );
    assert!(sim.remove_model("llama3.2:1b"));
    prober.discover_once().await.unwrap();
    let c = watch.next().await.unwrap();
    assert_eq!(names(&c), ["nomic-embed-text:latest", "qwen3:8b"]);

    // A host that stops answering keeps what it listed.
    let base = sim.base_url();
    sim.shutdown().await;
    let after = prober.discover_once().await.unwrap();
    assert_eq!(names(&after), ["nomic-embed-text:latest", "qwen3:8b"]);
    assert!(after.host(Provider::Ollama, &base).is_some());
}

#[tokio::test]
async fn llamacpp_window_comes_from_props() {
    let mut m = SimModel::new("smollm2", 8192);
    m.n_ctx = Some(4096);
    let sim = SimHandle::start(SimConfig::llamacpp(m)).await.unwrap();
    let prober = Prober::for_config(
        &config(&sim.base_url(), "openai"),
        MemoryStore::new(),
        settings(),
    )
    .unwrap();
    let c = prober.discover_once().await.unwrap();
    let host = c.host(Provider::OpenAi, &sim.base_url()).unwrap();
    assert_eq!(host.models.len(), 1);
    assert_eq!(host.models[0].context_length, Some(4096));
    assert_eq!(
        host.models[0].context_source.as_deref(),
        Some("/props n_ctx")
    );
}

#[tokio::test]
async fn a_redis_watcher_sees_the_catalog_once_per_change() {
    if !common::redis_up().await {
        return;
    }
    let prefix = common::unique_prefix("discovery");
    let sim = ollama_sim().await;
    let store: HealthStore = RedisStore::new(common::REDIS_URL, &prefix).unwrap().into();
    let prober = Prober::for_config(
        &config(&sim.base_url(), "ollama"),
        store.clone(),
        settings(),
    )
    .unwrap();
    let reader: HealthStore = RedisStore::new(common::REDIS_URL, &prefix).unwrap().into();
    assert!(reader.catalog().await.unwrap().is_none());
    let mut watch = reader.watch_catalog(Duration::from_millis(20));
    let first = prober.discover_once().await.unwrap();
    assert_eq!(watch.next().await.unwrap(), first);
    sim.pull_model(SimModel::new("qwen3:8b", 40_960));
    prober.discover_once().await.unwrap();
    let second = watch.next().await.unwrap();
    assert_eq!(names(&second).len(), 3);
    // A new prober (another replica, or a restart) starts from the stored catalog.
    let again = Prober::for_config(&config(&sim.base_url(), "ollama"), store, settings()).unwrap();
    assert_eq!(again.discover_once().await.unwrap(), second);
    common::cleanup(&prefix).await;
}
