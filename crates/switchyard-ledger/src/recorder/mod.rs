//! The router's side of the ledger: a handle whose [`Recorder::record`] only ever enqueues, and a
//! background worker that batches, delivers, and spools to disk what it cannot deliver.

mod error;
mod spool;
mod target;
mod worker;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::proto::UsageRecord;
use crate::service::MAX_BATCH;
pub use error::RecorderError;
use spool::Spool;
pub use target::LedgerTarget;
use worker::{Control, Worker};

/// Tuning of a [`Recorder`].
#[derive(Clone, Debug)]
pub struct RecorderConfig {
    /// The spool file (created with its directory if missing; replayed if not empty).
    pub spool_path: PathBuf,
    /// Largest the spool file may grow; batches that do not fit are dropped and counted.
    pub max_spool_bytes: u64,
    /// Records that may wait in memory for the worker; beyond that they are dropped and
    /// counted. The worker only blocks on the ledger between batches, so this absorbs about
    /// `delivery_timeout` worth of traffic.
    pub queue_capacity: usize,
    /// Most records per delivery (at most 5000: a spool replay may join two batches).
    pub batch_size: usize,
    /// Longest a record waits for its batch to fill.
    pub batch_interval: Duration,
    /// Longest one delivery may take before it counts as failed.
    pub delivery_timeout: Duration,
    /// First and longest pause between redelivery attempts while the ledger is down.
    pub retry_min: Duration,
    pub retry_max: Duration,
}

impl RecorderConfig {
    /// Defaults: 256 MiB spool, 16384 queued records, batches of 256 or every 50 ms, 5 s
    /// delivery timeout, retries from 100 ms backing off to 5 s.
    pub fn new(spool_path: impl Into<PathBuf>) -> Self {
        Self {
            spool_path: spool_path.into(),
            max_spool_bytes: 256 << 20,
            queue_capacity: 16_384,
            batch_size: 256,
            batch_interval: Duration::from_millis(50),
            delivery_timeout: Duration::from_secs(5),
            retry_min: Duration::from_millis(100),
            retry_max: Duration::from_secs(5),
        }
    }
}

/// Counters and gauges of a recorder, for metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecorderStats {
    /// Records accepted by [`Recorder::record`].
    pub recorded: u64,
    /// Records acknowledged by the ledger (including duplicates it already had).
    pub delivered: u64,
    /// Of those, records the ledger already had (redeliveries after a lost ack).
    pub duplicates: u64,
    /// Records the ledger refused as invalid.
    pub rejected: u64,
    /// Records dropped because the in-memory queue was full.
    pub dropped_queue_full: u64,
    /// Records dropped because the spool was full (or could not be written).
    pub dropped_spool_full: u64,
    /// Records recorded after the recorder was closed.
    pub dropped_closed: u64,
    /// Records lost to a corrupt spool.
    pub lost_corrupt: u64,
    /// Deliveries that failed (each is retried from the spool).
    pub delivery_failures: u64,
    /// Records waiting in the in-memory queue.
    pub queued: u64,
    /// Records waiting in the spool.
    pub spool_records: u64,
    /// Size of the spool file in bytes.
    pub spool_bytes: u64,
}

/// Result of [`Recorder::flush`] / [`Recorder::close`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlushOutcome {
    /// Everything recorded before the call reached the ledger.
    pub delivered_all: bool,
    /// Records still in the spool (to be delivered when the ledger is back).
    pub spool_records: u64,
}

/// State shared between the handles and the worker.
#[derive(Default)]
struct Shared {
    recorded: AtomicU64,
    delivered: AtomicU64,
    duplicates: AtomicU64,
    rejected: AtomicU64,
    dropped_queue_full: AtomicU64,
    dropped_spool_full: AtomicU64,
    dropped_closed: AtomicU64,
    lost_corrupt: AtomicU64,
    delivery_failures: AtomicU64,
    spool_records: AtomicU64,
    spool_bytes: AtomicU64,
    /// Told when a batch's worth of records is queued (the worker does not wake per record).
    batch_ready: tokio::sync::Notify,
}

/// How often a persistent drop condition is logged: the first time, then every this many.
const LOG_EVERY: u64 = 10_000;

/// Handle for recording usage. Cheap to clone; the worker stops when every clone is dropped or
/// [`Recorder::close`] is called.
#[derive(Clone)]
pub struct Recorder {
    records: mpsc::Sender<UsageRecord>,
    batch_size: usize,
    control: mpsc::UnboundedSender<Control>,
    shared: Arc<Shared>,
}

