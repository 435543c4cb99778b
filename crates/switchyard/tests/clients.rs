//! Client libraries that users point at an OpenAI-compatible server, run unchanged against
//! Switchyard (serve mode + simulator on ephemeral ports): LangChain and LiteLLM in Python
//! (tests/clients/, interpreter from `SWITCHYARD_PYTHON`), the OpenAI Node SDK and LangChain.js
//! (tests/node/, `node --test`, packages installed by `make nodeenv`); and the Python clients
//! through Switchyard to a real llama-cpp-python server with SmolLM2 (`SWITCHYARD_E2E_PYTHON`,
//! `SWITCHYARD_E2E_MODEL`, as in e2e_real_model.rs). Without the interpreter, the model or the
//! Node packages a test says it was skipped. Tests of routes still being built skip by
//! themselves (a probe of the route answers 404), so the counts below are minimums.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashMap;
use std::path::PathBuf;

/// Python tests that must pass (all of them now that /v1/embeddings and /v1/completions exist).
const PYTHON_MUST_PASS: usize = 19;
/// Every Python test (passed + skipped + xfailed).
const PYTHON_TOTAL: usize = 19;
/// Node tests that must pass today, and all of them.
const NODE_MUST_PASS: usize = 15;
const NODE_TOTAL: usize = 15;
/// Real-model Python tests that must pass today, and all of them (passed + skipped + xfailed).
const REAL_MUST_PASS: usize = 14;
const REAL_TOTAL: usize = 14;
/// Node tests against the real model (all must pass).
const NODE_REAL_TOTAL: usize = 4;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The seed configuration with an `embed` group (an embedding deployment on the simulator) for the
/// embeddings tests; the seed alone where the configuration does not know embedding deployments.
fn config(sim_url: &str) -> switchyard_core::config::Config {
    let seed = common::seed_config_text(sim_url);
    let with_embed = seed.replacen(
        "model_list:\n",
        &format!(
            "model_list:\n  - model_name: embed\n    litellm_params:\n      model: ollama/llama3.2:1b\n      api_base: {sim_url}\n    model_info:\n      mode: embedding\n"
        ),
        1,
    );
    let env = HashMap::<String, String>::new();
    switchyard_core::config::load_str("test.yaml", &with_embed, None, &env)
        .unwrap_or_else(|_| common::config_from(&seed))
}

/// `N word` out of a summary line like pytest's "14 passed, 3 skipped in 8s".
fn count(summary: &str, word: &str) -> usize {
    let words: Vec<&str> = summary
        .split([' ', ','])
        .filter(|w| !w.is_empty())
        .collect();
    words
        .windows(2)
        .find(|w| w[1].starts_with(word))
        .and_then(|w| w[0].parse().ok())
        .unwrap_or(0)
}

