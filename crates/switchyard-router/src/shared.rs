//! State the router shares with the prober and with other router replicas: deployment health
//! (read from a local view, never a round trip per request), in-flight counts and per-minute
//! usage for the load-aware strategies. In Redis when `state.redis_url` is set, else in memory.

use std::time::{Duration, Instant};

use switchyard_core::FailureClass;
use switchyard_core::config::{DeploymentIx, StateSettings};
use switchyard_core::plan::{Availability, Candidate};
use switchyard_health::{
    HealthStore, HealthView, InflightCounter, MemoryStore, RedisConn, RedisStore, Status,
    UsageWindow, now_ms,
};

use crate::state::RouterState;

/// How often the local health view re-reads the whole store (events keep it current between).
const VIEW_REFRESH: Duration = Duration::from_secs(5);

pub struct Shared {
    pub store: HealthStore,
    pub view: HealthView,
    pub inflight: InflightCounter,
    pub usage: UsageWindow,
    pub redis: Option<RedisConn>,
}

impl Shared {
    /// Builds the shared state (needs a Tokio runtime: the view follows the store in a task).
    pub fn from_settings(s: &StateSettings) -> Result<Self, switchyard_health::HealthError> {
        match &s.redis_url {
            Some(url) => {
                let conn = RedisConn::new(url, &s.key_prefix)?;
                let replica = format!("router-{}", uuid::Uuid::new_v4().simple());
                let store: HealthStore = RedisStore::from_conn(conn.clone()).into();
                Ok(Shared {
                    view: HealthView::start(store.clone(), VIEW_REFRESH),
                    store,
                    inflight: InflightCounter::redis(conn.clone(), &replica),
                    usage: UsageWindow::redis(conn.clone()),
                    redis: Some(conn),
                })
            }
            None => {
                let store: HealthStore = MemoryStore::new().into();
                Ok(Shared {
                    view: HealthView::start(store.clone(), VIEW_REFRESH),
                    store,
                    inflight: InflightCounter::memory(),
                    usage: UsageWindow::memory(),
                    redis: None,
                })
            }
        }
    }

    /// Whether a shared dependency (Redis) is unreachable; routing then runs on local state.
    pub fn is_degraded(&self) -> bool {
        self.redis.as_ref().is_some_and(RedisConn::is_degraded)
    }

    /// Passive health: a failure the router saw itself.
    pub async fn report_failure(&self, id: &str, class: FailureClass) {
        match self.store.report_failure(id, class).await {
            Ok(Some(h)) => self.view.apply(id, h),
            Ok(None) => {}
            Err(e) => tracing::debug!(error = %e, "health store unreachable; failure kept local"),
        }
    }

    /// Passive health: a success, reported only when it changes something.
    pub async fn report_success(&self, id: &str) {
        if !self.view.needs_success_report(id) {
            return;
        }
        match self.store.report_success(id).await {
            Ok(Some(h)) => self.view.apply(id, h),
            Ok(None) => {}
            Err(e) => tracing::debug!(error = %e, "health store unreachable"),
        }
    }
}

/// The planner's view of cooldowns, health and discovered windows.
pub(crate) struct RouterAvailability<'a>(pub &'a RouterState);

impl Availability for RouterAvailability<'_> {
    fn is_cooling(&self, d: DeploymentIx, now: Instant) -> bool {
        self.0.cooldowns.is_cooling(d, now)
    }

    fn is_down(&self, d: DeploymentIx) -> bool {
        self.0
            .config
            .deployments
            .get(d)
            .is_some_and(|dep| !self.0.shared.view.is_routable(&dep.id))
    }

    fn window(&self, d: DeploymentIx, configured: Option<u32>) -> Option<u32> {
        configured.or_else(|| {
            let dep = self.0.config.deployments.get(d)?;
            self.0.shared.view.loaded_context(&dep.id)
        })
    }
}

/// Whether every candidate of a request is known to be down, and how far to believe it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum AllDown {
    /// Some candidate is up, unknown or only cooling down: route as usual.
    No,
    /// All down, and the newest down-mark is younger than a probe interval: fail fast.
    Fresh,
    /// All down, but no mark is younger than a probe interval (nobody may be probing, or the
    /// view lags): the request tries once to find out.
    MaybeStale,
}

/// Reads the health view for `candidates` (the planner keeps down deployments only as a last
/// resort, when nothing else fits, so this is only ever all-down in that case).
pub(crate) fn all_down(state: &RouterState, candidates: &[Candidate]) -> AllDown {
    let mut newest = 0u64;
    for c in candidates {
        let Some(dep) = state.config.deployments.get(c.deployment) else {
            return AllDown::No;
        };
        let h = state.shared.view.get(&dep.id);
        if h.status != Status::Down {
            return AllDown::No;
        }
        newest = newest.max(h.updated_ms);
    }
    if candidates.is_empty() {
        return AllDown::No;
    }
    let interval = u64::try_from(state.config.prober.interval.as_millis()).unwrap_or(u64::MAX);
    if now_ms().saturating_sub(newest) > interval {
        AllDown::MaybeStale
    } else {
        AllDown::Fresh
    }
}
