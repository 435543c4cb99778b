//! A model's serving capacity: how many generations run at once, how many may wait, and how fast
//! each one goes. It exists so benchmarks can measure routing under load ("small is fast but
//! busy, large is slow but idle") against the limits real servers enforce.
//!
//! - **Slots.** At most `num_parallel` generations of a model run at once (Ollama's
//!   `OLLAMA_NUM_PARALLEL`, llama.cpp's `--parallel`, reported as `total_slots`). The rest wait
//!   in arrival order.
//! - **Queue.** Ollama keeps at most `max_queue` requests waiting (`OLLAMA_MAX_QUEUE`, default
//!   512) and answers the next one at once with 503 `server busy, please try again.  maximum
//!   pending requests exceeded` (server/sched.go `ErrMaxQueue`, routes.go
//!   `handleScheduleError`). Here the bound is per model, as if each model had its own server;
//!   the real one bounds its scheduler's pending channel. llama.cpp's server never refuses a
//!   task for being busy: it defers it until a slot frees, so its queue is unbounded.
//! - **Speed.** Prompt processing at `prompt_tokens_per_s` before the first token, then one
//!   output token every `1 / tokens_per_s`, all while the slot is held.
//!
//! A model without `num_parallel` has unlimited slots and no queue, as before this module.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::SimModel;

/// Ollama's default `OLLAMA_MAX_QUEUE`.
pub const OLLAMA_DEFAULT_MAX_QUEUE: u32 = 512;

/// What one model's slots have seen ([`crate::SimHandle::slot_stats`], `/_sim/stats`, `/slots`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SlotStats {
    /// Generations that got a slot.
    pub served: u64,
    /// Requests refused with 503 because the queue was full.
    pub busy: u64,
    /// Generations running now.
    pub running: usize,
    /// Requests waiting for a slot now.
    pub queued: usize,
    /// The most that ever ran at once.
    pub peak_running: usize,
    /// The most that ever waited at once.
    pub peak_queued: usize,
}

/// The slots and queue of one model.
pub(crate) struct Gate {
    /// `None`: unlimited slots.
    slots: Option<Arc<Semaphore>>,
    /// Waiting requests allowed (`None`: unbounded, llama.cpp).
    max_queue: Option<usize>,
    counters: Arc<Counters>,
}

#[derive(Default)]
struct Counters {
    served: AtomicU64,
    busy: AtomicU64,
    running: AtomicUsize,
    queued: AtomicUsize,
    peak_running: AtomicUsize,
    peak_queued: AtomicUsize,
}

/// A held slot: released (and the next waiter started) when dropped.
#[must_use = "the slot is released when this is dropped"]
pub(crate) struct Slot {
    _permit: Option<OwnedSemaphorePermit>,
    counters: Arc<Counters>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.counters.running.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The queue was full: Ollama's 503.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Busy;

/// Decrements the waiting count however the wait ends (slot granted or client gone).
struct Waiting<'a>(&'a Counters);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.queued.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Gate {
    /// The gate of `model`; `bounded_queue` is true for Ollama (llama.cpp never refuses).
    pub(crate) fn new(model: &SimModel, bounded_queue: bool) -> Self {
        let slots = model
            .num_parallel
            .map(|n| Arc::new(Semaphore::new(usize::try_from(n.max(1)).unwrap_or(1))));
        let max_queue = (bounded_queue && slots.is_some()).then(|| {
            usize::try_from(model.max_queue.unwrap_or(OLLAMA_DEFAULT_MAX_QUEUE)).unwrap_or(0)
        });
        Self {
            slots,
            max_queue,
            counters: Arc::new(Counters::default()),
        }
    }

    /// Takes a slot, waiting in arrival order (tokio's semaphore is fair) when all are busy.
    /// Dropping the future (the client went away) leaves the queue.
    pub(crate) async fn acquire(&self) -> Result<Slot, Busy> {
        let c = &self.counters;
        let permit = match &self.slots {
            None => None,
            Some(sem) => match Arc::clone(sem).try_acquire_owned() {
                Ok(p) => Some(p),
                Err(_) => {
                    let waiting = c.queued.fetch_add(1, Ordering::Relaxed) + 1;
                    let guard = Waiting(c);
                    if self.max_queue.is_some_and(|max| waiting > max) {
                        drop(guard);
                        c.busy.fetch_add(1, Ordering::Relaxed);
                        return Err(Busy);
                    }
                    c.peak_queued.fetch_max(waiting, Ordering::Relaxed);
                    let p = Arc::clone(sem).acquire_owned().await.map_err(|_| Busy)?;
                    drop(guard);
                    Some(p)
                }
            },
        };
        let running = c.running.fetch_add(1, Ordering::Relaxed) + 1;
        c.peak_running.fetch_max(running, Ordering::Relaxed);
        c.served.fetch_add(1, Ordering::Relaxed);
        Ok(Slot {
            _permit: permit,
            counters: Arc::clone(c),
        })
    }

