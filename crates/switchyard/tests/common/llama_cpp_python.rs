//! Real llama-cpp-python servers for the real-model tests: the environment they need and a
//! starter that waits until the server answers.
//!
//! Needs `SWITCHYARD_E2E_PYTHON` (a Python with `llama-cpp-python[server]`) and
//! `SWITCHYARD_E2E_MODEL` (the GGUF file); without them [`env`] says the test is skipped.
//! A submodule of `common`, so every test that starts one uses this starter.

use std::process::Stdio;

pub struct Env {
    pub python: String,
    pub model: String,
}

/// The interpreter and model, or `None` after saying the test is skipped.
pub fn env() -> Option<Env> {
    match (
        std::env::var("SWITCHYARD_E2E_PYTHON"),
        std::env::var("SWITCHYARD_E2E_MODEL"),
    ) {
        (Ok(python), Ok(model)) => Some(Env { python, model }),
        _ => {
            eprintln!(
                "skipped: SWITCHYARD_E2E_PYTHON / SWITCHYARD_E2E_MODEL not set (make e2e sets them up)"
            );
            None
        }
    }
}

/// A llama-cpp-python server process on a free loopback port (killed when dropped).
pub struct Server {
    pub url: String,
    /// Held so the process lives as long as the value (`kill_on_drop`).
    #[allow(dead_code)]
    pub child: tokio::process::Child,
}

/// Starts a server of `env.model` as `smol` with `n_ctx`, and waits until it lists its model.
pub async fn start(env: &Env, n_ctx: u32) -> Server {
    start_with(env, n_ctx, false).await
}

/// [`start`], with `/v1/embeddings` served too when `embedding` is set.
pub async fn start_with(env: &Env, n_ctx: u32, embedding: bool) -> Server {
    assert!(
        std::path::Path::new(&env.model).is_file(),
        "SWITCHYARD_E2E_MODEL={:?} is not a file",
        env.model
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log_path = std::env::temp_dir().join(format!("switchyard-e2e-lcp-{port}.log"));
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = tokio::process::Command::new(&env.python)
        .args(["-m", "llama_cpp.server", "--model", &env.model])
        .args([
            "--n_ctx",
            &n_ctx.to_string(),
            "--host",
            "127.0.0.1",
            "--port",
        ])
        .arg(port.to_string())
        .args(["--model_alias", "smol", "--n_threads", "1"])
        .args(if embedding {
            &["--embedding", "true"][..]
        } else {
            &[][..]
        })
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let http = super::client();
    let models = format!("{url}/v1/models");
    let mut exited = None;
    super::eventually(180, "llama-cpp-python to list its model", || {
        if exited.is_none() {
            exited = child.try_wait().unwrap();
        }
        if let Some(status) = exited {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            panic!("llama-cpp-python (n_ctx {n_ctx}) exited ({status}); its log:\n{log}");
        }
        let req = http.get(&models).send();
        async move { req.await.is_ok_and(|r| r.status().is_success()) }
    })
    .await;
    Server { url, child }
}
