//! Exact counts where, and only where, the routing decision depends on them.
//!
//! The planner compares each deployment's prompt estimate plus the output reserve with its
//! window. An estimate is a range: the prediction less and plus its margin. When the whole range
//! is on one side of a window's limit the decision is the same whatever the exact count is, and
//! nothing more is done. When the range straddles the limit, the deployment's backend is asked for
//! the exact count (see `backend_count`), all such deployments at once, before planning. For a
//! deployment with an exact tokenizer, a long prompt's count starts as a cheap range (see
//! `switchyard_core::bound`), and the tokenizer runs only when that range straddles a limit.

use futures::future::join_all;
use switchyard_core::config::GroupIx;
use switchyard_core::plan::{Availability, reachable_groups};
use switchyard_proto as pb;

use crate::shared::RouterAvailability;
use crate::state::{Estimator, RouterState};

/// Calibration samples before an estimate's error is judged by its margin alone.
const WARM_UP: u32 = 5;
/// How far off an uncalibrated heuristic may be: it overestimated English prose by 36 % before
/// calibration (issue 18), and underestimates base64 and similar text.
const COLD_ERROR: f64 = 0.4;

/// The range an estimate's prompt size may really be in: twice its margin either way, and while
/// calibration is still warming up at least `COLD_ERROR` of the prediction. Wider than the margin
/// routing uses, so a backend is asked whenever its count could change the decision; where the
/// range is decided either way the planner's own test (prediction + margin) decides the same.
pub(crate) fn uncertainty(predicted: u32, margin: u32, samples: u32) -> (u32, u32) {
    let mut spread = margin.saturating_mul(2);
    if samples < WARM_UP {
        spread = spread.max((f64::from(predicted) * COLD_ERROR).ceil() as u32);
    }
    (
        predicted.saturating_sub(spread),
        predicted.saturating_add(spread),
    )
}

/// Whether the range `[lower, upper]` of a prompt's size leaves the fit test of a `window` with
/// `reserve` output tokens undecided.
pub(crate) fn straddles(lower: u32, upper: u32, reserve: u32, window: u32) -> bool {
    match window.checked_sub(reserve) {
        Some(limit) => lower <= limit && limit < upper,
        // Not even the output reserve fits: no prompt size changes that.
        None => false,
    }
}

/// Makes exact the estimates of the deployments `group` may reach whose fit test with `reserve`
/// output tokens the estimate leaves undecided: with their exact tokenizer where only its cheap
/// range is known, else with their backend where it can count. `force_exact` counts every range
/// exactly (the room left for the answer is computed from the count).
pub(crate) async fn refine(
    state: &RouterState,
    req: &pb::ChatRequest,
    estimator: &mut Estimator<'_>,
    group: GroupIx,
    reserve: u32,
    force_exact: bool,
) {
    let cfg = &state.config;
    let counting = &state.backend_counting;
    let availability = RouterAvailability(state);
    let mut asks = Vec::new();
    for g in reachable_groups(cfg, group) {
        let Some(grp) = cfg.groups.get(g) else {
            continue;
        };
        for &d in &grp.deployments {
            let ranged = estimator.is_range(d);
            if !(ranged || counting.eligible(d)) || estimator.is_exact(d) {
                continue;
            }
            if ranged && force_exact {
                estimator.count_exactly(d);
                continue;
            }
            let configured = cfg.deployments.get(d).and_then(|x| x.context_window);
            let Some(window) = availability.window(d, configured) else {
                continue;
            };
            let e = estimator.estimate(d);
            let (lower, upper) = if ranged {
                (e.lower, e.total())
            } else {
                let samples = state.calibration.get(d).map_or(0, |c| c.state().samples);
                uncertainty(e.predicted(), e.margin, samples)
            };
            if !straddles(lower, upper, reserve, window) {
                continue;
            }
            if ranged {
                estimator.count_exactly(d);
            } else if let Some(api) = counting.api(d, &state.shared.view) {
                asks.push((d, api));
            }
        }
    }
    if asks.is_empty() {
        return;
    }
    let counts = join_all(asks.iter().map(|&(d, api)| counting.count(d, api, req))).await;
    for ((d, _), counted) in asks.into_iter().zip(counts) {
        if let Some((tokens, remote)) = counted {
            estimator.set_exact(d, tokens, Some(remote));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{straddles, uncertainty};

    #[test]
    fn a_cold_estimate_is_uncertain_by_more_than_its_margin() {
        assert_eq!(uncertainty(500, 60, 0), (300, 700));
        assert_eq!(uncertainty(500, 26, 20), (448, 552));
    }

    #[test]
    fn only_a_range_across_the_limit_is_undecided() {
        // window 512, reserve 16: the limit is 496.
        assert!(straddles(430, 562, 16, 512));
        assert!(straddles(496, 497, 16, 512));
        assert!(!straddles(400, 496, 16, 512)); // fits whatever the count
        assert!(!straddles(497, 600, 16, 512)); // too large whatever the count
        assert!(!straddles(0, 10, 600, 512));
    }
}
