//! The recorder's background task. It owns the order of delivery: while anything is spooled,
//! new batches go behind it in the spool, and the spool drains one batch at a time between
//! intake, so a long replay never stalls the queue. All file work runs on the blocking pool.

use std::mem;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::spool::{Peeked, Spool, SpoolError};
use super::target::{DeliveryError, LedgerTarget};
use super::{FlushOutcome, LOG_EVERY, RecorderConfig, Shared};
use crate::proto::{RecordAck, RecordBatch, UsageRecord};
use crate::validate::trim;

pub(super) enum Control {
    Flush(oneshot::Sender<FlushOutcome>),
    Close(oneshot::Sender<FlushOutcome>),
}

pub(super) struct Worker {
    target: LedgerTarget,
    config: RecorderConfig,
    spool: Arc<Mutex<Spool>>,
    records: mpsc::Receiver<UsageRecord>,
    control: mpsc::UnboundedReceiver<Control>,
    shared: Arc<Shared>,
    pending: Vec<UsageRecord>,
    /// When the pending batch must go even if not full.
    batch_due: Option<Instant>,
    /// Earliest next redelivery attempt; `None` means "now" while the spool holds records.
    retry_at: Option<Instant>,
    backoff: Duration,
    /// The ledger is known to be unreachable (for logging transitions only).
    outage: bool,
    /// The spool refused a batch since it was last emptied (for logging only).
    spool_full: bool,
}

impl Worker {
    pub(super) fn new(
        target: LedgerTarget,
        config: RecorderConfig,
        spool: Spool,
        records: mpsc::Receiver<UsageRecord>,
        control: mpsc::UnboundedReceiver<Control>,
        shared: Arc<Shared>,
    ) -> Self {
        let backoff = config.retry_min;
        Self {
            target,
            config,
            spool: Arc::new(Mutex::new(spool)),
            records,
            control,
            shared,
            pending: Vec::new(),
            batch_due: None,
            retry_at: None,
            backoff,
            outage: false,
            spool_full: false,
        }
    }

    pub(super) async fn run(mut self) {
        loop {
            self.take_queued().await;
            // Checked on every turn, so a steady stream of records cannot starve the batch
            // deadline or the spool drain.
            self.on_timer().await;
            let wake = self.next_wake();
            tokio::select! {
                biased;
                control = self.control.recv() => match control {
                    Some(Control::Flush(reply)) => {
                        let outcome = self.flush().await;
                        let _ = reply.send(outcome);
                    }
                    Some(Control::Close(reply)) => {
                        self.records.close();
                        let outcome = self.flush().await;
                        // Release the spool (and its lock) before the caller hears we are done.
                        drop(self);
                        let _ = reply.send(outcome);
                        return;
                    }
                    // Every handle is gone: keep what is left, then stop.
                    None => {
                        self.records.close();
                        self.flush().await;
                        return;
                    }
                },
                // Idle, the first record wakes the worker and starts a batch. While a batch is
                // open, records are picked up when it is due or full, not one wake-up each:
                // on a lightly loaded box each wake-up also rouses an idle runtime worker.
                record = self.records.recv(), if self.pending.is_empty() => match record {
                    Some(record) => self.push(record).await,
                    None => {
                        self.flush().await;
                        return;
                    }
                },
                () = self.shared.batch_ready.notified(), if !self.pending.is_empty() => {}
                () = sleep_until(wake), if wake.is_some() => {}
            }
        }
    }

    fn spool_records(&self) -> u64 {
        self.shared.spool_records.load(Ordering::Relaxed)
    }

