//! Helpers shared by the integration tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use serde_json::Value;
use switchyard_sim::{SimConfig, SimHandle, SimModel};

pub const MODEL: &str = "llama3.2:1b";

pub async fn ollama() -> SimHandle {
    SimHandle::start(SimConfig::ollama(vec![
        SimModel::new(MODEL, 8192),
        SimModel::new("qwen2.5:7b", 32768),
    ]))
    .await
    .unwrap()
}

pub async fn llamacpp(n_ctx: u32) -> SimHandle {
    let mut m = SimModel::new("smol", 8192);
    m.n_ctx = Some(n_ctx);
    SimHandle::start(SimConfig::llamacpp(m)).await.unwrap()
}

pub fn client() -> reqwest::Client {
    reqwest::Client::new()
}

/// Parses an NDJSON body: every line must be a JSON object followed by `\n`.
pub fn ndjson_lines(body: &str) -> Vec<Value> {
    assert!(
        body.ends_with('\n'),
        "NDJSON must end with a newline: {body:?}"
    );
    body.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad line {l:?}: {e}")))
        .collect()
}

/// Parses an SSE body into its `data:` payloads (raw strings).
pub fn sse_events(body: &str) -> Vec<String> {
    body.split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| {
            e.strip_prefix("data: ")
                .unwrap_or_else(|| panic!("not a data event: {e:?}"))
                .to_owned()
        })
        .collect()
}

/// Reads a streamed response chunk by chunk until it ends or fails; returns the bytes received
/// and whether the body ended with an error.
pub async fn read_until_end(resp: reqwest::Response) -> (String, bool) {
    let mut resp = resp;
    let mut got = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(c)) => got.extend_from_slice(&c),
            Ok(None) => return (String::from_utf8(got).unwrap(), false),
            Err(_) => return (String::from_utf8(got).unwrap(), true),
        }
    }
}
