//! Passive health: what a router replica's own requests say about a deployment.
//!
//! The prober looks every few seconds; a request that just hit a refused connection knows
//! sooner. These pure functions turn one observation into the next state (or `None`: nothing
//! to write), and both stores apply them, so the policy lives in one place:
//!
//! - `Connect` (nothing listens) and `NotFound` (the model is gone) mark the deployment Down at
//!   once;
//! - `Timeout`, `Server`, `StreamBroken` and `Protocol` count, and mark it Down after
//!   [`PASSIVE_DOWN_AFTER`] in a row (one slow answer is not a dead backend; the router's own
//!   cooldowns handle short bursts);
//! - `Busy`, `Overflow` and `Client` say nothing about health and are ignored;
//! - a success clears failures and brings a Down deployment back Up.

use switchyard_core::FailureClass;

use crate::model::{DeploymentHealth, Source, Status};

/// Failures of the counting kinds in a row that mark a deployment Down.
pub const PASSIVE_DOWN_AFTER: u32 = 3;

/// The state after a failed request, or `None` when the failure is not a health fact.
pub fn after_failure(
    current: Option<&DeploymentHealth>,
    class: FailureClass,
    now_ms: u64,
) -> Option<DeploymentHealth> {
    let immediate = match class {
        FailureClass::Connect | FailureClass::NotFound => true,
        FailureClass::Timeout
        | FailureClass::Server
        | FailureClass::StreamBroken
        | FailureClass::Protocol => false,
        FailureClass::Busy | FailureClass::Overflow | FailureClass::Client => return None,
    };
    let mut next = current.cloned().unwrap_or_else(DeploymentHealth::unknown);
    next.consecutive_failures = next.consecutive_failures.saturating_add(1);
    let down = immediate || next.consecutive_failures >= PASSIVE_DOWN_AFTER;
    if down && next.status != Status::Down {
        next.status = Status::Down;
        next.last_change_ms = now_ms;
    }
    if class == FailureClass::NotFound {
        next.model_present = Some(false);
    }
    next.source = Source::Passive;
    next.detail = Some(format!("request failed: {}", class.as_str()));
    next.updated_ms = now_ms;
    Some(next)
}

/// The state after a successful request, or `None` when nothing needs to change (the common
/// case: a clean Up deployment, or one nobody has reported on yet).
pub fn after_success(current: Option<&DeploymentHealth>, now_ms: u64) -> Option<DeploymentHealth> {
    let current = current?;
    if current.status != Status::Down && current.consecutive_failures == 0 {
        return None;
    }
    let mut next = current.clone();
    if next.status != Status::Up {
        next.status = Status::Up;
        next.last_change_ms = now_ms;
    }
    next.consecutive_failures = 0;
    if next.model_present == Some(false) {
        next.model_present = Some(true);
    }
    next.source = Source::Passive;
    next.detail = None;
    next.updated_ms = now_ms;
    Some(next)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn up() -> DeploymentHealth {
        DeploymentHealth {
            status: Status::Up,
            ..DeploymentHealth::unknown()
        }
    }

    #[test]
    fn connect_refused_is_down_at_once() {
        let d = after_failure(Some(&up()), FailureClass::Connect, 7).unwrap();
        assert_eq!(d.status, Status::Down);
        assert_eq!(d.source, Source::Passive);
        assert_eq!(d.last_change_ms, 7);
        assert_eq!(d.consecutive_failures, 1);
    }

    #[test]
    fn server_errors_count_until_the_threshold() {
        let mut s = up();
        for i in 1..PASSIVE_DOWN_AFTER {
            s = after_failure(Some(&s), FailureClass::Server, i.into()).unwrap();
            assert_eq!(s.status, Status::Up, "after {i}");
        }
        s = after_failure(Some(&s), FailureClass::Server, 9).unwrap();
        assert_eq!(s.status, Status::Down);
    }

    #[test]
    fn non_health_failures_are_ignored() {
        for c in [
            FailureClass::Busy,
            FailureClass::Overflow,
            FailureClass::Client,
        ] {
            assert!(after_failure(Some(&up()), c, 1).is_none());
        }
    }

    #[test]
    fn success_brings_it_back_and_is_quiet_otherwise() {
        assert!(after_success(Some(&up()), 1).is_none());
        assert!(after_success(None, 1).is_none());
        let down = after_failure(Some(&up()), FailureClass::NotFound, 1).unwrap();
        let back = after_success(Some(&down), 5).unwrap();
        assert_eq!(back.status, Status::Up);
        assert_eq!(back.consecutive_failures, 0);
        assert_eq!(back.model_present, Some(true));
        assert_eq!(back.last_change_ms, 5);
    }
}
