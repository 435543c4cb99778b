//! Client libraries that users point at an OpenAI-compatible server, run unchanged against
//! Switchyard (serve mode + simulator on ephemeral ports): LangChain and LiteLLM in Python
//! (tests/clients/, interpreter from `SWITCHYARD_PYTHON`), the OpenAI Node SDK and LangChain.js
//! (tests/node/, `node --test`, packages installed by `make nodeenv`). Without the interpreter or
//! the Node packages a test says it was skipped. Tests of routes still being built skip by
//! themselves (a probe of the route answers 404), so the counts below are minimums.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashMap;
use std::path::PathBuf;

/// Python tests that must pass today (the rest are skipped until their route exists).
const PYTHON_MUST_PASS: usize = 14;
/// Every Python test (passed + skipped).
const PYTHON_TOTAL: usize = 18;
/// Node tests that must pass today, and all of them.
const NODE_MUST_PASS: usize = 12;
const NODE_TOTAL: usize = 15;

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

#[tokio::test]
async fn python_clients_work_against_the_gateway() {
    let Ok(python) = std::env::var("SWITCHYARD_PYTHON") else {
        eprintln!("skipped: SWITCHYARD_PYTHON is not set (make test sets it up)");
        return;
    };
    let sim = common::reference_ollama().await;
    let gw = common::serve(config(&sim.base_url())).await;
    let out = tokio::process::Command::new(python)
        .args([
            "-m",
            "pytest",
            "-q",
            "-rs",
            "-p",
            "no:cacheprovider",
            "-W",
            "ignore",
        ])
        .arg(repo().join("tests/clients"))
        .env("SWITCHYARD_URL", format!("http://{}", gw.addr))
        .env("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "pytest failed:\n{stdout}\n{stderr}");
    let summary = stdout.lines().last().unwrap_or_default();
    let (passed, skipped) = (count(summary, "passed"), count(summary, "skipped"));
    assert!(
        !summary.contains("failed") && !summary.contains("error"),
        "{stdout}"
    );
    assert!(passed >= PYTHON_MUST_PASS, "{stdout}");
    assert_eq!(passed + skipped, PYTHON_TOTAL, "{stdout}");
}

#[tokio::test]
async fn node_clients_work_against_the_gateway() {
    let dir = repo().join("tests/node");
    if !dir.join("node_modules/openai").is_dir()
        || !dir.join("node_modules/@langchain/openai").is_dir()
    {
        eprintln!("skipped: tests/node/node_modules is missing (make test runs `make nodeenv`)");
        return;
    }
    let version = match tokio::process::Command::new("node")
        .arg("--version")
        .output()
        .await
    {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_owned(),
        _ => {
            eprintln!("skipped: `node` is not installed");
            return;
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
        return;
    }
    let sim = common::reference_ollama().await;
    let gw = common::serve(config(&sim.base_url())).await;
    let out = tokio::process::Command::new("node")
        .args(["--test", "--test-reporter=tap"])
        .arg(dir.join("clients.test.mjs"))
        .current_dir(&dir)
        .env("SWITCHYARD_URL", format!("http://{}", gw.addr))
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
    assert_eq!(tap("fail"), 0, "{stdout}");
    assert!(tap("pass") >= NODE_MUST_PASS, "{stdout}");
    assert_eq!(tap("pass") + tap("skipped"), NODE_TOTAL, "{stdout}");
}
