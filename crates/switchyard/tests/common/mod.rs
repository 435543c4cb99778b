//! Shared harness for the integration tests: real servers on ephemeral ports, started the way the
//! binary starts them.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod llama_cpp_python;
pub mod scenario;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::Stdio;

use switchyard_core::config::Config;
use switchyard_sim::{SimConfig, SimHandle, SimModel};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::oneshot;

pub const SEED: &str = include_str!("../../../../fixtures/seed-config.yaml");

/// The command forms the multi-process tests run (`tests/services.rs`, `tests/metrics.rs`):
/// subcommand and the flags it passes. Compose and the Kubernetes manifests may only use these
/// (`tests/compose.rs`, `tests/kubernetes.rs`), so what the tests prove is what they start.
pub const TESTED_FORMS: &[(&str, &[&str])] = &[
    (
        "ledger",
        &["--config", "--listen", "--data-dir", "--metrics-listen"],
    ),
    ("prober", &["--config", "--metrics-listen"]),
    (
        "router",
        &[
            "--config",
            "--listen",
            "--no-prober",
            "--data-dir",
            "--metrics-listen",
        ],
    ),
    ("gateway", &["--config", "--listen", "--router"]),
];

/// The user's seed config with `api_base` pointed at `base_url` (nothing else changed).
pub fn seed_config_text(base_url: &str) -> String {
    SEED.replace("http://ollama-vm:11434", base_url)
}

pub fn config_from(text: &str) -> Config {
    switchyard_core::config::load_str("test.yaml", text, None, &HashMap::<String, String>::new())
        .unwrap()
}

/// An Ollama simulator with the reference models (trained contexts larger than the windows).
pub async fn reference_ollama() -> SimHandle {
    SimHandle::start(SimConfig::ollama(vec![
        SimModel::new("llama3.2:1b", 131072),
        SimModel::new("llama3.1:8b", 131072),
        SimModel::new("mistral:7b", 32768),
    ]))
    .await
    .unwrap()
}

/// A running `switchyard serve` (gateway + in-process router); stops when dropped.
pub struct Serve {
    pub addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

impl Serve {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
}

/// `serve` without the embedded prober (tests that want one use [`serve_with`]), so what a test
/// observes does not depend on when a probe round happens to run.
pub async fn serve(config: Config) -> Serve {
    serve_with(
        config,
        switchyard::ServeOptions {
            embedded_prober: Some(false),
            ..Default::default()
        },
    )
    .await
}

pub async fn serve_with(config: Config, opts: switchyard::ServeOptions) -> Serve {
    let (tx, rx) = oneshot::channel::<()>();
    let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let bound = switchyard::serve(config, listen, opts, async {
        let _ = rx.await;
    })
    .await
    .unwrap();
    tokio::spawn(bound.serve);
    Serve {
        addr: bound.addr,
        _stop: tx,
    }
}

/// A child process of the `switchyard` binary; killed when dropped.
pub struct Proc {
    pub addr: SocketAddr,
    pub child: tokio::process::Child,
}

impl Proc {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
}

/// Spawns `switchyard ARGS…` and waits for its `{"listening":…}` line.
pub async fn spawn_switchyard(args: &[&str]) -> Proc {
    spawn_switchyard_env(args, &[]).await
}

/// Spawns `switchyard ARGS…` with extra environment variables and waits for its first stdout
/// line (`{"listening":…}`; services without a socket print no address and get port 0).
pub async fn spawn_switchyard_env(args: &[&str], envs: &[(&str, &str)]) -> Proc {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(args)
        .envs(envs.iter().copied())
        .env_remove("RUST_LOG")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let line = lines
        .next_line()
        .await
        .unwrap()
        .expect("switchyard exited before listening");
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    let addr = v["listening"]
        .as_str()
        .unwrap_or("0.0.0.0:0")
        .parse()
        .unwrap();
    Proc { addr, child }
}

/// Sends the signal `name` (`TERM`, `HUP`) to `child` with `kill`.
pub fn signal(child: &tokio::process::Child, name: &str) {
    let pid = child.id().unwrap().to_string();
    let sent = std::process::Command::new("kill")
        .args([&format!("-{name}"), &pid])
        .status()
        .unwrap();
    assert!(sent.success(), "kill -{name} {pid}");
}

/// A user message of about `n` tokens (short words: one token each in every tokenizer involved).
pub fn words(n: usize) -> String {
    const W: [&str; 8] = ["the", "cat", "sat", "on", "a", "mat", "and", "ran"];
    let mut s = String::with_capacity(n * 4);
    for i in 0..n {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(W[i % W.len()]);
    }
    s
}

pub fn chat_body(model: &str, content: &str, stream: bool) -> serde_json::Value {
    serde_json::json!({
        "model": model,
        "messages": [{"role": "user", "content": content}],
        "stream": stream,
    })
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// Reads an SSE body into its `data:` payloads.
pub fn sse_payloads(body: &str) -> Vec<String> {
    body.split("\n\n")
        .filter_map(|ev| {
            ev.trim()
                .strip_prefix("data:")
                .map(|d| d.trim().to_string())
        })
        .collect()
}

/// Concatenated content of SSE chunks.
pub fn sse_text(payloads: &[String]) -> String {
    payloads
        .iter()
        .filter(|p| p.as_str() != "[DONE]")
        .filter_map(|p| serde_json::from_str::<serde_json::Value>(p).ok())
        .filter_map(|v| {
            v["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_string)
        })
        .collect()
}

/// Whether the Redis the machines run on 127.0.0.1:6379 answers.
pub async fn redis_available() -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(Ok(mut s)) = tokio::time::timeout(
        std::time::Duration::from_secs(1),
        tokio::net::TcpStream::connect("127.0.0.1:6379"),
    )
    .await
    else {
        return false;
    };
    if s.write_all(b"PING\r\n").await.is_err() {
        return false;
    }
    let mut buf = [0u8; 7];
    matches!(tokio::time::timeout(std::time::Duration::from_secs(1), s.read(&mut buf)).await, Ok(Ok(n)) if buf[..n].starts_with(b"+PONG"))
}

/// A key prefix no other test uses.
pub fn unique_prefix() -> String {
    format!("sy-test-{}", uuid::Uuid::new_v4().simple())
}

/// Polls `check` until it holds (a condition, not a fixed sleep), failing after `secs`.
pub async fn eventually<F, Fut>(secs: u64, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(secs);
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