    pub(crate) fn stats(&self) -> SlotStats {
        let c = &self.counters;
        SlotStats {
            served: c.served.load(Ordering::Relaxed),
            busy: c.busy.load(Ordering::Relaxed),
            running: c.running.load(Ordering::Relaxed),
            queued: c.queued.load(Ordering::Relaxed),
            peak_running: c.peak_running.load(Ordering::Relaxed),
            peak_queued: c.peak_queued.load(Ordering::Relaxed),
        }
    }
}

/// How long a generation of `model` takes: prompt processing (before the first token) and the
/// time per output token. `None` when the model sets no speed (the flavor's `chunk_delay` applies).
pub(crate) fn prompt_time(model: &SimModel, prompt_tokens: u32) -> Duration {
    match model.prompt_tokens_per_s {
        Some(rate) if rate > 0.0 => Duration::from_secs_f64(f64::from(prompt_tokens) / rate),
        _ => Duration::ZERO,
    }
}

/// Time per output token, when the model sets `tokens_per_s`.
pub(crate) fn token_time(model: &SimModel) -> Option<Duration> {
    match model.tokens_per_s {
        Some(rate) if rate > 0.0 => Some(Duration::from_secs_f64(1.0 / rate)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(slots: u32, queue: u32) -> SimModel {
        let mut m = SimModel::new("m", 4096);
        m.num_parallel = Some(slots);
        m.max_queue = Some(queue);
        m
    }

    #[tokio::test]
    async fn slots_then_queue_then_busy() {
        let gate = Gate::new(&model(2, 1), true);
        let a = gate.acquire().await;
        let b = gate.acquire().await;
        assert!(a.is_ok() && b.is_ok());
        // The third waits; the fourth finds the queue full.
        let waiter = gate.acquire();
        tokio::pin!(waiter);
        assert!(futures_poll_pending(&mut waiter).await);
        assert_eq!(gate.stats().queued, 1);
        assert_eq!(gate.acquire().await.err(), Some(Busy));
        drop(a);
        let c = waiter.await;
        assert!(c.is_ok());
        let s = gate.stats();
        assert_eq!((s.served, s.busy, s.running, s.queued), (3, 1, 2, 0));
        assert_eq!((s.peak_running, s.peak_queued), (2, 1));
    }

    #[tokio::test]
    async fn llamacpp_queue_is_unbounded_and_unlimited_is_free() {
        let gate = Gate::new(&model(1, 0), false);
        let _a = gate.acquire().await;
        let w = gate.acquire();
        tokio::pin!(w);
        assert!(futures_poll_pending(&mut w).await);
        assert_eq!(gate.stats().busy, 0);

        let free = Gate::new(&SimModel::new("m", 4096), true);
        let held: Vec<_> = futures_collect(&free, 100).await;
        assert_eq!(held.len(), 100);
        assert_eq!(free.stats().peak_running, 100);
    }

    #[tokio::test]
    async fn a_waiter_that_leaves_frees_its_place() {
        let gate = Gate::new(&model(1, 1), true);
        let _a = gate.acquire().await;
        {
            let w = gate.acquire();
            tokio::pin!(w);
            assert!(futures_poll_pending(&mut w).await);
            assert_eq!(gate.stats().queued, 1);
        }
        assert_eq!(gate.stats().queued, 0);
        let w = gate.acquire();
        tokio::pin!(w);
        assert!(futures_poll_pending(&mut w).await);
    }

    async fn futures_poll_pending<F: std::future::Future + Unpin>(f: &mut F) -> bool {
        tokio::select! {
            biased;
            _ = f => false,
            () = std::future::ready(()) => true,
        }
    }

    async fn futures_collect(gate: &Gate, n: usize) -> Vec<Slot> {
        let mut v = Vec::new();
        for _ in 0..n {
            if let Ok(s) = gate.acquire().await {
                v.push(s);
            }
        }
        v
    }
}
