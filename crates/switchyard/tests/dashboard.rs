//! The Grafana dashboard that ships in `deploy/` only queries metrics the code exports: every
//! `switchyard_*` name in a PromQL expression must appear on a real `/metrics` page.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;

use serde_json::Value;
use switchyard_sim::{Fault, FaultRule};

/// `switchyard_…` identifiers in a PromQL expression.
fn metric_names(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = expr;
    while let Some(i) = rest.find("switchyard_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        out.push(tail[..end].to_string());
        rest = &tail[end..];
    }
    out
}

#[tokio::test]
async fn every_dashboard_query_names_an_exported_metric() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/grafana/dashboards/switchyard.json"
    );
    let dash: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut wanted = BTreeSet::new();
    let mut trace_panels = 0;
    for p in dash["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().unwrap() {
            match t["datasource"]["uid"].as_str() {
                // TraceQL, not PromQL: it queries span names the trace test checks.
                Some("tempo") => {
                    let q = t["query"].as_str().unwrap();
                    assert!(q.contains("router.chat"), "{q}");
                    trace_panels += 1;
                }
                _ => {
                    for name in metric_names(t["expr"].as_str().unwrap()) {
                        wanted.insert(name);
                    }
                }
            }
        }
    }
    assert!(wanted.len() >= 8, "{wanted:?}");
    assert!(trace_panels >= 1, "no trace panel");

    // A scenario that makes every series appear: success, fallback, continuation, refusal; usage
    // recorded through a ledger service of its own.
    let sim = common::reference_ollama().await;
    let dir = tempfile::tempdir().unwrap();
    let ledger_metrics = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let ledger = common::spawn_switchyard(&[
        "ledger",
        "--config",
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fixtures/seed-config.yaml"
        ),
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--metrics-listen",
        &ledger_metrics,
    ])
    .await;
    let mut config = common::config_from(&common::seed_config_text(&sim.base_url()));
    // A slot limit, so the slot series are on the page too.
    config.deployments[0].capacity.max_parallel = Some(4);
    config.ledger.address = Some(format!("http://{}", ledger.addr));
    let gw = common::serve_with(
        config,
        switchyard::ServeOptions {
            data_dir: Some(dir.path().to_path_buf()),
            ..Default::default()
        },
    )
    .await;
    let http = common::client();
    let url = gw.url("/v1/chat/completions");
    http.post(&url)
        .json(&common::chat_body("local-small", "hi", true))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    sim.add_fault(FaultRule::for_model(
        "llama3.2:1b",
        Fault::Status {
            code: 500,
            message: "x".into(),
        },
        Some(1),
    ));
    http.post(&url)
        .json(&common::chat_body("local-small", "hi", false))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    sim.add_fault(FaultRule::for_model(
        "llama3.2:1b",
        Fault::CutAfter { chunks: 2 },
        Some(1),
    ));
    http.post(&url)
        .json(&common::chat_body("local-small", "hi", true))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let page = http
        .get(gw.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let ledger_url = format!("http://{ledger_metrics}/metrics");
    common::eventually(30, "the ledger has written the records", || {
        let (http, url) = (http.clone(), ledger_url.clone());
        async move {
            let page = http.get(&url).send().await.unwrap().text().await.unwrap();
            page.contains("switchyard_ledger_records_total{outcome=\"inserted\"} 3")
        }
    })
    .await;
    let ledger_page = http
        .get(&ledger_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let page = format!("{page}\n{ledger_page}");
    let exported: BTreeSet<String> = page
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap().to_string())
        .collect();
    let missing: Vec<&String> = wanted.iter().filter(|n| !exported.contains(*n)).collect();
    assert!(
        missing.is_empty(),
        "the dashboard queries metrics the code does not export: {missing:?}\nexported: {exported:?}"
    );
}
