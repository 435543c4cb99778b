//! What a failed attempt means for the attempts still to come, in the one place the chat and
//! embeddings loops share it: an overflow leaves only larger windows, a request that a second
//! deployment rejects ends the request (so would the rest), a failure that another model cannot
//! fix ends it at once, and anything else moves on to the next candidate.

use switchyard_backends::BackendError;
use switchyard_core::FailureClass;
use switchyard_core::plan::Candidate;
use switchyard_proto as pb;

use crate::allow;
use crate::route_error::{self, Rejections};
use crate::state::RouterState;
use crate::trace;
use crate::usage::AttemptUsage;

/// The configured id of deployment `d` (empty if there is none).
pub(crate) fn deployment_id(state: &RouterState, d: usize) -> String {
    state
        .config
        .deployments
        .get(d)
        .map(|d| d.id.clone())
        .unwrap_or_default()
}

/// A failed attempt as the router's API reports it.
pub(crate) fn attempt_record(state: &RouterState, d: usize, e: &BackendError) -> pb::AttemptRecord {
    pb::AttemptRecord {
        deployment: deployment_id(state, d),
        failure_class: e.class.as_str().to_string(),
        message: e.message.clone(),
    }
}

/// The fallback state of one request.
#[derive(Default)]
pub(crate) struct FailurePolicy {
    /// After an overflow, only windows larger than this are tried.
    overflow_floor: Option<u32>,
    rejections: Rejections,
    /// The last failure, for the error when every candidate failed.
    pub last_error: Option<BackendError>,
}

impl FailurePolicy {
    /// Whether `candidate` is not worth an attempt any more.
    pub(crate) fn skips(&self, candidate: &Candidate) -> bool {
        let too_small = matches!(
            (self.overflow_floor, candidate.window),
            (Some(floor), Some(w)) if w <= floor
        );
        // A deployment that refused the request itself would refuse it again.
        too_small || self.rejections.rejected_by(candidate.deployment)
    }

    /// A failed attempt of `candidate` before anything reached the caller: reported to health,
    /// cooldowns, metrics and the trace, recorded in `failed` and `attempts`, then judged by
    /// [`Self::after_failure`].
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn failed(
        &mut self,
        state: &RouterState,
        candidate: &Candidate,
        e: BackendError,
        span: &tracing::Span,
        failed: &mut Vec<pb::AttemptRecord>,
        attempts: &mut Vec<AttemptUsage>,
        cut: &[String],
    ) -> Option<pb::RouteError> {
        let d = candidate.deployment;
        let id = deployment_id(state, d);
        tracing::debug!(deployment = %id, class = %e.class, error = %e.message, "attempt failed");
        trace::attempt_failed(span, e.class, false);
        if e.class.counts_against_health() {
            state.cooldowns.record_failure(d, std::time::Instant::now());
            state.shared.report_failure(&id, e.class).await;
        }
        failed.push(attempt_record(state, d, &e));
        state.metrics.attempt(&id, e.class.as_str());
        if e.is_retryable() {
            state.metrics.fallback(e.class.as_str());
        }
        attempts.push(AttemptUsage {
            deployment: id,
            failure_class: Some(e.class.as_str().to_string()),
            message: e.message.clone(),
            prompt_tokens: 0,
            completion_tokens: 0,
        });
        self.after_failure(candidate, e, failed, cut)
    }

    /// Takes a failed attempt of `candidate`; `Some` is the error that ends the request. `failed`
    /// holds every failed attempt so far, this one included, and `cut` the groups the key's
    /// allow-list removed.
    pub(crate) fn after_failure(
        &mut self,
        candidate: &Candidate,
        e: BackendError,
        failed: &[pb::AttemptRecord],
        cut: &[String],
    ) -> Option<pb::RouteError> {
        if let Some(end) = self.rejections.agreed(candidate.deployment, &e) {
            // A second deployment rejected the request itself: so would the rest.
            return Some(allow::explain_cut(
                route_error::exhausted(&end, failed.to_vec()),
                cut,
            ));
        }
        if !e.is_retryable() && e.class != FailureClass::Client {
            return Some(route_error::exhausted(&e, failed.to_vec()));
        }
        if e.class.needs_larger_window() {
            let w = candidate.window.unwrap_or(0);
            self.overflow_floor = Some(self.overflow_floor.map_or(w, |f| f.max(w)));
        }
        self.last_error = Some(e);
        None
    }
}
