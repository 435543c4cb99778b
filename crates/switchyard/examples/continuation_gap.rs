//! Measures what a client sees when a backend dies mid-stream: the gap between the last chunk
//! of the failed backend and the first chunk of the continuation, against a zero-latency
//! simulator on loopback. `cargo run --release -p switchyard --example continuation_gap [N]`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use switchyard_sim::{Fault, FaultRule, SimConfig, SimHandle, SimModel};

#[tokio::main]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200);
    let sim = SimHandle::start(SimConfig {
        chunk_delay: Duration::from_millis(2),
        ..SimConfig::ollama(vec![
            SimModel::new("llama3.2:1b", 8192),
            SimModel::new("llama3.1:8b", 8192),
        ])
    })
    .await
    .unwrap();
    let text = format!(
        "model_list:\n  - {{model_name: small, litellm_params: {{model: ollama/llama3.2:1b, api_base: \"{b}\", max_tokens: 2048}}}}\n  - {{model_name: medium, litellm_params: {{model: ollama/llama3.1:8b, api_base: \"{b}\", max_tokens: 8192}}}}\nrouter_settings: {{fallbacks: [small, medium], allowed_fails: 100000}}\n",
        b = sim.base_url()
    );
    let config = switchyard_core::config::load_str(
        "gap.yaml",
        &text,
        None,
        &HashMap::<String, String>::new(),
    )
    .unwrap();
    let (_stop, rx) = tokio::sync::oneshot::channel::<()>();
    let opts = switchyard::ServeOptions {
        embedded_prober: Some(false),
        ..Default::default()
    };
    let bound = switchyard::serve(config, "127.0.0.1:0".parse().unwrap(), opts, async {
        let _ = rx.await;
    })
    .await
    .unwrap();
    let addr = bound.addr;
    tokio::spawn(bound.serve);
    let http = reqwest::Client::new();
    let body = serde_json::json!({"model": "small", "stream": true, "messages": [{"role": "user", "content": "go [[tokens=20]]"}]});
    let (mut normal, mut at_cut) = (Vec::new(), Vec::new());
    for i in 0..n {
        // Fresh router state is not needed: passive health would mark the 1B model down after a
        // few failures, so alternate a clean request in between to keep it up.
        sim.add_fault(FaultRule::for_model(
            "llama3.2:1b",
            Fault::CutAfter { chunks: 10 },
            Some(1),
        ));
        let mut resp = http
            .post(format!("http://{addr}/v1/chat/completions"))
            .json(&body)
            .send()
            .await
            .unwrap();
        let mut last = Instant::now();
        let mut chunks = 0;
        while let Some(c) = resp.chunk().await.unwrap() {
            let now = Instant::now();
            let events = c.windows(6).filter(|w| *w == b"data: ").count();
            if chunks > 1 {
                let gap = now - last;
                if chunks == 11 {
                    at_cut.push(gap)
                } else {
                    normal.push(gap)
                }
            }
            chunks += events.max(1);
            last = now;
        }
        let _ = i;
        let r = http
            .post(format!("http://{addr}/v1/chat/completions"))
            .json(&body)
            .send()
            .await
            .unwrap();
        r.text().await.unwrap();
    }
    let pct = |v: &mut Vec<Duration>, p: f64| {
        v.sort();
        v[((v.len() as f64 * p) as usize).min(v.len() - 1)]
    };
    println!(
        "{n} cut streams: gap at the continuation p50 {:?} p99 {:?}; ordinary gap between chunks p50 {:?} p99 {:?} (the simulator emits a chunk every 2 ms)",
        pct(&mut at_cut, 0.5),
        pct(&mut at_cut, 0.99),
        pct(&mut normal, 0.5),
        pct(&mut normal, 0.99)
    );
}
