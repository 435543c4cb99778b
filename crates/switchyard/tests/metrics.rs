//! `/metrics` parses as Prometheus text and counts what happened in a scripted scenario,
//! including a fallback and a continuation.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashMap;

use switchyard_sim::{Fault, FaultRule};

/// Parses the exposition into `series -> value`, failing on any malformed line.
fn parse(text: &str) -> HashMap<String, f64> {
    let mut out = HashMap::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad line {line:?}"));
        let name_end = series.find('{').unwrap_or(series.len());
        let name = &series[..name_end];
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad metric name in {line:?}"
        );
        if name_end < series.len() {
            assert!(series.ends_with('}'), "unterminated labels in {line:?}");
        }
        let v: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line:?}"));
        out.insert(series.to_string(), v);
    }
    out
}

#[tokio::test]
async fn metrics_count_requests_fallbacks_and_continuations() {
    let sim = common::reference_ollama().await;
    let gw = common::serve(common::config_from(&common::seed_config_text(
        &sim.base_url(),
    )))
    .await;
    let http = common::client();
    let url = gw.url("/v1/chat/completions");
    let ok = |content: &str, stream: bool| {
        http.post(&url)
            .json(&common::chat_body("local-small", content, stream))
            .send()
    };

    ok("plain [[tokens=5]]", false)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    sim.add_fault(FaultRule::for_model(
        "llama3.2:1b",
        Fault::Status {
            code: 500,
            message: "boom".into(),
        },
        Some(1),
    ));
    ok("fallback [[tokens=5]]", false)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    sim.add_fault(FaultRule::for_model(
        "llama3.2:1b",
        Fault::CutAfter { chunks: 3 },
        Some(1),
    ));
    ok("continued [[tokens=8]]", true)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let r = ok(&common::words(40_000), false).await.unwrap();
    assert_eq!(r.status(), 400);

    let resp = http.get(gw.url("/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    let m = parse(&text);
    let get = |s: &str| {
        *m.get(s)
            .unwrap_or_else(|| panic!("no series {s} in:\n{text}"))
    };
    assert_eq!(
        get(r#"switchyard_requests_total{group="local-small",status="ok"}"#),
        3.0
    );
    assert_eq!(
        get(r#"switchyard_requests_total{group="local-small",status="context_length_exceeded"}"#),
        1.0
    );
    assert_eq!(
        get(r#"switchyard_fallbacks_total{reason="server_error"}"#),
        1.0
    );
    assert_eq!(
        get(r#"switchyard_continuations_total{reason="stream_broken"}"#),
        1.0
    );
    assert_eq!(
        get(r#"switchyard_attempts_total{deployment="local-small/llama3.2:1b",outcome="ok"}"#),
        1.0
    );
    assert_eq!(
        get(r#"switchyard_attempts_total{deployment="local-medium/llama3.1:8b",outcome="ok"}"#),
        2.0
    );
    assert_eq!(
        get(r#"switchyard_tokens_total{deployment="local-small/llama3.2:1b",kind="completion"}"#),
        5.0
    );
    assert_eq!(
        get(r#"switchyard_request_duration_seconds_count{group="local-small"}"#),
        4.0
    );
    assert_eq!(get("switchyard_overhead_seconds_count"), 4.0);
    assert_eq!(
        get(r#"switchyard_inflight{deployment="local-small/llama3.2:1b"}"#),
        0.0
    );
    assert_eq!(
        get(r#"switchyard_deployment_up{deployment="local-large/mistral:7b"}"#),
        -1.0
    );
    assert!(text.trim_end().ends_with("# EOF"));
    eprintln!("metrics page: {} bytes, {} series", text.len(), m.len());
}

fn free_addr() -> String {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string()
}

async fn scrape(http: &reqwest::Client, url: &str) -> (String, HashMap<String, f64>) {
    let resp = http.get(url).send().await.unwrap();
    assert_eq!(resp.status(), 200, "{url}");
    let text = resp.text().await.unwrap();
    assert!(text.trim_end().ends_with("# EOF"), "{url}: no # EOF");
    let m = parse(&text);
    (text, m)
}

/// Gateway, router and ledger as separate processes: each has its own `/metrics`, and after the
/// scenario (a fallback, a continuation, an overflow) each counts its share.
#[tokio::test]
async fn every_service_process_serves_its_own_metrics() {
    let sim = common::reference_ollama().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, common::seed_config_text(&sim.base_url())).unwrap();
    let path = path.to_str().unwrap();
    let data = dir.path().to_str().unwrap();
    let (ledger_metrics, router_metrics) = (free_addr(), free_addr());
    let ledger = common::spawn_switchyard(&[
        "ledger",
        "--config",
        path,
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        data,
        "--metrics-listen",
        &ledger_metrics,
    ])
    .await;
    let ledger_url = format!("http://{}", ledger.addr);
    let router = common::spawn_switchyard_env(
        &[
            "router",
            "--config",
            path,
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data,
            "--metrics-listen",
            &router_metrics,
        ],
        &[("SWITCHYARD__LEDGER__ADDRESS", ledger_url.as_str())],
    )
    .await;
    let router_url = format!("http://{}", router.addr);
    let gateway = common::spawn_switchyard(&[
        "gateway",
        "--config",
        path,
        "--listen",
        "127.0.0.1:0",
        "--router",
        &router_url,
    ])
    .await;
    let http = common::client();
    let url = gateway.url("/v1/chat/completions");
    let send = |content: String, stream: bool| {
        http.post(&url)
            .json(&common::chat_body("local-small", &content, stream))
            .send()
    };
    send("plain [[tokens=5]]".into(), false)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    sim.add_fault(FaultRule::for_model(
        "llama3.2:1b",
        Fault::Status {
            code: 500,
            message: "boom".into(),
        },
        Some(1),
    ));
    send("fallback [[tokens=5]]".into(), false)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    sim.add_fault(FaultRule::for_model(
        "llama3.2:1b",
        Fault::CutAfter { chunks: 3 },
        Some(1),
    ));
    send("continued [[tokens=8]]".into(), true)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        send(common::words(40_000), false).await.unwrap().status(),
        400
    );

    let (_, r) = scrape(&http, &format!("http://{router_metrics}/metrics")).await;
    assert_eq!(
        r[r#"switchyard_requests_total{group="local-small",status="ok"}"#],
        3.0
    );
    assert_eq!(
        r[r#"switchyard_requests_total{group="local-small",status="context_length_exceeded"}"#],
        1.0
    );
    assert_eq!(
        r[r#"switchyard_fallbacks_total{reason="server_error"}"#],
        1.0
    );
    assert_eq!(
        r[r#"switchyard_continuations_total{reason="stream_broken"}"#],
        1.0
    );
    assert_eq!(r["switchyard_overhead_seconds_count"], 4.0);
    assert_eq!(r["switchyard_redis_errors_total"], 0.0);
    assert!(r.contains_key("switchyard_recorder_spool_records"));
    assert!(
        r.contains_key(r#"switchyard_deployment_loaded{deployment="local-small/llama3.2:1b"}"#)
    );

    let (_, g) = scrape(&http, &gateway.url("/metrics")).await;
    assert_eq!(
        g[r#"switchyard_gateway_http_requests_total{route="/v1/chat/completions",code="200"}"#],
        3.0
    );
    assert_eq!(
        g[r#"switchyard_gateway_http_requests_total{route="/v1/chat/completions",code="400"}"#],
        1.0
    );

    // Every request reaches the ledger, and the router's recorder has nothing left over.
    let ledger_page = format!("http://{ledger_metrics}/metrics");
    common::eventually(30, "the ledger inserted all four records", || {
        let (http, ledger_page) = (http.clone(), ledger_page.clone());
        async move {
            let (_, l) = scrape(&http, &ledger_page).await;
            l.get(r#"switchyard_ledger_records_total{outcome="inserted"}"#) == Some(&4.0)
        }
    })
    .await;
    let (ledger_text, l) = scrape(&http, &ledger_page).await;
    assert_eq!(l["switchyard_ledger_write_errors_total"], 0.0);
    let (router_text, _) = scrape(&http, &format!("http://{router_metrics}/metrics")).await;
    let (gateway_text, _) = scrape(&http, &gateway.url("/metrics")).await;
    eprintln!(
        "metrics pages: router {} bytes, gateway {} bytes, ledger {} bytes",
        router_text.len(),
        gateway_text.len(),
        ledger_text.len()
    );
    assert!(l["switchyard_ledger_batch_write_seconds_count"] >= 1.0);
    common::eventually(30, "the router's recorder has delivered everything", || {
        let http = http.clone();
        let page = format!("http://{router_metrics}/metrics");
        async move {
            let (_, r) = scrape(&http, &page).await;
            r.get(r#"switchyard_recorder_records_total{outcome="delivered"}"#) == Some(&4.0)
                && r.get("switchyard_recorder_pending_records") == Some(&0.0)
        }
    })
    .await;
}
