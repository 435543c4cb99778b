//! How much memory `GET /v1/usage` costs: fills a SQLite ledger with 50k records, starts `serve`
//! in this process on port 0, and prints the process's RSS before, at the peak of and after
//! 4 parallel maximal queries (a single page with `limit=LIMIT`, then, when the gateway pages,
//! 4 parallel walks of every page through the cursor). A measurement, not a timed test: the
//! figures depend on the allocator and the machine.
//!
//! `cargo run --release -p switchyard --example usage_memory [RECORDS] [LIMIT]`
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

use std::collections::HashMap;

use switchyard_ledger::{Attempt, SqliteStore, UsageRecord, UsageStore};

/// VmRSS and VmHWM of this process, in MiB.
fn rss() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Resets VmHWM to the current RSS (Linux: writing 5 to clear_refs).
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// A record about as large as a real one: one attempt, every fifth request after a failure.
fn record(i: u64, now_ms: i64) -> UsageRecord {
    let time_ms = now_ms - 2 * 86_400_000 + i64::try_from(i).unwrap() * 3_000;
    let mut attempts = Vec::new();
    if i.is_multiple_of(5) {
        attempts.push(Attempt {
            deployment: "ollama-small-gpu0".into(),
            failure_class: "connect".into(),
            message: "error sending request for url (http://10.0.0.7:11434/api/chat): \
                      client error (Connect): tcp connect error: Connection refused (os error 111)"
                .into(),
            ..Default::default()
        });
    }
    attempts.push(Attempt {
        deployment: "ollama-small-gpu1".into(),
        prompt_tokens: 812,
        completion_tokens: 143,
        ..Default::default()
    });
    UsageRecord {
        request_id: format!(
            "{:08x}-{:04x}-7{:03x}-8000-{:012x}",
            time_ms >> 16,
            time_ms & 0xffff,
            i % 4096,
            i
        ),
        time_ms,
        api_key_id: format!("key-{}", i % 7),
        requested_group: "local-small".into(),
        served_group: "local-small".into(),
        deployment: "ollama-small-gpu1".into(),
        backend_model: "llama3.2:1b".into(),
        prompt_tokens: 812,
        completion_tokens: 143,
        tokens_estimated: false,
        latency_ms: 2_345,
        ttft_ms: Some(180),
        streamed: true,
        status: "ok".into(),
        http_status: 200,
        attempts,
        traceparent: None,
        api: String::new(),
    }
}

fn print(label: &str, before: (f64, f64), after: (f64, f64), extra: &str) {
    println!(
        "{label:<40} before {:7.1} MiB   peak {:7.1} MiB   after {:7.1} MiB   {extra}",
        before.0, after.1, after.0
    );
}

/// One page: (status, body bytes, record count, next cursor). The body is read chunk by chunk
/// and not kept, so the figures are the server's (the client holds one chunk and a short tail).
async fn page(
    http: &reqwest::Client,
    url: &str,
    limit: u64,
    cursor: Option<&str>,
) -> (u16, usize, usize, Option<String>) {
    const MARK: &[u8] = b"\"request_id\":";
    let mut req = http.get(format!("{url}/v1/usage?limit={limit}"));
    if let Some(c) = cursor {
        req = req.query(&[("cursor", c)]);
    }
    let mut resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let (mut bytes, mut n) = (0, 0);
    // `carry`: fewer bytes than MARK from earlier chunks (a mark split between two chunks is
    // counted once); `last`: the answer's last bytes, where next_cursor is.
    let (mut carry, mut last) = (Vec::<u8>::new(), Vec::<u8>::new());
    while let Some(chunk) = resp.chunk().await.unwrap() {
        bytes += chunk.len();
        carry.extend_from_slice(&chunk);
        n += carry.windows(MARK.len()).filter(|w| *w == MARK).count();
        carry.drain(..carry.len().saturating_sub(MARK.len() - 1));
        last.extend_from_slice(&chunk);
        last.drain(..last.len().saturating_sub(400));
    }
    let text = String::from_utf8_lossy(&last);
    let next = text
        .split("\"next_cursor\":\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .map(str::to_owned);
    (status, bytes, n, next)
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let records: u64 = args.next().map_or(50_000, |a| a.parse().unwrap());
    let limit: u64 = args.next().map_or(100_000, |a| a.parse().unwrap());

    let dir = tempfile::tempdir().unwrap();
    let now_ms = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    {
        let store = SqliteStore::open(dir.path().join(switchyard::usage::SQLITE_FILE))
            .await
            .unwrap();
        for start in (0..records).step_by(1000) {
            let batch: Vec<UsageRecord> = (start..(start + 1000).min(records))
                .map(|i| record(i, now_ms))
                .collect();
            store.insert_batch(&batch).await.unwrap();
        }
    }

    let text = "model_list:\n  - {model_name: local-small, litellm_params: {model: ollama/llama3.2:1b, api_base: \"http://127.0.0.1:9\", max_tokens: 2048}}\n";
    let config = switchyard_core::config::load_str(
        "usage_memory.yaml",
        text,
        None,
        &HashMap::<String, String>::new(),
    )
    .unwrap();
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let bound = switchyard::serve(
        config,
        "127.0.0.1:0".parse().unwrap(),
        switchyard::ServeOptions {
            data_dir: Some(dir.path().to_path_buf()),
            embedded_prober: Some(false),
            ..Default::default()
        },
        async {
            let _ = rx.await;
        },
    )
    .await
    .unwrap();
    let url = format!("http://{}", bound.addr);
    let server = tokio::spawn(bound.serve);
    let http = reqwest::Client::new();

    // Warm up: one small query, so the baseline includes the server's steady state.
    let (status, _, _, _) = page(&http, &url, 10, None).await;
    assert_eq!(status, 200);
    println!("{records} records in the ledger; 4 parallel queries each time");

    reset_peak();
    let before = rss();
    let results = futures::future::join_all((0..4).map(|_| page(&http, &url, limit, None))).await;
    let after = rss();
    let (status, bytes, n, _) = &results[0];
    print(
        &format!("one page, limit={limit}"),
        before,
        after,
        &format!("status {status}, {n} records, {bytes} bytes each"),
    );

    // With pagination: 4 parallel walks over every page, at the largest page size accepted.
    if *status == 200 && results[0].3.is_some() {
        reset_peak();
        let before = rss();
        let walks = futures::future::join_all((0..4).map(|_| {
            let http = http.clone();
            let url = url.clone();
            async move {
                let (mut pages, mut total, mut cursor) = (0, 0, None::<String>);
                loop {
                    let (status, _, n, next) = page(&http, &url, limit, cursor.as_deref()).await;
                    assert_eq!(status, 200);
                    pages += 1;
                    total += n;
                    match next {
                        Some(c) => cursor = Some(c),
                        None => break,
                    }
                }
                (pages, total)
            }
        }))
        .await;
        let after = rss();
        print(
            &format!("every page, limit={limit}"),
            before,
            after,
            &format!("{} pages, {} records each walk", walks[0].0, walks[0].1),
        );
    }

    let _ = stop.send(());
    let _ = server.await;
}
