//! A router's local copy of the health store, read on the request path without any I/O.
//!
//! A background task keeps it current from [`HealthStore::subscribe`] (snapshots replace it,
//! changes patch it) and re-reads the snapshot every `refresh` as a safety net. Entries older
//! than the store's TTL read as Unknown, exactly as an expired key would. The task ends when the
//! last clone of the view is dropped. The `RwLock` is std's and is never held across an await.

use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use crate::model::{DeploymentHealth, HealthEvent, HealthSnapshot, now_ms};
use crate::store::HealthStore;

#[derive(Clone, Debug)]
pub struct HealthView {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    states: RwLock<HealthSnapshot>,
    ttl_ms: u64,
}

impl HealthView {
    /// Starts following `store`. Needs a Tokio runtime.
    pub fn start(store: HealthStore, refresh: Duration) -> Self {
        let inner = Arc::new(Inner {
            states: RwLock::new(HealthSnapshot::new()),
            ttl_ms: u64::try_from(store.state_ttl().as_millis()).unwrap_or(u64::MAX),
        });
        tokio::spawn(follow(store, Arc::downgrade(&inner), refresh));
        HealthView { inner }
    }

    /// The state of `deployment` (Unknown when absent or expired).
    pub fn get(&self, deployment: &str) -> DeploymentHealth {
        self.with_live(deployment, |h| h.cloned())
            .unwrap_or_else(DeploymentHealth::unknown)
    }

    /// Reads the live state of `deployment` (`None` when absent or expired) without copying it:
    /// the request path asks several questions per candidate.
    fn with_live<T>(&self, deployment: &str, f: impl FnOnce(Option<&DeploymentHealth>) -> T) -> T {
        let now = now_ms();
        self.read(|s| {
            f(s.get(deployment)
                .filter(|h| h.updated_ms.saturating_add(self.inner.ttl_ms) > now))
        })
    }

    /// Whether routing may use `deployment` (Up or Unknown).
    pub fn is_routable(&self, deployment: &str) -> bool {
        self.with_live(deployment, |h| h.is_none_or(DeploymentHealth::is_routable))
    }

    /// Whether the model is loaded on its server (Up and loaded).
    pub fn is_warm(&self, deployment: &str) -> bool {
        self.with_live(deployment, |h| h.is_some_and(DeploymentHealth::is_warm))
    }

    /// The context the server reports for the loaded model, when known.
    pub fn loaded_context(&self, deployment: &str) -> Option<u32> {
        self.with_live(deployment, |h| h.and_then(|h| h.loaded_context))
    }

    /// How many requests the server says it runs at once (llama.cpp `total_slots`), when known.
    pub fn slots(&self, deployment: &str) -> Option<u32> {
        self.with_live(deployment, |h| h.and_then(|h| h.slots))
    }

    /// The last probe latency, when known.
    pub fn latency_ms(&self, deployment: &str) -> Option<u32> {
        self.with_live(deployment, |h| h.and_then(|h| h.latency_ms))
    }

    /// Whether a success on `deployment` is worth reporting (it is Down or has failures), so
    /// the router can skip [`HealthStore::report_success`] on the common clean path.
    pub fn needs_success_report(&self, deployment: &str) -> bool {
        self.with_live(deployment, |h| {
            h.is_some_and(|h| h.status == crate::Status::Down || h.consecutive_failures > 0)
        })
    }

    /// Every live state.
    pub fn snapshot(&self) -> HealthSnapshot {
        let now = now_ms();
        self.read(|s| {
            s.iter()
                .filter(|(_, h)| h.updated_ms.saturating_add(self.inner.ttl_ms) > now)
                .map(|(k, h)| (k.clone(), h.clone()))
                .collect()
        })
    }

    /// Applies a state this replica just wrote (e.g. the result of a passive report) without
    /// waiting for its event to come back.
    pub fn apply(&self, deployment: &str, health: DeploymentHealth) {
        self.inner.patch(deployment.to_owned(), health);
    }

    fn read<T>(&self, f: impl FnOnce(&HealthSnapshot) -> T) -> T {
        let guard = self
            .inner
            .states
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&guard)
    }
}

impl Inner {
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HealthSnapshot> {
        self.states
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn replace(&self, snapshot: HealthSnapshot) {
        *self.write() = snapshot;
    }

    fn patch(&self, deployment: String, health: DeploymentHealth) {
        self.write().insert(deployment, health);
    }
}

async fn follow(store: HealthStore, view: Weak<Inner>, refresh: Duration) {
    let mut sub = store.subscribe();
    let mut tick = tokio::time::interval(refresh);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            ev = sub.recv() => {
                let Some(ev) = ev else { return };
                let Some(view) = view.upgrade() else { return };
                match ev {
                    HealthEvent::Snapshot(s) => view.replace(s),
                    HealthEvent::Changed(c) => view.patch(c.deployment, c.health),
                }
            }
            _ = tick.tick() => {
                if view.strong_count() == 0 {
                    return;
                }
                match store.snapshot().await {
                    Ok(s) => {
                        let Some(view) = view.upgrade() else { return };
                        view.replace(s);
                    }
                    Err(e) => tracing::debug!(error = %e, "health view refresh failed"),
                }
            }
        }
    }
}