/// Runs pytest on `files` (in tests/clients/) with `env`; asserts nothing failed, at least
/// `must_pass` passed and every test ran or was skipped or expected to fail.
async fn pytest(python: &str, files: &[&str], env: (&str, String), must_pass: usize, total: usize) {
    let dir = repo().join("tests/clients");
    let out = tokio::process::Command::new(python)
        .args([
            "-m",
            "pytest",
            "-q",
            "-rsx",
            "-p",
            "no:cacheprovider",
            "-W",
            "ignore",
        ])
        .args(files.iter().map(|f| dir.join(f)))
        .env(env.0, env.1)
        .env("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "pytest failed:\n{stdout}\n{stderr}");
    let summary = stdout.lines().last().unwrap_or_default();
    eprintln!("pytest {files:?}: {summary}");
    let passed = count(summary, "passed");
    let others = count(summary, "skipped") + count(summary, "xfailed");
    assert!(
        !summary.contains("failed,") && !summary.contains(" failed") && !summary.contains("error"),
        "{stdout}"
    );
    assert!(passed >= must_pass, "{stdout}");
    assert_eq!(passed + others, total, "{stdout}");
}

#[tokio::test]
async fn python_clients_work_against_the_gateway() {
    let Ok(python) = std::env::var("SWITCHYARD_PYTHON") else {
        eprintln!("skipped: SWITCHYARD_PYTHON is not set (make test sets it up)");
        return;
    };
    let sim = common::reference_ollama().await;
    let gw = common::serve(config(&sim.base_url())).await;
    let url = format!("http://{}", gw.addr);
    let files = ["test_langchain.py", "test_litellm_client.py"];
    pytest(
        &python,
        &files,
        ("SWITCHYARD_URL", url),
        PYTHON_MUST_PASS,
        PYTHON_TOTAL,
    )
    .await;
}

#[tokio::test]
async fn python_clients_work_through_the_gateway_to_a_real_llama_cpp_server() {
    let (Ok(python), Ok(model)) = (
        std::env::var("SWITCHYARD_E2E_PYTHON"),
        std::env::var("SWITCHYARD_E2E_MODEL"),
    ) else {
        eprintln!(
            "skipped: SWITCHYARD_E2E_PYTHON / SWITCHYARD_E2E_MODEL not set (make test sets them up)"
        );
        return;
    };
    let server = common::llama_cpp_python::start_with(
        &common::llama_cpp_python::Env {
            python: python.clone(),
            model: model.clone(),
        },
        2048,
        true,
    )
    .await;
    let url = server.url.clone();
    let chat = format!(
        "{{group: smol, provider: openai, model: smol, api_base: \"{url}\", context_window: 2048, tokenizer: \"{model}\", template: chatml}}"
    );
    let embed = format!(
        "{{group: smol-embed, provider: openai, model: smol, api_base: \"{url}\", context_window: 2048, tokenizer: \"{model}\", mode: embedding}}"
    );
    let routing = "routing: {num_retries: 0, idle_timeout: 20, first_byte_timeout: 60}";
    let env = HashMap::<String, String>::new();
    let text = format!("deployments:\n  - {chat}\n  - {embed}\n{routing}\n");
    // Where the configuration does not know embedding deployments yet, chat only.
    let config = switchyard_core::config::load_str("real.yaml", &text, None, &env)
        .unwrap_or_else(|_| common::config_from(&format!("deployments:\n  - {chat}\n{routing}\n")));
    let gw = common::serve(config).await;
    let gw_url = format!("http://{}", gw.addr);
    if node_ready().await {
        let env = ("SWITCHYARD_REAL_URL", gw_url.clone());
        node_test("real_model.test.mjs", env, NODE_REAL_TOTAL, NODE_REAL_TOTAL).await;
    }
    let files = ["test_real_model.py"];
    pytest(
        &python,
        &files,
        ("SWITCHYARD_REAL_URL", gw_url),
        REAL_MUST_PASS,
        REAL_TOTAL,
    )
    .await;
}

/// Whether the Node tests can run: the packages installed and node >= 20 (else says why).
async fn node_ready() -> bool {
    let dir = repo().join("tests/node");
    if !dir.join("node_modules/openai").is_dir()
        || !dir.join("node_modules/@langchain/openai").is_dir()
    {
        eprintln!("skipped: tests/node/node_modules is missing (make test runs `make nodeenv`)");
        return false;
    }
    let version = match tokio::process::Command::new("node")
        .arg("--version")
        .output()
        .await
    {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_owned(),
        _ => {
            eprintln!("skipped: `node` is not installed");
            return false;
        }
    };
    let major: u32 = version
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    if major < 20 {
        eprintln!("skipped: node {version} is older than the packages' minimum (20)");
        return false;
    }
    true
}

/// Runs `node --test` on `file` (in tests/node/) with `env`; asserts nothing failed, at least
/// `must_pass` passed and the rest were skipped.
async fn node_test(file: &str, env: (&str, String), must_pass: usize, total: usize) {
    let dir = repo().join("tests/node");
    let out = tokio::process::Command::new("node")
        .args(["--test", "--test-reporter=tap"])
        .arg(dir.join(file))
        .current_dir(&dir)
        .env(env.0, env.1)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "node --test failed:\n{stdout}\n{stderr}"
    );
    let tap = |key: &str| -> usize {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("# {key} ")))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(usize::MAX)
    };
    eprintln!(
        "node --test {file}: {} passed, {} skipped",
        tap("pass"),
        tap("skipped")
    );
    assert_eq!(tap("fail"), 0, "{stdout}");
    assert!(tap("pass") >= must_pass, "{stdout}");
    assert_eq!(tap("pass") + tap("skipped"), total, "{stdout}");
}

#[tokio::test]
async fn node_clients_work_against_the_gateway() {
    if !node_ready().await {
        return;
    }
    let sim = common::reference_ollama().await;
    let gw = common::serve(config(&sim.base_url())).await;
    let url = format!("http://{}", gw.addr);
    node_test(
        "clients.test.mjs",
        ("SWITCHYARD_URL", url),
        NODE_MUST_PASS,
        NODE_TOTAL,
    )
    .await;
}
