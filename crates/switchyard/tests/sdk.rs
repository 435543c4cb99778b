//! The official `openai` Python SDK against Switchyard (serve mode + simulator on ephemeral
//! ports). The interpreter comes from `SWITCHYARD_PYTHON` (set by `make test`, which creates the
//! venv); without it the test says it was skipped.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

#[tokio::test]
async fn openai_python_sdk_works_against_the_gateway() {
    let Ok(python) = std::env::var("SWITCHYARD_PYTHON") else {
        eprintln!("skipped: SWITCHYARD_PYTHON is not set (make test sets it up)");
        return;
    };
    let sim = common::reference_ollama().await;
    let gw = common::serve(common::config_from(&common::seed_config_text(
        &sim.base_url(),
    )))
    .await;
    let tests = format!(
        "{}/../../tests/sdk/test_openai_sdk.py",
        env!("CARGO_MANIFEST_DIR")
    );
    let out = tokio::process::Command::new(python)
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", &tests])
        .env("SWITCHYARD_URL", format!("http://{}", gw.addr))
        .env("SIM_URL", sim.base_url())
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "pytest failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("13 passed"), "{stdout}");
}

/// The SDK's `embeddings.create` against an embedding group added to the seed config (the seed's
/// three chat groups stay as they are).
#[tokio::test]
async fn openai_python_sdk_embeddings_work_against_the_gateway() {
    let Ok(python) = std::env::var("SWITCHYARD_PYTHON") else {
        eprintln!("skipped: SWITCHYARD_PYTHON is not set (make test sets it up)");
        return;
    };
    let sim = switchyard_sim::SimHandle::start(switchyard_sim::SimConfig::ollama(vec![
        switchyard_sim::SimModel::new("llama3.2:1b", 131072),
        switchyard_sim::SimModel::new("llama3.1:8b", 131072),
        switchyard_sim::SimModel::new("mistral:7b", 32768),
        switchyard_sim::SimModel::new("nomic-embed-text", 8192),
    ]))
    .await
    .unwrap();
    let text = common::seed_config_text(&sim.base_url()).replacen(
        "model_list:\n",
        &format!(
            "model_list:\n  - model_name: local-embed\n    litellm_params: {{model: ollama/nomic-embed-text, api_base: \"{}\", num_ctx: 8192}}\n    model_info: {{mode: embedding}}\n",
            sim.base_url()
        ),
        1,
    );
    let gw = common::serve(common::config_from(&text)).await;
    let tests = format!(
        "{}/../../tests/sdk/test_openai_embeddings.py",
        env!("CARGO_MANIFEST_DIR")
    );
    let out = tokio::process::Command::new(python)
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", &tests])
        .env("SWITCHYARD_URL", format!("http://{}", gw.addr))
        .env("SWITCHYARD_EMBED_MODEL", "local-embed")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "pytest failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("4 passed"), "{stdout}");
}
