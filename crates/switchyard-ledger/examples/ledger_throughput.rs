//! Measures ledger write throughput: `cargo run --release -p switchyard-ledger --example
//! ledger_throughput`. Batches of 256 straight into SQLite and PostgreSQL (if reachable at
//! 127.0.0.1:5432, database `test`), then end to end through a Recorder and the gRPC service.

#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use switchyard_ledger::{
    Attempt, LedgerTarget, PostgresConfig, PostgresStore, Recorder, RecorderConfig, SqliteStore,
    UsageRecord, UsageStore, serve_ledger,
};

const BATCH: usize = 256;
const BATCHES: usize = 200;

fn record(run: &str, i: usize) -> UsageRecord {
    UsageRecord {
        request_id: format!("{run}-{i:08}"),
        time_ms: 1_767_225_600_000 + i as i64,
        api_key_id: format!("key-{}", i % 10),
        requested_group: "small".into(),
        served_group: "small".into(),
        deployment: format!("ollama-{}", i % 3),
        backend_model: "qwen3:0.6b".into(),
        prompt_tokens: 512,
        completion_tokens: 128,
        latency_ms: 900,
        ttft_ms: Some(80),
        streamed: true,
        status: "ok".into(),
        http_status: 200,
        attempts: vec![Attempt {
            deployment: format!("ollama-{}", i % 3),
            ..Default::default()
        }],
        traceparent: None,
        api: String::new(),
        ..Default::default()
    }
}

async fn direct(name: &str, store: &dyn UsageStore) {
    let run = uuid::Uuid::new_v4().simple().to_string();
    let records: Vec<UsageRecord> = (0..BATCH * BATCHES).map(|i| record(&run, i)).collect();
    let started = Instant::now();
    for batch in records.chunks(BATCH) {
        let out = store.insert_batch(batch).await.unwrap();
        assert_eq!(out.inserted as usize, batch.len());
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{name:<10} insert_batch x{BATCH}: {:>8.0} records/s ({:.2} ms per batch)",
        records.len() as f64 / secs,
        secs * 1000.0 / BATCHES as f64
    );
}

async fn postgres() -> Option<(PostgresStore, String, String)> {
    for url in [
        "postgres://postgres@127.0.0.1:5432/test",
        "postgres://root@127.0.0.1:5432/test",
    ] {
        let options = PgConnectOptions::from_str(url).ok()?;
        if PgConnection::connect_with(&options).await.is_ok() {
            let schema = format!("ledger_bench_{}", uuid::Uuid::new_v4().simple());
            let store = PostgresStore::connect(PostgresConfig::new(url).with_schema(&schema))
                .await
                .ok()?;
            return Some((store, url.to_owned(), schema));
        }
    }
    None
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Arc::new(
        SqliteStore::open(dir.path().join("bench.db"))
            .await
            .unwrap(),
    );
    direct("sqlite", sqlite.as_ref()).await;

    match postgres().await {
        Some((store, url, schema)) => {
            direct("postgres", &store).await;
            let mut conn = PgConnection::connect_with(&PgConnectOptions::from_str(&url).unwrap())
                .await
                .unwrap();
            sqlx::query(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
                .execute(&mut conn)
                .await
                .unwrap();
        }
        None => println!("postgres   skipped: PostgreSQL not reachable at 127.0.0.1:5432"),
    }

    // End to end: Recorder -> gRPC -> LedgerService -> SQLite.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve_ledger(
        sqlite.clone(),
        listener,
        std::future::pending(),
    ));
    let target = LedgerTarget::remote(&format!("http://{addr}"), Duration::from_secs(5)).unwrap();
    let config = RecorderConfig {
        queue_capacity: 1 << 20,
        ..RecorderConfig::new(dir.path().join("spool"))
    };
    let recorder = Recorder::start(target, config).await.unwrap();
    let run = uuid::Uuid::new_v4().simple().to_string();
    let records: Vec<UsageRecord> = (0..BATCH * BATCHES).map(|i| record(&run, i)).collect();
    let n = records.len();
    let started = Instant::now();
    for r in records {
        recorder.record(r);
    }
    let enqueue = started.elapsed();
    let out = recorder.flush().await;
    let secs = started.elapsed().as_secs_f64();
    assert!(out.delivered_all);
    let stats = recorder.stats();
    assert_eq!(stats.delivered as usize, n);
    println!(
        "recorder   -> gRPC -> sqlite: {:>8.0} records/s end to end; record() {:.0} ns per call",
        n as f64 / secs,
        enqueue.as_nanos() as f64 / n as f64
    );
}
