//! The spool: records written while no ledger exists survive a restart of the recorder and are
//! delivered once; a torn tail is cut off; a full spool or queue drops and counts, never blocks.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::record;
use switchyard_ledger::{
    GroupBy, LedgerTarget, Recorder, RecorderConfig, RecorderError, SqliteStore, UsageQuery,
    UsageStore, serve_ledger,
};
use tokio::net::TcpListener;

/// An address nothing listens on (bound, then released).
async fn dead_address() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

/// A ledger serving `store` on a fresh port, for the rest of the test.
async fn live_ledger(store: Arc<dyn UsageStore>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve_ledger(store, listener, std::future::pending()));
    addr
}

fn config(spool: &Path) -> RecorderConfig {
    RecorderConfig {
        batch_size: 32,
        batch_interval: Duration::from_millis(5),
        delivery_timeout: Duration::from_secs(2),
        retry_min: Duration::from_millis(10),
        retry_max: Duration::from_millis(100),
        ..RecorderConfig::new(spool)
    }
}

fn remote(addr: SocketAddr) -> LedgerTarget {
    LedgerTarget::remote(&format!("http://{addr}"), Duration::from_secs(2)).unwrap()
}

async fn count(store: &dyn UsageStore) -> u64 {
    let q = UsageQuery {
        group_by: GroupBy::Group as i32,
        ..Default::default()
    };
    store
        .query(&q)
        .await
        .unwrap()
        .aggregates
        .iter()
        .map(|a| a.requests)
        .sum()
}

/// Records 0..n into a recorder whose ledger does not exist, then closes it.
async fn spool_without_ledger(spool: &Path, n: u32) {
    let recorder = Recorder::start(remote(dead_address().await), config(spool))
        .await
        .unwrap();
    for i in 0..n {
        recorder.record(record(&format!("s-{i}"), i));
    }
    let out = recorder.close().await;
    assert!(!out.delivered_all);
    assert_eq!(out.spool_records, u64::from(n));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spooled_records_survive_a_recorder_restart() {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("usage.spool");
    spool_without_ledger(&spool, 300).await;
    assert!(std::fs::metadata(&spool).unwrap().len() > 0);

    let store: Arc<dyn UsageStore> = Arc::new(
        SqliteStore::open(dir.path().join("ledger.db"))
            .await
            .unwrap(),
    );
    let recorder = Recorder::start(remote(live_ledger(store.clone()).await), config(&spool))
        .await
        .unwrap();
    assert_eq!(recorder.spool_depth(), 300, "the old spool is picked up");
    for i in 300..310 {
        recorder.record(record(&format!("s-{i}"), i));
    }
    let out = recorder.flush().await;
    assert!(out.delivered_all, "{out:?}");
    assert_eq!(count(store.as_ref()).await, 310);
    let stats = recorder.stats();
    assert_eq!(
        (stats.delivered, stats.duplicates, stats.spool_bytes),
        (310, 0, 0)
    );
    assert_eq!(std::fs::metadata(&spool).unwrap().len(), 0);
}

#[tokio::test]
async fn a_spool_belongs_to_one_recorder() {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("usage.spool");
    let first = Recorder::start(remote(dead_address().await), config(&spool))
        .await
        .unwrap();
    let second = Recorder::start(remote(dead_address().await), config(&spool)).await;
    assert!(matches!(second, Err(RecorderError::SpoolLocked { .. })));
    first.close().await;
    // Released on close.
    Recorder::start(remote(dead_address().await), config(&spool))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_torn_tail_is_cut_and_the_rest_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("usage.spool");
    spool_without_ledger(&spool, 100).await;
    let whole = std::fs::metadata(&spool).unwrap().len();
    // A crash in the middle of an append: a header promising more bytes than follow.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&spool)
        .unwrap();
    f.write_all(&[200, 0, 0, 0, 3, 0, 0, 0, 1, 2, 3, 4, 9, 9])
        .unwrap();
    drop(f);

    let store: Arc<dyn UsageStore> = Arc::new(
        SqliteStore::open(dir.path().join("ledger.db"))
            .await
            .unwrap(),
    );
    let recorder = Recorder::start(remote(live_ledger(store.clone()).await), config(&spool))
        .await
        .unwrap();
    assert_eq!(recorder.stats().spool_bytes, whole);
    assert!(recorder.flush().await.delivered_all);
    assert_eq!(count(store.as_ref()).await, 100);
    assert_eq!(recorder.stats().lost_corrupt, 0);
}

#[tokio::test]
async fn a_full_spool_drops_and_counts_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("usage.spool");
    let max = 8 * 1024;
    let recorder = Recorder::start(
        remote(dead_address().await),
        RecorderConfig {
            max_spool_bytes: max,
            ..config(&spool)
        },
    )
    .await
    .unwrap();
    let started = Instant::now();
    for i in 0..500 {
        recorder.record(record(&format!("f-{i}"), i));
    }
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "record() must not wait"
    );
    let out = recorder.flush().await;
    let stats = recorder.stats();
    assert!(stats.dropped_spool_full > 0, "{stats:?}");
    assert!(stats.spool_bytes <= max);
    assert_eq!(stats.spool_records + stats.dropped_spool_full, 500);
    assert_eq!(out.spool_records, stats.spool_records);
    recorder.close().await;

    // What did fit is delivered later.
    let store: Arc<dyn UsageStore> = Arc::new(
        SqliteStore::open(dir.path().join("ledger.db"))
            .await
            .unwrap(),
    );
    let recorder = Recorder::start(remote(live_ledger(store.clone()).await), config(&spool))
        .await
        .unwrap();
    assert!(recorder.flush().await.delivered_all);
    assert_eq!(count(store.as_ref()).await, stats.spool_records);
}

#[tokio::test]
async fn a_full_queue_drops_and_counts_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let recorder = Recorder::start(
        remote(dead_address().await),
        RecorderConfig {
            queue_capacity: 8,
            ..config(&dir.path().join("usage.spool"))
        },
    )
    .await
    .unwrap();
    // On this single-threaded runtime the worker cannot run during the loop.
    let started = Instant::now();
    for i in 0..1000 {
        recorder.record(record(&format!("q-{i}"), i));
    }
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "record() must not wait"
    );
    let stats = recorder.stats();
    assert_eq!(
        (stats.recorded, stats.dropped_queue_full, stats.queued),
        (8, 992, 8)
    );
    let out = recorder.close().await;
    assert_eq!(out.spool_records, 8);
}
