//! End to end against a real model: SmolLM2-135M-Instruct served by llama.cpp (llama-cpp-python's
//! OpenAI-compatible server) as two deployments, n_ctx 512 and 2048, in one fallback chain.
//!
//! Needs `SWITCHYARD_E2E_PYTHON` (a Python with `llama-cpp-python[server]`) and
//! `SWITCHYARD_E2E_MODEL` (the GGUF file); `make e2e` (and `make test`) set both up from
//! nothing. Without them the tests say they were skipped.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

struct Env {
    python: String,
    model: String,
}

fn env() -> Option<Env> {
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

/// A llama.cpp server process on a free loopback port.
struct Server {
    url: String,
    child: tokio::process::Child,
}

async fn llama_server(env: &Env, n_ctx: u32) -> Server {
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
    let log_path = std::env::temp_dir().join(format!("switchyard-e2e-llama-{port}.log"));
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = tokio::process::Command::new(&env.python)
        .args([
            "-m",
            "llama_cpp.server",
            "--model",
            &env.model,
            "--n_ctx",
            &n_ctx.to_string(),
        ])
        .args([
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--model_alias",
            "smol",
            "--n_threads",
            "1",
        ])
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let http = common::client();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(180);
    loop {
        if http
            .get(format!("{url}/v1/models"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            break;
        }
        let exited = child.try_wait().unwrap();
        if exited.is_some() || tokio::time::Instant::now() > deadline {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            let tail: String = log
                .lines()
                .rev()
                .take(30)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n");
            panic!(
                "llama.cpp server (n_ctx {n_ctx}) did not come up (exit: {exited:?}); its log ends:\n{tail}"
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    Server { url, child }
}

/// A TCP relay that counts HTTP requests (`POST ` at the start of a request) sent upstream.
async fn counting_proxy(upstream: String) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let upstream = upstream.trim_start_matches("http://").to_string();
    let c = count.clone();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let upstream = upstream.clone();
            let c = c.clone();
            tokio::spawn(async move {
                let Ok(mut server) = TcpStream::connect(&upstream).await else {
                    return;
                };
                let (mut cr, mut cw) = client.split();
                let (mut sr, mut sw) = server.split();
                let up = async {
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        let n = match cr.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        c.fetch_add(
                            buf[..n].windows(5).filter(|w| *w == b"POST ").count(),
                            Ordering::SeqCst,
                        );
                        if sw.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                    let _ = sw.shutdown().await;
                };
                let down = async {
                    let _ = tokio::io::copy(&mut sr, &mut cw).await;
                    let _ = cw.shutdown().await;
                };
                tokio::join!(up, down);
            });
        }
    });
    (format!("http://{addr}"), count)
}

fn config(env: &Env, small: &str, large: &str) -> String {
    format!(
        r#"
deployments:
  - {{group: smol-512, provider: openai, model: smol, api_base: "{small}", context_window: 512, tokenizer: "{m}", template: chatml, continuation: completions}}
  - {{group: smol-2048, provider: openai, model: smol, api_base: "{large}", context_window: 2048, tokenizer: "{m}", template: chatml, continuation: completions}}
fallbacks: [smol-512, smol-2048]
routing: {{reserve_output_tokens: 64, num_retries: 0, idle_timeout: 20, first_byte_timeout: 60}}
"#,
        m = env.model
    )
}

fn chat(content: &str, max_tokens: u32, stream: bool) -> Value {
    json!({
        "model": "smol-512",
        "messages": [{"role": "user", "content": content}],
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": stream,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_by_exact_count_against_real_llama_cpp() {
    let Some(env) = env() else { return };
    let (s512, s2048) = tokio::join!(llama_server(&env, 512), llama_server(&env, 2048));
    let (proxy, hits_512) = counting_proxy(s512.url.clone()).await;
    let gw = common::serve(common::config_from(&config(&env, &proxy, &s2048.url))).await;
    let http = common::client();
    let url = gw.url("/v1/chat/completions");

    // Predicted prompt tokens equal what the server reports, exactly.
    for text in [
        "Hello!",
        "Write a haiku about routers.",
        &"The quick brown fox jumps over the lazy dog. ".repeat(20),
    ] {
        let r = http
            .post(&url)
            .json(&chat(text, 8, false))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let predicted: u64 = r.headers()["x-switchyard-prompt-tokens"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let v: Value = r.json().await.unwrap();
        assert_eq!(
            v["usage"]["prompt_tokens"].as_u64().unwrap(),
            predicted,
            "for {text:?}"
        );
    }

    // A prompt that fits 512 is served by the 512 deployment.
    let r = http
        .post(&url)
        .json(&chat("Say hi.", 16, false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-switchyard-group"], "smol-512");

    // ~700 tokens go to the 2048 deployment without any request reaching the 512 server.
    let before = hits_512.load(Ordering::SeqCst);
    let long = "Routing decides where a prompt goes before it is sent. ".repeat(64);
    let r = http
        .post(&url)
        .json(&chat(&long, 16, false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-switchyard-group"], "smol-2048");
    assert_eq!(r.headers()["x-switchyard-attempts"], "1");
    let v: Value = r.json().await.unwrap();
    assert!(v["usage"]["prompt_tokens"].as_u64().unwrap() > 600);
    assert_eq!(
        hits_512.load(Ordering::SeqCst),
        before,
        "the 512 server saw the long prompt"
    );

    // Right at the boundary: prompt + max_tokens == 512 fits; one more token does not.
    let text = "Exactly at the edge of the window. ".repeat(8);
    let plan: Value = http
        .post(gw.url("/v1/explain"))
        .json(&chat(&text, 1, false))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let p = plan["deployments"][0]["predicted_tokens"].as_u64().unwrap() as u32;
    let fits = 512 - p;
    let r = http
        .post(&url)
        .json(&chat(&text, fits, false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        (
            r.headers()["x-switchyard-group"].to_str().unwrap(),
            r.headers()["x-switchyard-attempts"].to_str().unwrap()
        ),
        ("smol-512", "1")
    );
    let r = http
        .post(&url)
        .json(&chat(&text, fits + 1, false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        (
            r.headers()["x-switchyard-group"].to_str().unwrap(),
            r.headers()["x-switchyard-attempts"].to_str().unwrap()
        ),
        ("smol-2048", "1")
    );
    drop((s512, s2048));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_mid_answer_is_continued_on_the_next() {
    let Some(env) = env() else { return };
    let (mut s512, s2048) = tokio::join!(llama_server(&env, 512), llama_server(&env, 2048));
    // A cold first token on a loaded machine can take longer than the default 10 s keep-alive,
    // after which the stream opens without route headers (by design); this test reads them.
    let text = format!(
        "{}gateway: {{sse_keepalive: 120}}\n",
        config(&env, &s512.url, &s2048.url)
    );
    let gw = common::serve(common::config_from(&text)).await;
    let mut resp = common::client()
        .post(gw.url("/v1/chat/completions"))
        .json(&chat(
            "Tell me a long story about a lighthouse keeper.",
            160,
            true,
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-switchyard-group"], "smol-512");
    let mut body = String::new();
    let mut killed = false;
    while let Some(chunk) = resp.chunk().await.unwrap() {
        body.push_str(&String::from_utf8_lossy(&chunk));
        if !killed && body.matches("\"content\"").count() >= 6 {
            let pid = s512.child.id().unwrap().to_string();
            assert!(
                std::process::Command::new("kill")
                    .args(["-KILL", &pid])
                    .status()
                    .unwrap()
                    .success()
            );
            killed = true;
        }
    }
    assert!(
        killed,
        "the answer ended before the server could be killed: {body}"
    );
    let payloads = common::sse_payloads(&body);
    assert_eq!(
        payloads.iter().filter(|p| p.as_str() == "[DONE]").count(),
        1
    );
    assert!(
        !body.contains("\"error\""),
        "the client saw an error: {body}"
    );
    let finishes = payloads
        .iter()
        .filter_map(|p| serde_json::from_str::<Value>(p).ok())
        .filter(|v| v["choices"][0]["finish_reason"].is_string())
        .count();
    assert_eq!(finishes, 1, "{body}");
    let text = common::sse_text(&payloads);
    assert!(text.len() > 40, "{text}");
    let _ = s512.child.wait().await;
    drop(s2048);
}
