//! What access control costs per request, side by side in one process: an open gateway, the
//! master key, a virtual key without limits, and a virtual key with RPM/TPM/parallel limits kept
//! in memory and (when Redis answers on 127.0.0.1:6379) in Redis. Requests go client → gateway →
//! router → zero-latency simulator, one at a time and eight at a time; the modes are interleaved
//! over three rounds and the median is printed. Redis round trips per request are read from
//! Redis's own command statistics.
//!
//! `cargo run --release -p switchyard --example access_overhead [REQUESTS]`
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

use std::collections::HashMap;
use std::time::Instant;

use serde_json::json;
use switchyard_sim::{SimConfig, SimHandle, SimModel};

const MASTER: &str = "sk-bench-master-key";

/// µs/request one at a time, µs/request eight at a time, Redis round trips per request.
type Measured = (f64, f64, Option<f64>);

struct Target {
    name: &'static str,
    url: String,
    key: Option<String>,
    redis: bool,
    _stop: tokio::sync::oneshot::Sender<()>,
    _dir: tempfile::TempDir,
}

async fn start(
    sim: &SimHandle,
    master: bool,
    redis_prefix: Option<&str>,
) -> (String, tokio::sync::oneshot::Sender<()>, tempfile::TempDir) {
    let mut text = format!(
        "model_list:\n  - {{model_name: small, litellm_params: {{model: ollama/llama3.2:1b, api_base: \"{}\", max_tokens: 2048}}}}\n",
        sim.base_url()
    );
    if master {
        text.push_str(&format!("general_settings: {{master_key: {MASTER}}}\n"));
    }
    if let Some(p) = redis_prefix {
        text.push_str(&format!(
            "state: {{redis_url: \"redis://127.0.0.1:6379\", key_prefix: \"{p}\"}}\n"
        ));
    }
    let config = switchyard_core::config::load_str(
        "bench.yaml",
        &text,
        None,
        &HashMap::<String, String>::new(),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
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
    tokio::spawn(bound.serve);
    (url, stop, dir)
}

async fn new_key(http: &reqwest::Client, base: &str, limits: bool) -> String {
    let body = if limits {
        json!({"rpm_limit": 100_000_000, "tpm_limit": 100_000_000_000u64, "max_parallel_requests": 1000})
    } else {
        json!({})
    };
    let v: serde_json::Value = http
        .post(format!("{base}/key/generate"))
        .bearer_auth(MASTER)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["key"].as_str().unwrap().to_string()
}

async fn run(http: &reqwest::Client, t: &Target, n: usize, conc: usize) -> f64 {
    let body =
        json!({"model": "small", "messages": [{"role": "user", "content": "hello [[tokens=8]]"}]});
    let url = format!("{}/v1/chat/completions", t.url);
    let started = Instant::now();
    let per = n / conc;
    let mut tasks = Vec::new();
    for _ in 0..conc {
        let (http, url, body, key) = (http.clone(), url.clone(), body.clone(), t.key.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..per {
                let mut rb = http.post(&url).json(&body);
                if let Some(k) = &key {
                    rb = rb.bearer_auth(k);
                }
                let r = rb.send().await.unwrap();
                assert_eq!(r.status(), 200);
                r.bytes().await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    started.elapsed().as_secs_f64() * 1e6 / (per * conc) as f64
}

async fn redis_script_calls() -> Option<u64> {
    let out = tokio::process::Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "INFO", "commandstats"])
        .output()
        .await
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut calls = 0;
    for line in text.lines() {
        if line.starts_with("cmdstat_evalsha:") || line.starts_with("cmdstat_eval:") {
            calls += line
                .split("calls=")
                .nth(1)?
                .split(',')
                .next()?
                .parse::<u64>()
                .ok()?;
        }
    }
    Some(calls)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2000);
    let sim = SimHandle::start(SimConfig::ollama(vec![SimModel::new("llama3.2:1b", 8192)]))
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let redis_up = redis_script_calls().await.is_some();
    let mut targets = Vec::new();
    let (url, stop, dir) = start(&sim, false, None).await;
    targets.push(Target {
        name: "open (no key)",
        url,
        key: None,
        redis: false,
        _stop: stop,
        _dir: dir,
    });
    let (url, stop, dir) = start(&sim, true, None).await;
    let k1 = new_key(&http, &url, false).await;
    let k2 = new_key(&http, &url, true).await;
    targets.push(Target {
        name: "master key",
        url: url.clone(),
        key: Some(MASTER.into()),
        redis: false,
        _stop: stop,
        _dir: dir,
    });
    let dir2 = tempfile::tempdir().unwrap();
    let (tx, _) = tokio::sync::oneshot::channel();
    targets.push(Target {
        name: "virtual key, no limits",
        url: url.clone(),
        key: Some(k1),
        redis: false,
        _stop: tx,
        _dir: dir2,
    });
    let dir3 = tempfile::tempdir().unwrap();
    let (tx, _) = tokio::sync::oneshot::channel();
    targets.push(Target {
        name: "virtual key, rpm+tpm+parallel (memory)",
        url,
        key: Some(k2),
        redis: false,
        _stop: tx,
        _dir: dir3,
    });
    if redis_up {
        let prefix = format!("sy-bench-{}", std::process::id());
        let (url, stop, dir) = start(&sim, true, Some(&prefix)).await;
        let k = new_key(&http, &url, true).await;
        targets.push(Target {
            name: "virtual key, rpm+tpm+parallel (Redis)",
            url,
            key: Some(k),
            redis: true,
            _stop: stop,
            _dir: dir,
        });
    }
    for t in &targets {
        run(&http, t, 400, 4).await; // warm-up
    }
    let mut results: HashMap<&str, Vec<Measured>> = HashMap::new();
    for _round in 0..3 {
        for t in &targets {
            let before = if t.redis {
                redis_script_calls().await
            } else {
                None
            };
            let c1 = run(&http, t, n, 1).await;
            let trips = match (
                before,
                if t.redis {
                    redis_script_calls().await
                } else {
                    None
                },
            ) {
                (Some(b), Some(a)) => Some((a - b) as f64 / n as f64),
                _ => None,
            };
            let c8 = run(&http, t, n, 8).await;
            results.entry(t.name).or_default().push((c1, c8, trips));
        }
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let base = median(results["open (no key)"].iter().map(|r| r.0).collect());
    let base8 = median(results["open (no key)"].iter().map(|r| r.1).collect());
    println!(
        "| mode | µs/request, 1 at a time | vs open | µs/request, 8 at a time | vs open | Redis round trips/request |"
    );
    println!("|---|---|---|---|---|---|");
    for t in &targets {
        let r = &results[t.name];
        let c1 = median(r.iter().map(|x| x.0).collect());
        let c8 = median(r.iter().map(|x| x.1).collect());
        let trips = r.iter().filter_map(|x| x.2).next_back();
        println!(
            "| {} | {c1:.1} | {:+.1} | {c8:.1} | {:+.1} | {} |",
            t.name,
            c1 - base,
            c8 - base8,
            trips.map_or("—".to_string(), |t| format!("{t:.2}"))
        );
    }
}
