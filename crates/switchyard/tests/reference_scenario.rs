//! The brief's reference setup end to end: the user's own LiteLLM config file (only the host
//! changed), the simulator standing in for their Ollama VM, in both deployment modes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::scenario;

#[tokio::test]
async fn reference_scenario_in_one_process() {
    let sim = common::reference_ollama().await;
    let config = common::config_from(&common::seed_config_text(&sim.base_url()));
    let gw = common::serve(config).await;
    scenario::run(&format!("http://{}", gw.addr), &sim).await;
}

#[tokio::test]
async fn reference_scenario_with_gateway_and_router_as_processes() {
    let sim = common::reference_ollama().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, common::seed_config_text(&sim.base_url())).unwrap();
    let path = path.to_str().unwrap();
    let router =
        common::spawn_switchyard(&["router", "--config", path, "--listen", "127.0.0.1:0"]).await;
    let router_url = format!("http://{}", router.addr);
    let gateway = common::spawn_switchyard(&[
        "gateway",
        "--config",
        path,
        "--listen",
        "127.0.0.1:0",
        "--router",
        &router_url,
    ])
    .await;
    scenario::run(&gateway.url(""), &sim).await;
}
