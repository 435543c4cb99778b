//! Every request ends in exactly one usage record with its route, tokens and attempts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::{Arc, Mutex};

use switchyard_router::{RequestRecord, UsageSink};
use switchyard_sim::{Fault, FaultRule};

#[derive(Default)]
struct Collect(Mutex<Vec<RequestRecord>>);

impl UsageSink for Collect {
    fn record(&self, r: RequestRecord) {
        self.0.lock().unwrap().push(r);
    }
}

/// The first usage record `sink` gets (waiting for it).
async fn first_record(sink: &Arc<Collect>) -> RequestRecord {
    common::eventually(20, "the usage record of the caller that left", || {
        let sink = sink.clone();
        async move { !sink.0.lock().unwrap().is_empty() }
    })
    .await;
    sink.0.lock().unwrap()[0].clone()
}

/// `switchyard serve` with the seed config in front of `sim`, its usage records collected.
async fn serve_recording(sim: &switchyard_sim::SimHandle) -> (common::Serve, Arc<Collect>) {
    let sink = Arc::new(Collect::default());
    let gw = common::serve_with(
        common::config_from(&common::seed_config_text(&sim.base_url())),
        switchyard::ServeOptions {
            usage_sink: Some(sink.clone()),
            embedded_prober: Some(false),
            ..Default::default()
        },
    )
    .await;
    (gw, sink)
}