    fn next_wake(&self) -> Option<Instant> {
        let retry = (self.spool_records() > 0).then(|| self.retry_at.unwrap_or_else(Instant::now));
        match (self.batch_due, retry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Takes what is queued without waiting (shipping each batch that fills); after the
    /// senders are gone it leaves the closed channel to `recv`.
    async fn take_queued(&mut self) {
        while let Ok(record) = self.records.try_recv() {
            self.push(record).await;
        }
    }

    async fn push(&mut self, mut record: UsageRecord) {
        trim(&mut record);
        if self.pending.is_empty() {
            self.batch_due = Some(Instant::now() + self.config.batch_interval);
        }
        self.pending.push(record);
        if self.pending.len() >= self.config.batch_size {
            self.ship().await;
        }
    }

    async fn on_timer(&mut self) {
        let now = Instant::now();
        if self.batch_due.is_some_and(|due| due <= now) {
            self.ship().await;
        }
        if self.spool_records() > 0 && self.retry_at.is_none_or(|at| at <= now) {
            self.drain_step().await;
        }
    }

    /// Sends the pending batch, or spools it if the ledger is down or the spool is not empty.
    async fn ship(&mut self) {
        self.batch_due = None;
        let batch = RecordBatch {
            records: mem::take(&mut self.pending),
        };
        if batch.records.is_empty() {
            return;
        }
        let backing_off = self.retry_at.is_some_and(|at| at > Instant::now());
        if self.spool_records() > 0 || backing_off {
            self.spool(batch).await;
            return;
        }
        match self
            .target
            .deliver(&batch, self.config.delivery_timeout)
            .await
        {
            Ok(ack) => self.delivered(batch.records.len(), &ack),
            Err(DeliveryError::Permanent(reason)) => self.refused(batch.records.len(), &reason),
            Err(DeliveryError::Transient(reason)) => {
                self.failed(&reason);
                self.spool(batch).await;
            }
        }
    }

    /// Everything queued goes out (or into the spool), then the spool is drained as far as the
    /// ledger allows.
    async fn flush(&mut self) -> FlushOutcome {
        while let Ok(mut record) = self.records.try_recv() {
            trim(&mut record);
            self.pending.push(record);
            if self.pending.len() >= self.config.batch_size {
                self.ship().await;
            }
        }
        self.ship().await;
        self.retry_at = None;
        while self.spool_records() > 0 {
            if !self.drain_step().await {
                break;
            }
        }
        let spool_records = self.spool_records();
        FlushOutcome {
            delivered_all: spool_records == 0,
            spool_records,
        }
    }

    /// Delivers the oldest spooled records. Returns whether it made progress.
    async fn drain_step(&mut self) -> bool {
        let max = self.config.batch_size;
        let peeked = match self.with_spool(move |s| s.peek(max)).await {
            Ok(Some(p)) => p,
            Ok(None) => return false,
            Err(e @ SpoolError::Corrupt { .. }) => {
                self.discard_spool(&e).await;
                return false;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot read the usage spool; will retry");
                self.retry_at = Some(Instant::now() + self.backoff);
                return false;
            }
        };
        let Peeked { batch, next } = peeked;
        let n = batch.records.len();
        let result = self
            .target
            .deliver(&batch, self.config.delivery_timeout)
            .await;
        match result {
            Ok(ack) => self.delivered(n, &ack),
            Err(DeliveryError::Permanent(reason)) => self.refused(n, &reason),
            Err(DeliveryError::Transient(reason)) => {
                self.failed(&reason);
                return false;
            }
        }
        if let Err(e) = self.with_spool(move |s| s.commit(next, n)).await {
            // Delivered but not marked: the records will be sent again, which is harmless.
            tracing::error!(error = %e, "could not advance the usage spool");
            return false;
        }
        if self.spool_records() == 0 {
            self.spool_full = false;
            if self.outage {
                self.outage = false;
                tracing::info!("usage spool drained; ledger reachable again");
            }
        }
        true
    }

    async fn spool(&mut self, batch: RecordBatch) {
        let n = batch.records.len() as u64;
        match self.with_spool(move |s| s.append(&batch)).await {
            Ok(()) => {}
            Err(e) => {
                let before = self
                    .shared
                    .dropped_spool_full
                    .fetch_add(n, Ordering::Relaxed);
                if !self.spool_full || before / LOG_EVERY != (before + n) / LOG_EVERY {
                    tracing::error!(
                        error = %e,
                        dropped = n,
                        dropped_total = before + n,
                        "usage spool cannot take more: dropping usage records"
                    );
                }
                self.spool_full = true;
            }
        }
    }

    async fn discard_spool(&mut self, error: &SpoolError) {
        tracing::error!(error = %error, "usage spool unreadable: discarding its undelivered records");
        match self.with_spool(Spool::discard_rest).await {
            Ok(lost) => {
                self.shared.lost_corrupt.fetch_add(lost, Ordering::Relaxed);
            }
            Err(e) => tracing::error!(error = %e, "could not reset the usage spool"),
        }
    }

    fn delivered(&mut self, n: usize, ack: &RecordAck) {
        self.backoff = self.config.retry_min;
        self.retry_at = None;
        let s = &self.shared;
        s.delivered.fetch_add(n as u64, Ordering::Relaxed);
        s.duplicates
            .fetch_add(u64::from(ack.duplicates), Ordering::Relaxed);
        s.rejected
            .fetch_add(ack.rejected.len() as u64, Ordering::Relaxed);
        for r in &ack.rejected {
            tracing::warn!(request_id = %r.request_id, reason = %r.reason, "ledger refused a usage record");
        }
    }

    fn refused(&mut self, n: usize, reason: &str) {
        self.shared.rejected.fetch_add(n as u64, Ordering::Relaxed);
        tracing::error!(
            records = n,
            reason,
            "ledger refused a whole usage batch; dropping it"
        );
    }

    fn failed(&mut self, reason: &str) {
        self.shared
            .delivery_failures
            .fetch_add(1, Ordering::Relaxed);
        if !self.outage {
            self.outage = true;
            tracing::warn!(reason, "usage ledger unreachable; spooling records to disk");
        }
        self.retry_at = Some(Instant::now() + self.backoff);
        self.backoff = (self.backoff * 2).min(self.config.retry_max);
    }

    /// Runs `f` on the spool on the blocking pool, so fsyncs never stall the runtime.
    async fn with_spool<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Spool) -> Result<T, SpoolError> + Send + 'static,
    ) -> Result<T, SpoolError> {
        let spool = self.spool.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = spool.lock().unwrap_or_else(PoisonError::into_inner);
            f(&mut guard)
        })
        .await
        .map_err(|e| SpoolError::Io(std::io::Error::other(e.to_string())))?
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
