//! A client that dribbles its request head (slowloris) is cut when `gateway.header_read_timeout`
//! runs out, while other clients are served meanwhile; on shutdown a stream in progress finishes
//! and new connections are refused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use switchyard_sim::{SimConfig, SimHandle, SimModel};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn a_slow_request_head_is_cut_and_others_are_served() {
    let sim = common::reference_ollama().await;
    let mut text = common::seed_config_text(&sim.base_url());
    text.push_str("gateway:\n  header_read_timeout: 1s\n");
    let gw = common::serve(common::config_from(&text)).await;

    let mut slow = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    slow.write_all(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // Meanwhile a normal client is served.
    let r = common::client()
        .post(gw.url("/v1/chat/completions"))
        .json(&common::chat_body("local-small", "hi", false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The slow one keeps dribbling a header byte now and then; the server hangs up on it.
    let mut buf = [0u8; 256];
    let closed = async {
        loop {
            if slow.write_all(b"X").await.is_err() {
                return;
            }
            match tokio::time::timeout(Duration::from_millis(200), slow.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return,
                Ok(Ok(_)) => return, // an error answer (408) before closing is fine too
                Err(_) => {}         // nothing yet: keep dribbling
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), closed)
        .await
        .expect("the server kept a slowloris connection open");
}

#[tokio::test]
async fn shutdown_lets_a_stream_finish_and_refuses_new_connections() {
    let sim = SimHandle::start(SimConfig {
        chunk_delay: Duration::from_millis(20),
        ..SimConfig::ollama(vec![
            SimModel::new("llama3.2:1b", 131072),
            SimModel::new("llama3.1:8b", 131072),
            SimModel::new("mistral:7b", 32768),
        ])
    })
    .await
    .unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let dir = tempfile::tempdir().unwrap();
    let bound = switchyard::serve(
        common::config_from(&common::seed_config_text(&sim.base_url())),
        "127.0.0.1:0".parse().unwrap(),
        switchyard::ServeOptions {
            data_dir: Some(dir.path().to_path_buf()),
            embedded_prober: Some(false),
            ..Default::default()
        },
        async {
            let _ = stop_rx.await;
        },
    )
    .await
    .unwrap();
    let addr = bound.addr;
    let server = tokio::spawn(bound.serve);
    let mut resp = common::client()
        .post(format!("http://{addr}/v1/chat/completions"))
        .json(&common::chat_body("local-small", "go [[tokens=40]]", true))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let first = resp.chunk().await.unwrap().unwrap();
    assert!(!first.is_empty());
    // Shut down while the stream is still running (40 tokens at 20 ms each).
    stop_tx.send(()).unwrap();
    let mut rest = Vec::new();
    while let Some(c) = resp.chunk().await.unwrap() {
        rest.extend_from_slice(&c);
    }
    let text = String::from_utf8_lossy(&rest);
    assert!(text.contains("data: [DONE]"), "the stream was cut: {text}");
    // The server stops, having written the request's usage record.
    tokio::time::timeout(Duration::from_secs(30), server)
        .await
        .expect("the server did not stop")
        .unwrap()
        .unwrap();
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    let store = switchyard_ledger::SqliteStore::open(dir.path().join("switchyard-usage.db"))
        .await
        .unwrap();
    let got = switchyard_ledger::UsageStore::query(&store, &Default::default())
        .await
        .unwrap();
    assert_eq!(
        got.records.len(),
        1,
        "the finished stream's record is in the ledger"
    );
}