impl Recorder {
    /// Opens the spool (replaying it first if it holds records) and starts the worker on the
    /// current Tokio runtime.
    pub async fn start(
        target: LedgerTarget,
        mut config: RecorderConfig,
    ) -> Result<Self, RecorderError> {
        config.batch_size = config.batch_size.clamp(1, MAX_BATCH / 2);
        let shared = Arc::new(Shared::default());
        let spool = {
            let (path, max, shared) = (
                config.spool_path.clone(),
                config.max_spool_bytes,
                shared.clone(),
            );
            tokio::task::spawn_blocking(move || Spool::open(&path, max, shared))
                .await
                .map_err(|e| RecorderError::Startup(e.to_string()))??
        };
        let (records_tx, records_rx) = mpsc::channel(config.queue_capacity.max(1));
        let (control_tx, control_rx) = mpsc::unbounded_channel();
        let batch_size = config.batch_size;
        let worker = Worker::new(
            target,
            config,
            spool,
            records_rx,
            control_rx,
            shared.clone(),
        );
        tokio::spawn(worker.run());
        Ok(Self {
            records: records_tx,
            batch_size,
            control: control_tx,
            shared,
        })
    }

    /// Queues `record` for the ledger. Never waits and never fails: if the queue is full or the
    /// recorder closed, the record is counted as dropped (and logged).
    pub fn record(&self, record: UsageRecord) {
        match self.records.try_send(record) {
            Ok(()) => {
                self.shared.recorded.fetch_add(1, Ordering::Relaxed);
                if self.queued() >= self.batch_size {
                    self.shared.batch_ready.notify_one();
                }
            }
            Err(mpsc::error::TrySendError::Full(r)) => {
                let n = self
                    .shared
                    .dropped_queue_full
                    .fetch_add(1, Ordering::Relaxed);
                if n.is_multiple_of(LOG_EVERY) {
                    tracing::error!(
                        request_id = %r.request_id,
                        dropped_total = n + 1,
                        "usage queue full: dropping usage record"
                    );
                }
            }
            Err(mpsc::error::TrySendError::Closed(r)) => {
                let n = self.shared.dropped_closed.fetch_add(1, Ordering::Relaxed);
                if n.is_multiple_of(LOG_EVERY) {
                    tracing::error!(request_id = %r.request_id, "usage recorder closed: dropping usage record");
                }
            }
        }
    }

    /// Delivers everything recorded so far, or spools what cannot be delivered now; then tries
    /// once to drain the spool.
    pub async fn flush(&self) -> FlushOutcome {
        self.ask(Control::Flush).await
    }

    /// Like [`Recorder::flush`], then stops the worker and releases the spool. Later
    /// `record` calls on other clones count as dropped.
    pub async fn close(self) -> FlushOutcome {
        self.ask(Control::Close).await
    }

    async fn ask(&self, make: fn(oneshot::Sender<FlushOutcome>) -> Control) -> FlushOutcome {
        let (tx, rx) = oneshot::channel();
        if self.control.send(make(tx)).is_ok()
            && let Ok(outcome) = rx.await
        {
            return outcome;
        }
        let spool_records = self.shared.spool_records.load(Ordering::Relaxed);
        FlushOutcome {
            delivered_all: false,
            spool_records,
        }
    }

    /// Current counters.
    pub fn stats(&self) -> RecorderStats {
        let s = &self.shared;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        RecorderStats {
            recorded: load(&s.recorded),
            delivered: load(&s.delivered),
            duplicates: load(&s.duplicates),
            rejected: load(&s.rejected),
            dropped_queue_full: load(&s.dropped_queue_full),
            dropped_spool_full: load(&s.dropped_spool_full),
            dropped_closed: load(&s.dropped_closed),
            lost_corrupt: load(&s.lost_corrupt),
            delivery_failures: load(&s.delivery_failures),
            queued: self.queued() as u64,
            spool_records: load(&s.spool_records),
            spool_bytes: load(&s.spool_bytes),
        }
    }

    /// Records waiting in the in-memory queue for the worker.
    fn queued(&self) -> usize {
        self.records.max_capacity() - self.records.capacity()
    }

    /// Records waiting in the spool (a gauge for metrics).
    pub fn spool_depth(&self) -> u64 {
        self.shared.spool_records.load(Ordering::Relaxed)
    }
}
