//! The recorder against a real gRPC ledger on a real socket, including the ledger going away
//! mid-stream and coming back on the same port, and against an in-process store.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::record;
use switchyard_ledger::proto::ledger_client::LedgerClient;
use switchyard_ledger::{
    GroupBy, LedgerTarget, Recorder, RecorderConfig, SqliteStore, UsageQuery, UsageStore,
    serve_ledger,
};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A running ledger server and the means to stop it.
struct Ledger {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Ledger {
    fn start(store: Arc<dyn UsageStore>, listener: TcpListener) -> Self {
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            serve_ledger(store, listener, async {
                stopped.await.ok();
            })
            .await
            .unwrap();
        });
        Self { stop, task }
    }

    async fn stop(self) {
        self.stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("ledger shuts down")
            .unwrap();
    }
}

fn fast_config(spool: std::path::PathBuf) -> RecorderConfig {
    RecorderConfig {
        batch_size: 16,
        batch_interval: Duration::from_millis(5),
        delivery_timeout: Duration::from_secs(2),
        retry_min: Duration::from_millis(10),
        retry_max: Duration::from_millis(100),
        ..RecorderConfig::new(spool)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ledger_restart_mid_stream_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn UsageStore> = Arc::new(
        SqliteStore::open(dir.path().join("ledger.db"))
            .await
            .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let ledger = Ledger::start(store.clone(), listener);

    let spool = dir.path().join("spool/usage.spool");
    let target = LedgerTarget::remote(&format!("http://{addr}"), Duration::from_secs(2)).unwrap();
    let recorder = Recorder::start(target, fast_config(spool.clone()))
        .await
        .unwrap();

    // The first quarter is delivered and acknowledged while the ledger is up.
    for i in 0..50 {
        recorder.record(record(&format!("r-{i:03}"), i));
    }
    let up = recorder.flush().await;
    assert!(up.delivered_all);
    assert_eq!(
        (
            recorder.stats().delivered,
            recorder.stats().delivery_failures
        ),
        (50, 0)
    );
    // The second quarter is in flight when the ledger stops under the recorder's feet.
    for i in 50..100 {
        recorder.record(record(&format!("r-{i:03}"), i));
        tokio::task::yield_now().await;
    }
    ledger.stop().await;
    // The third quarter arrives while nothing listens.
    for i in 100..150 {
        recorder.record(record(&format!("r-{i:03}"), i));
        tokio::task::yield_now().await;
    }
    let down = recorder.flush().await;
    assert!(
        !down.delivered_all,
        "nothing listens, so something must be spooled"
    );
    assert!(down.spool_records > 0);
    assert!(recorder.stats().delivery_failures > 0);

    // Back on the same port; the rest arrives while the spool drains.
    let listener = TcpListener::bind(addr).await.unwrap();
    let ledger = Ledger::start(store.clone(), listener);
    for i in 150..200 {
        recorder.record(record(&format!("r-{i:03}"), i));
        tokio::task::yield_now().await;
    }
    let up = recorder.flush().await;
    assert!(up.delivered_all, "{up:?}");
    assert_eq!(up.spool_records, 0);

    // Read back through the ledger's own Query RPC.
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = LedgerClient::new(channel);
    let q = UsageQuery {
        limit: 1000,
        ..Default::default()
    };
    let rows = client.query(q).await.unwrap().into_inner().records;
    assert_eq!(rows.len(), 200);
    let mut ids: Vec<&str> = rows.iter().map(|r| r.request_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 200, "each record exactly once");
    for r in &rows {
        let i: u32 = r.request_id[2..].parse().unwrap();
        assert_eq!(r, &record(&r.request_id, i), "record {i} stored intact");
    }
    let q = UsageQuery {
        group_by: GroupBy::Key as i32,
        ..Default::default()
    };
    let totals = client.query(q).await.unwrap().into_inner().aggregates;
    let want_prompt: u64 = (0..200u64).map(|i| 10 + i).sum();
    let want_completion: u64 = (0..200u64).map(|i| 2 * i + 1).sum();
    assert_eq!(totals.len(), 1);
    assert_eq!(
        (
            totals[0].requests,
            totals[0].prompt_tokens,
            totals[0].completion_tokens
        ),
        (200, want_prompt, want_completion)
    );

    let stats = recorder.stats();
    eprintln!("spooled while down: {}, {stats:?}", down.spool_records);
    assert_eq!(stats.recorded, 200);
    assert_eq!(stats.delivered, 200 + stats.duplicates);
    assert_eq!((stats.spool_records, stats.spool_bytes), (0, 0));
    assert_eq!(
        std::fs::metadata(&spool).unwrap().len(),
        0,
        "spool truncated once delivered"
    );

    recorder.close().await;
    ledger.stop().await;
}

/// A recorder delivering straight into a fresh SQLite store in `dir`.
async fn sqlite_recorder(
    dir: &tempfile::TempDir,
    config: impl FnOnce(RecorderConfig) -> RecorderConfig,
) -> (Arc<SqliteStore>, Recorder) {
    let store = Arc::new(
        SqliteStore::open(dir.path().join("ledger.db"))
            .await
            .unwrap(),
    );
    let recorder = Recorder::start(
        LedgerTarget::Store(store.clone()),
        config(RecorderConfig::new(dir.path().join("s"))),
    )
    .await
    .unwrap();
    (store, recorder)
}

#[tokio::test]
async fn in_process_store_target() {
    let dir = tempfile::tempdir().unwrap();
    let (store, recorder) = sqlite_recorder(&dir, |c| c).await;
    for i in 0..1000 {
        recorder.record(record(&format!("local-{i}"), i));
    }
    // A record the ledger refuses is counted, not retried forever.
    recorder.record(switchyard_ledger::UsageRecord::default());
    let out = recorder.close().await;
    assert!(out.delivered_all);
    let q = UsageQuery {
        group_by: GroupBy::Model as i32,
        ..Default::default()
    };
    let totals = store.query(&q).await.unwrap().aggregates;
    assert_eq!(totals[0].requests, 1000);
}

#[tokio::test]
async fn refused_records_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, recorder) = sqlite_recorder(&dir, |c| c).await;
    recorder.record(record("fine", 1));
    recorder.record(switchyard_ledger::UsageRecord::default());
    assert!(recorder.flush().await.delivered_all);
    let stats = recorder.stats();
    assert_eq!(
        (stats.delivered, stats.rejected, stats.spool_records),
        (2, 1, 0)
    );
}