#[tokio::test]
async fn records_route_tokens_and_attempts() {
    let sim = common::reference_ollama().await;
    let (gw, sink) = serve_recording(&sim).await;
    let url = gw.url("/v1/chat/completions");
    let http = common::client();

    let r = http
        .post(&url)
        .json(&common::chat_body(
            "local-small",
            "hello [[tokens=7]]",
            false,
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    sim.add_fault(FaultRule::for_model(
        "llama3.2:1b",
        Fault::Status {
            code: 500,
            message: "boom".into(),
        },
        Some(1),
    ));
    let r = http
        .post(&url)
        .json(&common::chat_body(
            "local-small",
            "again [[tokens=4]]",
            true,
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.text().await.unwrap();
    let r = http
        .post(&url)
        .json(&common::chat_body(
            "local-small",
            &common::words(40_000),
            false,
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    let records = sink.0.lock().unwrap().clone();
    assert_eq!(records.len(), 3, "{records:#?}");
    let ok = &records[0];
    assert_eq!((ok.status.as_str(), ok.http_status), ("ok", 200));
    assert_eq!(ok.backend_model.as_deref(), Some("llama3.2:1b"));
    assert_eq!(ok.completion_tokens, 7);
    assert!(!ok.tokens_estimated);
    assert!(ok.prompt_tokens > 0);
    assert_eq!(ok.attempts.len(), 1);

    let fb = &records[1];
    assert!(fb.streamed);
    assert_eq!(fb.served_group.as_deref(), Some("local-medium"));
    assert_eq!(fb.completion_tokens, 4);
    assert!(fb.ttft_ms.is_some());
    assert_eq!(fb.attempts.len(), 2);
    assert_eq!(
        fb.attempts[0].failure_class.as_deref(),
        Some("server_error")
    );
    assert_eq!(fb.attempts[1].failure_class, None);

    let refused = &records[2];
    assert_eq!(
        (refused.status.as_str(), refused.http_status),
        ("context_length_exceeded", 400)
    );
    assert!(refused.attempts.is_empty());
}

#[tokio::test]
async fn a_caller_that_leaves_mid_stream_is_recorded_with_its_deployment_and_tokens() {
    let sim = common::reference_ollama().await;
    // Three chunks, then silence long enough for the caller to give up.
    sim.add_fault(FaultRule::for_model(
        "llama3.2:1b",
        Fault::StallAfter {
            chunks: 3,
            stall: std::time::Duration::from_secs(30),
        },
        Some(1),
    ));
    let (gw, sink) = serve_recording(&sim).await;
    let mut r = common::client()
        .post(gw.url("/v1/chat/completions"))
        .json(&common::chat_body(
            "local-small",
            "tell me more [[tokens=50]]",
            true,
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Read until some answer text has arrived, then hang up.
    let mut seen = String::new();
    while !seen.contains("\"content\":\"") || seen.matches("data: ").count() < 3 {
        let chunk = r.chunk().await.unwrap().expect("stream ended early");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    drop(r);

    let record = first_record(&sink).await;
    assert_eq!(
        (record.status.as_str(), record.http_status),
        ("client_disconnected", 499)
    );
    assert_eq!(record.backend_model.as_deref(), Some("llama3.2:1b"));
    assert_eq!(record.served_group.as_deref(), Some("local-small"));
    assert!(record.deployment.is_some());
    assert!(record.tokens_estimated);
    assert!(record.prompt_tokens > 0, "{record:#?}");
    assert!(record.completion_tokens >= 1, "{record:#?}");
    assert_eq!(record.attempts.len(), 1);
    assert_eq!(
        record.attempts[0].failure_class.as_deref(),
        Some("client_disconnected")
    );
}

/// The seed config's 1B model holds back its whole (unstreamed) answer long enough for a
/// caller to give up.
fn stall_unstreamed(sim: &switchyard_sim::SimHandle) {
    sim.add_fault(FaultRule::for_model(
        "llama3.2:1b",
        Fault::StallAfter {
            chunks: 0,
            stall: std::time::Duration::from_secs(30),
        },
        Some(1),
    ));
}

/// Sends an unstreamed request to `url`, hangs up once the backend has it, and checks the usage
/// record that follows.
async fn leave_before_the_answer(
    url: String,
    sim: &switchyard_sim::SimHandle,
    sink: &Arc<Collect>,
) {
    let caller = tokio::spawn(async move {
        let _ = common::client()
            .post(url)
            .json(&common::chat_body(
                "local-small",
                "hello [[tokens=5]]",
                false,
            ))
            .send()
            .await;
    });
    common::eventually(20, "the request to reach the backend", || {
        let n = sim.request_count("llama3.2:1b");
        async move { n == 1 }
    })
    .await;
    // Hang up while the backend is still working on it.
    caller.abort();

    let record = first_record(sink).await;
    assert_eq!(
        (record.status.as_str(), record.http_status),
        ("client_disconnected", 499)
    );
    assert!(!record.streamed);
    assert_eq!(record.backend_model.as_deref(), Some("llama3.2:1b"));
    assert_eq!(record.attempts.len(), 1);
    assert_eq!(
        record.attempts[0].failure_class.as_deref(),
        Some("client_disconnected")
    );
}

#[tokio::test]
async fn a_caller_that_leaves_before_an_unstreamed_answer_is_recorded_too() {
    let sim = common::reference_ollama().await;
    stall_unstreamed(&sim);
    let (gw, sink) = serve_recording(&sim).await;
    leave_before_the_answer(gw.url("/v1/chat/completions"), &sim, &sink).await;
}

#[tokio::test]
async fn in_split_mode_too_a_caller_that_leaves_before_an_unstreamed_answer_is_recorded() {
    let sim = common::reference_ollama().await;
    stall_unstreamed(&sim);
    let config = common::config_from(&common::seed_config_text(&sim.base_url()));
    let sink = Arc::new(Collect::default());
    let (_stop, stopped) = tokio::sync::watch::channel(());
    let until_stopped = |mut rx: tokio::sync::watch::Receiver<()>| async move {
        let _ = rx.changed().await;
    };
    let router = switchyard::router(
        config.clone(),
        "127.0.0.1:0".parse().unwrap(),
        switchyard::ServeOptions {
            usage_sink: Some(sink.clone()),
            embedded_prober: Some(false),
            ..Default::default()
        },
        until_stopped(stopped.clone()),
    )
    .await
    .unwrap();
    let router_url = format!("http://{}", router.addr);
    tokio::spawn(router.serve);
    let gateway = switchyard::gateway(
        &config,
        &router_url,
        "127.0.0.1:0".parse().unwrap(),
        until_stopped(stopped),
    )
    .await
    .unwrap();
    let url = format!("http://{}/v1/chat/completions", gateway.addr);
    // The gateway's server future borrows the config, so it runs beside the test, not spawned.
    tokio::select! {
        r = gateway.serve => panic!("the gateway stopped: {r:?}"),
        () = leave_before_the_answer(url, &sim, &sink) => {}
    }
}
