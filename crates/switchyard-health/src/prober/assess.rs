//! Turning a probe finding into the next stored state, and deciding whether to write it.
//!
//! Pure functions, so the rules (when a status "changes", when a write is only a TTL refresh)
//! are tested without a server.

use std::time::Duration;

use super::observe::Finding;
use crate::model::{DeploymentHealth, Source, Status};

/// What the prober should do with a computed state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Write {
    /// Nothing routing acts on changed and the stored state is fresh enough.
    Skip,
    /// Same facts: rewrite only to restart the TTL (not published).
    Refresh,
    /// A change: write and publish.
    Change,
}

/// The state a finding leads to, given the stored one.
pub(crate) fn next_state(
    prev: Option<&DeploymentHealth>,
    f: &Finding,
    now_ms: u64,
) -> DeploymentHealth {
    let status = if f.up { Status::Up } else { Status::Down };
    let prev_status = prev.map_or(Status::Unknown, |p| p.status);
    let failures = if f.up {
        0
    } else {
        prev.map_or(0, |p| p.consecutive_failures).saturating_add(1)
    };
    DeploymentHealth {
        status,
        model_present: f.model_present,
        loaded: f.loaded,
        loaded_context: f.loaded_context,
        // The trained context is a property of the weights: keep it while the host is away.
        trained_context: f
            .trained_context
            .or_else(|| prev.and_then(|p| p.trained_context)),
        // Like the trained context, the slot count is the server's setting: kept while away.
        slots: f.slots.or_else(|| prev.and_then(|p| p.slots)),
        consecutive_failures: failures,
        last_change_ms: if status == prev_status {
            prev.map_or(now_ms, |p| p.last_change_ms)
        } else {
            now_ms
        },
        latency_ms: f.latency_ms,
        updated_ms: now_ms,
        source: Source::Probe,
        detail: f.detail.clone(),
    }
}

/// Whether to write `next` over `prev`, refreshing when half the TTL has passed.
pub(crate) fn decide(
    prev: Option<&DeploymentHealth>,
    next: &DeploymentHealth,
    ttl: Duration,
    now_ms: u64,
) -> Write {
    let Some(prev) = prev else {
        return Write::Change;
    };
    if !prev.same_facts(next) {
        return Write::Change;
    }
    let half_ttl = u64::try_from(ttl.as_millis() / 2).unwrap_or(u64::MAX);
    if now_ms.saturating_sub(prev.updated_ms) >= half_ttl {
        Write::Refresh
    } else {
        Write::Skip
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn up_finding() -> Finding {
        Finding {
            up: true,
            latency_ms: Some(3),
            model_present: Some(true),
            trained_context: Some(8192),
            ..Finding::default()
        }
    }

    #[test]
    fn failures_count_and_status_changes_are_timestamped() {
        let a = next_state(None, &up_finding(), 100);
        assert_eq!((a.status, a.last_change_ms), (Status::Up, 100));
        let b = next_state(Some(&a), &Finding::down("x".into()), 200);
        assert_eq!(b.status, Status::Down);
        assert_eq!(b.last_change_ms, 200);
        assert_eq!(b.consecutive_failures, 1);
        assert_eq!(b.trained_context, Some(8192), "kept while down");
        let c = next_state(Some(&b), &Finding::down("x".into()), 300);
        assert_eq!((c.consecutive_failures, c.last_change_ms), (2, 200));
    }

    #[test]
    fn latency_alone_is_not_a_change() {
        let ttl = Duration::from_secs(10);
        let a = next_state(None, &up_finding(), 1_000);
        assert_eq!(decide(None, &a, ttl, 1_000), Write::Change);
        let mut f = up_finding();
        f.latency_ms = Some(50);
        let b = next_state(Some(&a), &f, 2_000);
        assert_eq!(decide(Some(&a), &b, ttl, 2_000), Write::Skip);
        let c = next_state(Some(&a), &f, 7_000);
        assert_eq!(decide(Some(&a), &c, ttl, 7_000), Write::Refresh);
        let d = next_state(Some(&a), &Finding::down("gone".into()), 2_000);
        assert_eq!(decide(Some(&a), &d, ttl, 2_000), Write::Change);
    }
}
