//! Where deployment health lives: [`HealthStore`], in this process or in Redis.
//!
//! **Why an enum and not a trait object.** There are exactly two backends and both are in this
//! crate, so a closed enum gives static dispatch, plain `async fn`s (no boxing, no
//! `async_trait`) and exhaustive matches; a test double is a [`MemoryStore`]. Adding a backend
//! means adding a variant here.
//!
//! Semantics shared by both:
//! - a state lives for [`HealthStore::state_ttl`] after it was written; an expired or never
//!   written state reads as [`Status::Unknown`](crate::Status::Unknown) (absent from snapshots);
//! - writes are whole records and idempotent; a change is published to subscribers;
//! - one prober lease (`try_lease` / `release_lease`) so replicas of the prober do not fight.

mod catalog;
mod memory;
mod redis;
mod subscription;

use std::time::Duration;

use switchyard_core::FailureClass;

pub use self::catalog::CatalogWatch;
pub use self::memory::MemoryStore;
pub use self::redis::RedisStore;
pub use self::subscription::HealthSubscription;
use crate::error::HealthError;
use crate::model::{DeploymentHealth, HealthSnapshot};

/// Default state lifetime: three probe intervals of the default 5 s.
pub const DEFAULT_STATE_TTL: Duration = Duration::from_secs(15);

/// The health store: [`MemoryStore`] for one process, [`RedisStore`] shared by replicas.
/// Cheap to clone; clones share the same state.
#[derive(Clone, Debug)]
pub enum HealthStore {
    Memory(MemoryStore),
    Redis(RedisStore),
}

impl HealthStore {
    /// The state of one deployment ([`DeploymentHealth::unknown`] when absent or expired).
    pub async fn get(&self, deployment: &str) -> Result<DeploymentHealth, HealthError> {
        match self {
            HealthStore::Memory(s) => Ok(s.get(deployment)),
            HealthStore::Redis(s) => s.get(deployment).await,
        }
    }

    /// Every live state by deployment id.
    pub async fn snapshot(&self) -> Result<HealthSnapshot, HealthError> {
        match self {
            HealthStore::Memory(s) => Ok(s.snapshot()),
            HealthStore::Redis(s) => s.snapshot().await,
        }
    }

    /// Writes a state (restarting its TTL); publishes it when `publish` is true. Writing the same
    /// record twice is harmless.
    pub async fn put(
        &self,
        deployment: &str,
        health: &DeploymentHealth,
        publish: bool,
    ) -> Result<(), HealthError> {
        match self {
            HealthStore::Memory(s) => {
                s.put(deployment, health, publish);
                Ok(())
            }
            HealthStore::Redis(s) => s.put(deployment, health, publish).await,
        }
    }

    /// Changes as they happen; the first event is always a full snapshot. For Redis the
    /// subscription reconnects by itself and sends a fresh snapshot after each reconnect.
    /// Needs a Tokio runtime (Redis spawns a task, stopped when the subscription is dropped).
    pub fn subscribe(&self) -> HealthSubscription {
        match self {
            HealthStore::Memory(s) => s.subscribe(),
            HealthStore::Redis(s) => s.subscribe(),
        }
    }

    /// A request to `deployment` failed with `class` (see [`crate::passive`] for the policy).
    /// Returns the new state when it changed.
    pub async fn report_failure(
        &self,
        deployment: &str,
        class: FailureClass,
    ) -> Result<Option<DeploymentHealth>, HealthError> {
        match self {
            HealthStore::Memory(s) => Ok(s.report_failure(deployment, class)),
            HealthStore::Redis(s) => s.report_failure(deployment, class).await,
        }
    }

    /// A request to `deployment` succeeded. Costs one read when nothing changes.
    pub async fn report_success(
        &self,
        deployment: &str,
    ) -> Result<Option<DeploymentHealth>, HealthError> {
        match self {
            HealthStore::Memory(s) => Ok(s.report_success(deployment)),
            HealthStore::Redis(s) => s.report_success(deployment).await,
        }
    }

    /// Takes or renews the prober lease for `replica` for `ttl`. True while `replica` holds it.
    pub async fn try_lease(&self, replica: &str, ttl: Duration) -> Result<bool, HealthError> {
        match self {
            HealthStore::Memory(s) => Ok(s.try_lease(replica, ttl)),
            HealthStore::Redis(s) => s.try_lease(replica, ttl).await,
        }
    }

    /// Gives the lease up if `replica` holds it, so a standby takes over without waiting.
    pub async fn release_lease(&self, replica: &str) -> Result<(), HealthError> {
        match self {
            HealthStore::Memory(s) => {
                s.release_lease(replica);
                Ok(())
            }
            HealthStore::Redis(s) => s.release_lease(replica).await,
        }
    }

    /// How long a written state stays valid.
    pub fn state_ttl(&self) -> Duration {
        match self {
            HealthStore::Memory(s) => s.state_ttl(),
            HealthStore::Redis(s) => s.state_ttl(),
        }
    }

    /// Whether the last call to the shared backend failed (always false in memory). For
    /// readiness endpoints: the service still runs, on stale or unknown health.
    pub fn is_degraded(&self) -> bool {
        match self {
            HealthStore::Memory(_) => false,
            HealthStore::Redis(s) => s.is_degraded(),
        }
    }
}

impl From<MemoryStore> for HealthStore {
    fn from(s: MemoryStore) -> Self {
        HealthStore::Memory(s)
    }
}

impl From<RedisStore> for HealthStore {
    fn from(s: RedisStore) -> Self {
        HealthStore::Redis(s)
    }
}