/// Returns once the recorder's `delivered` counter reaches `n` (the caller's timeout bounds it).
async fn delivered(recorder: &Recorder, n: u64) {
    while recorder.stats().delivered < n {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_batch_goes_out_without_waiting_for_the_interval() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, recorder) = sqlite_recorder(&dir, |c| RecorderConfig {
        batch_size: 16,
        batch_interval: Duration::from_secs(3600),
        ..c
    })
    .await;
    // The worker picks up records a batch at a time, not one wake-up per record: two full
    // batches are shipped at once, the odd three wait for the interval.
    for i in 0..35 {
        recorder.record(record(&format!("full-{i}"), i));
    }
    tokio::time::timeout(Duration::from_secs(10), delivered(&recorder, 32))
        .await
        .expect("two full batches delivered long before the hour-long interval");
    assert_eq!(recorder.stats().delivered, 32);
    assert!(recorder.close().await.delivered_all);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_record_goes_out_when_its_batch_is_due() {
    let dir = tempfile::tempdir().unwrap();
    let (_store, recorder) = sqlite_recorder(&dir, |c| RecorderConfig {
        batch_interval: Duration::from_millis(20),
        ..c
    })
    .await;
    for round in 0..3u32 {
        recorder.record(record(&format!("lone-{round}"), round));
        tokio::time::timeout(
            Duration::from_secs(10),
            delivered(&recorder, u64::from(round) + 1),
        )
        .await
        .expect("a record that starts no full batch still goes at the interval");
    }
    recorder.close().await;
}
