//! The in-process health store: the all-in-one binary's default and the tests' double.
//!
//! A std `Mutex` guards the map; it is never held across an `.await` (no method here awaits).
//! Changes go out on a `broadcast` channel; a subscriber that falls behind gets a fresh snapshot.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use switchyard_core::FailureClass;
use tokio::sync::broadcast;

use super::DEFAULT_STATE_TTL;
use super::catalog::CatalogCell;
use super::subscription::HealthSubscription;
use crate::model::{DeploymentHealth, HealthChange, HealthSnapshot, now_ms};
use crate::passive;

/// Events buffered per subscriber before it is considered lagging.
const CHANNEL_CAPACITY: usize = 256;

#[derive(Clone, Debug)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    ttl: Duration,
    states: Mutex<HashMap<String, (DeploymentHealth, Instant)>>,
    lease: Mutex<Option<(String, Instant)>>,
    events: broadcast::Sender<HealthChange>,
    catalog: CatalogCell,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::with_ttl(DEFAULT_STATE_TTL)
    }

    /// A store whose states expire `ttl` after they were written.
    pub fn with_ttl(ttl: Duration) -> Self {
        let (events, _) = broadcast::channel(CHANNEL_CAPACITY);
        MemoryStore {
            inner: Arc::new(Inner {
                ttl,
                states: Mutex::new(HashMap::new()),
                lease: Mutex::new(None),
                events,
                catalog: CatalogCell::default(),
            }),
        }
    }

    fn states(&self) -> MutexGuard<'_, HashMap<String, (DeploymentHealth, Instant)>> {
        // A poisoned lock only means another thread panicked mid-update of plain data.
        self.inner
            .states
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn live(&self, deployment: &str) -> Option<DeploymentHealth> {
        let states = self.states();
        let (h, expires) = states.get(deployment)?;
        (*expires > Instant::now()).then(|| h.clone())
    }

    pub fn get(&self, deployment: &str) -> DeploymentHealth {
        self.live(deployment)
            .unwrap_or_else(DeploymentHealth::unknown)
    }

    pub fn snapshot(&self) -> HealthSnapshot {
        let now = Instant::now();
        let mut states = self.states();
        states.retain(|_, (_, expires)| *expires > now);
        states
            .iter()
            .map(|(k, (h, _))| (k.clone(), h.clone()))
            .collect()
    }

    pub fn put(&self, deployment: &str, health: &DeploymentHealth, publish: bool) {
        let expires = Instant::now() + self.inner.ttl;
        self.states()
            .insert(deployment.to_owned(), (health.clone(), expires));
        if publish {
            self.publish(deployment, health);
        }
    }

    fn publish(&self, deployment: &str, health: &DeploymentHealth) {
        // No receiver is fine: nobody is watching.
        let _ = self.inner.events.send(HealthChange {
            deployment: deployment.to_owned(),
            health: health.clone(),
        });
    }

    pub fn subscribe(&self) -> HealthSubscription {
        HealthSubscription::memory(self.clone(), self.inner.events.subscribe())
    }

    /// Applies a passive observation atomically (under the lock).
    fn apply(
        &self,
        deployment: &str,
        f: impl FnOnce(Option<&DeploymentHealth>) -> Option<DeploymentHealth>,
    ) -> Option<DeploymentHealth> {
        let now = Instant::now();
        let next = {
            let mut states = self.states();
            let current = states
                .get(deployment)
                .filter(|(_, expires)| *expires > now)
                .map(|(h, _)| h);
            let next = f(current)?;
            states.insert(deployment.to_owned(), (next.clone(), now + self.inner.ttl));
            next
        };
        self.publish(deployment, &next);
        Some(next)
    }

    pub fn report_failure(
        &self,
        deployment: &str,
        class: FailureClass,
    ) -> Option<DeploymentHealth> {
        self.apply(deployment, |c| passive::after_failure(c, class, now_ms()))
    }

    pub fn report_success(&self, deployment: &str) -> Option<DeploymentHealth> {
        self.apply(deployment, |c| passive::after_success(c, now_ms()))
    }

    pub fn try_lease(&self, replica: &str, ttl: Duration) -> bool {
        let now = Instant::now();
        let mut lease = self
            .inner
            .lease
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let free = match &*lease {
            None => true,
            Some((holder, expires)) => holder == replica || *expires <= now,
        };
        if free {
            *lease = Some((replica.to_owned(), now + ttl));
        }
        free
    }

    pub fn release_lease(&self, replica: &str) {
        let mut lease = self
            .inner
            .lease
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if lease.as_ref().is_some_and(|(holder, _)| holder == replica) {
            *lease = None;
        }
    }

    pub fn state_ttl(&self) -> Duration {
        self.inner.ttl
    }

    pub(crate) fn catalog_cell(&self) -> &CatalogCell {
        &self.inner.catalog
    }
}
