//! Cooldowns: a deployment that keeps failing is skipped for a while.
//!
//! LiteLLM's rule, kept so its settings mean the same here: more than `allowed_fails` failures
//! within a minute put a deployment in cooldown for `cooldown_time`. The read on the request path
//! is one atomic load per candidate; only failures take a lock.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::config::DeploymentIx;

const WINDOW: Duration = Duration::from_secs(60);

#[derive(Default)]
struct Cell {
    /// Milliseconds since `epoch` until which the deployment is cooling; 0 = not cooling.
    cooling_until_ms: AtomicU64,
    /// Set while `failures_ms` may be non-empty, so a success need not take the lock.
    has_failures: AtomicBool,
    failures_ms: Mutex<VecDeque<u64>>,
}

/// Per-deployment failure memory.
pub struct Cooldowns {
    epoch: Instant,
    allowed_fails: u32,
    cooldown: Duration,
    /// Shared with the cooldowns a reload builds, so a surviving deployment keeps its memory.
    cells: Vec<Arc<Cell>>,
}

impl Cooldowns {
    pub fn new(deployments: usize, allowed_fails: u32, cooldown: Duration) -> Self {
        Cooldowns {
            epoch: Instant::now(),
            allowed_fails,
            cooldown,
            cells: (0..deployments)
                .map(|_| Arc::new(Cell::default()))
                .collect(),
        }
    }

    /// The cooldowns of a reloaded config: deployment `i` of the new config shares its failure
    /// memory with deployment `from[i]` of this one (the same id), and starts clean when `None`.
    pub fn carried(
        &self,
        from: &[Option<DeploymentIx>],
        allowed_fails: u32,
        cooldown: Duration,
    ) -> Self {
        Cooldowns {
            epoch: self.epoch,
            allowed_fails,
            cooldown,
            cells: from
                .iter()
                .map(|o| {
                    o.and_then(|i| self.cells.get(i).cloned())
                        .unwrap_or_default()
                })
                .collect(),
        }
    }

    fn ms(&self, at: Instant) -> u64 {
        // +1 so that "cooling until 0" always means "not cooling".
        at.saturating_duration_since(self.epoch).as_millis() as u64 + 1
    }

    /// Whether `d` is cooling down at `now`.
    pub fn is_cooling(&self, d: DeploymentIx, now: Instant) -> bool {
        self.cells
            .get(d)
            .is_some_and(|c| c.cooling_until_ms.load(Ordering::Relaxed) > self.ms(now))
    }

    /// Records a failure that counts against health; returns true if it started a cooldown.
    pub fn record_failure(&self, d: DeploymentIx, now: Instant) -> bool {
        let Some(cell) = self.cells.get(d) else {
            return false;
        };
        let now_ms = self.ms(now);
        let mut fails = cell.failures_ms.lock().unwrap_or_else(|p| p.into_inner());
        let horizon = now_ms.saturating_sub(WINDOW.as_millis() as u64);
        while fails.front().is_some_and(|&t| t < horizon) {
            fails.pop_front();
        }
        fails.push_back(now_ms);
        cell.has_failures.store(true, Ordering::Relaxed);
        if fails.len() as u32 > self.allowed_fails {
            fails.clear();
            cell.cooling_until_ms
                .store(now_ms + self.cooldown.as_millis() as u64, Ordering::Relaxed);
            return true;
        }
        false
    }

    /// A success clears the failure count (the deployment has recovered).
    pub fn record_success(&self, d: DeploymentIx) {
        if let Some(cell) = self.cells.get(d) {
            if cell.cooling_until_ms.load(Ordering::Relaxed) != 0 {
                cell.cooling_until_ms.store(0, Ordering::Relaxed);
            }
            if cell.has_failures.swap(false, Ordering::Relaxed) {
                let mut fails = cell.failures_ms.lock().unwrap_or_else(|p| p.into_inner());
                fails.clear();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cools_after_allowed_fails_and_recovers() {
        let c = Cooldowns::new(2, 2, Duration::from_secs(5));
        let t0 = Instant::now();
        assert!(!c.record_failure(0, t0));
        assert!(!c.record_failure(0, t0));
        assert!(!c.is_cooling(0, t0));
        assert!(c.record_failure(0, t0));
        assert!(c.is_cooling(0, t0 + Duration::from_secs(1)));
        assert!(!c.is_cooling(1, t0));
        assert!(!c.is_cooling(0, t0 + Duration::from_secs(6)));
        c.record_success(0);
        assert!(!c.is_cooling(0, t0));
    }

    #[test]
    fn carried_cells_follow_their_deployment() {
        let c = Cooldowns::new(2, 0, Duration::from_secs(5));
        let t0 = Instant::now();
        assert!(c.record_failure(1, t0));
        // Deployment 1 is now the first; a new one comes second.
        let n = c.carried(&[Some(1), None], 0, Duration::from_secs(5));
        assert!(n.is_cooling(0, t0));
        assert!(!n.is_cooling(1, t0));
        // The old config's requests still see the same memory.
        n.record_success(0);
        assert!(!c.is_cooling(1, t0));
    }

    #[test]
    fn old_failures_expire() {
        let c = Cooldowns::new(1, 1, Duration::from_secs(5));
        let t0 = Instant::now();
        c.record_failure(0, t0);
        assert!(!c.record_failure(0, t0 + Duration::from_secs(61)));
    }
}
