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
    for p in dash["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().unwrap() {
            for name in metric_names(t["expr"].as_str().unwrap()) {
                wanted.insert(name);
            }
        }
    }
    assert!(wanted.len() >= 8, "{wanted:?}");

    // A scenario that makes every series appear: success, fallback, continuation, refusal.
    let sim = common::reference_ollama().await;
    let gw = common::serve(common::config_from(&common::seed_config_text(
        &sim.base_url(),
    )))
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
