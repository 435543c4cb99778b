//! Failure injection on both flavors, and shutdown.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::{MODEL, client, llamacpp, ndjson_lines, ollama, read_until_end, sse_events};
use serde_json::{Value, json};
use switchyard_sim::{Fault, FaultRule};

fn chat_body(stream: bool) -> Value {
    json!({"model": MODEL, "stream": stream,
           "messages": [{"role": "user", "content": "hi [[tokens=6]]"}]})
}

#[tokio::test]
async fn status_faults_use_each_flavors_error_shape() {
    let sim = ollama().await;
    let c = client();
    let url = format!("{}/api/chat", sim.base_url());
    sim.add_fault(FaultRule {
        model: Some(MODEL.to_owned()),
        fault: Fault::Status {
            code: 503,
            message: "server busy".to_owned(),
        },
        times: Some(2),
    });
    for _ in 0..2 {
        let r = c.post(&url).json(&chat_body(false)).send().await.unwrap();
        assert_eq!(r.status(), 503);
        assert_eq!(
            r.json::<Value>().await.unwrap(),
            json!({"error": "server busy"})
        );
    }
    // Another model is unaffected, and the rule is used up after 2 times.
    let mut other = chat_body(false);
    other["model"] = json!("qwen2.5:7b");
    assert_eq!(
        c.post(&url).json(&other).send().await.unwrap().status(),
        200
    );
    assert_eq!(
        c.post(&url)
            .json(&chat_body(false))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // Faulted attempts were recorded too.
    assert_eq!(sim.request_count(MODEL), 3);

    let sim = llamacpp(4096).await;
    sim.add_fault(FaultRule::always(Fault::Status {
        code: 503,
        message: "Loading model".to_owned(),
    }));
    let r = c
        .post(format!("{}/v1/chat/completions", sim.base_url()))
        .json(&chat_body(true))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}})
    );
    sim.clear_faults();
    sim.add_fault(FaultRule::always(Fault::Status {
        code: 500,
        message: "boom".to_owned(),
    }));
    let r = c
        .post(format!("{}/v1/completions", sim.base_url()))
        .json(&json!({"prompt": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 500);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["type"],
        "server_error"
    );
}

#[tokio::test]
async fn reset_and_slow_first_byte() {
    let sim = ollama().await;
    let c = client();
    let url = format!("{}/api/chat", sim.base_url());
    sim.add_fault(FaultRule::for_model(MODEL, Fault::Reset, Some(1)));
    let err = c
        .post(&url)
        .json(&chat_body(true))
        .send()
        .await
        .unwrap_err();
    assert!(!err.is_status(), "{err:?}");
    assert_eq!(sim.request_count(MODEL), 1);

    sim.add_fault(FaultRule::for_model(
        MODEL,
        Fault::SlowFirstByte(Duration::from_millis(150)),
        Some(1),
    ));
    let t = Instant::now();
    let r = c.post(&url).json(&chat_body(false)).send().await.unwrap();
    assert!(t.elapsed() >= Duration::from_millis(150));
    assert_eq!(r.status(), 200);
    // Back to normal.
    assert_eq!(
        c.post(&url)
            .json(&chat_body(false))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn cut_and_error_line_in_ollama_streams() {
    let sim = ollama().await;
    let c = client();
    let url = format!("{}/api/chat", sim.base_url());

    sim.add_fault(FaultRule::for_model(
        MODEL,
        Fault::CutAfter { chunks: 2 },
        Some(1),
    ));
    let r = c.post(&url).json(&chat_body(true)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let (body, failed) = read_until_end(r).await;
    assert!(failed, "the connection must be cut abruptly");
    let lines = ndjson_lines(&body);
    assert_eq!(lines.len(), 2);
    assert!(lines.iter().all(|l| l["done"] == false));

    sim.add_fault(FaultRule::for_model(
        MODEL,
        Fault::ErrorLineAfter { chunks: 3 },
        Some(1),
    ));
    let r = c.post(&url).json(&chat_body(true)).send().await.unwrap();
    let (body, failed) = read_until_end(r).await;
    assert!(!failed);
    let lines = ndjson_lines(&body);
    assert_eq!(lines.len(), 4);
    assert!(
        lines[3]["error"]
            .as_str()
            .unwrap()
            .starts_with("an error was encountered while running the model")
    );
    assert!(lines.iter().all(|l| l.get("done") != Some(&json!(true))));

    // Non-stream CutAfter drops the connection.
    sim.add_fault(FaultRule::for_model(
        MODEL,
        Fault::CutAfter { chunks: 0 },
        Some(1),
    ));
    assert!(c.post(&url).json(&chat_body(false)).send().await.is_err());
}

#[tokio::test]
async fn cut_error_and_stall_in_sse_streams() {
    let sim = llamacpp(4096).await;
    let c = client();
    let url = format!("{}/v1/chat/completions", sim.base_url());

    sim.add_fault(FaultRule::always(Fault::CutAfter { chunks: 2 }));
    let (body, failed) =
        read_until_end(c.post(&url).json(&chat_body(true)).send().await.unwrap()).await;
    assert!(failed);
    let events = sse_events(&body);
    assert_eq!(events.len(), 2, "role chunk + 1 content chunk");
    assert!(!body.contains("[DONE]") && !body.contains("finish_reason\":\"stop"));

    sim.clear_faults();
    sim.add_fault(FaultRule::always(Fault::ErrorLineAfter { chunks: 1 }));
    let (body, failed) =
        read_until_end(c.post(&url).json(&chat_body(true)).send().await.unwrap()).await;
    assert!(!failed);
    let events = sse_events(&body);
    assert_eq!(events.len(), 2);
    let e: Value = serde_json::from_str(&events[1]).unwrap();
    assert_eq!(e["error"]["type"], "server_error");
    assert!(!body.contains("[DONE]"));

    sim.clear_faults();
    sim.add_fault(FaultRule::always(Fault::StallAfter {
        chunks: 3,
        stall: Duration::from_millis(200),
    }));
    let mut r = c.post(&url).json(&chat_body(true)).send().await.unwrap();
    let t = Instant::now();
    let mut received = String::new();
    let mut arrivals = Vec::new(); // (events so far, when)
    while let Some(chunk) = r.chunk().await.unwrap() {
        received.push_str(std::str::from_utf8(&chunk).unwrap());
        arrivals.push((sse_events(&received).len(), t.elapsed()));
    }
    let at = |n: usize| arrivals.iter().find(|(k, _)| *k >= n).unwrap().1;
    assert_eq!(
        arrivals.iter().find(|(k, _)| *k >= 3).unwrap().0,
        3,
        "stall after exactly 3"
    );
    assert!(at(4) - at(3) >= Duration::from_millis(190), "{arrivals:?}");
    let events = sse_events(&received);
    assert_eq!(events.last().unwrap(), "[DONE]");
    assert_eq!(events.len(), 1 + 6 + 1 + 1);
}

#[tokio::test]
async fn shutdown_refuses_new_connections() {
    let sim = ollama().await;
    let base = sim.base_url();
    let c = client();
    assert_eq!(c.get(&base).send().await.unwrap().status(), 200);
    sim.shutdown().await;
    let fresh = reqwest::Client::new();
    let err = fresh.get(&base).send().await.unwrap_err();
    assert!(err.is_connect(), "{err:?}");
    // The pooled keep-alive connection was closed too.
    assert!(c.get(&base).send().await.is_err());
}
