//! Routing strategies: the order of candidates that already passed the fit and health filters.
//!
//! A strategy never overrides the fallback chain: it reorders deployments *within* one group
//! (several hosts serving the same model), and the chain decides between groups. So "least busy"
//! can never send a prompt to a model that is too small, or skip the small model for a larger one
//! just because the larger one is idle — it picks the least busy of the deployments that are
//! equally right for the request.

use rand::Rng;
use switchyard_core::config::Strategy;
use switchyard_core::plan::Candidate;

use crate::state::RouterState;

/// Reorders `candidates` in place according to the configured strategy.
pub(crate) async fn order(state: &RouterState, candidates: &mut [Candidate]) {
    let strategy = state.config.routing.strategy;
    if strategy == Strategy::Ordered || candidates.len() < 2 {
        return;
    }
    let cfg = &state.config;
    let ids: Vec<&str> = candidates
        .iter()
        .map(|c| {
            cfg.deployments
                .get(c.deployment)
                .map_or("", |d| d.id.as_str())
        })
        .collect();
    // One sort key per candidate; lower goes first.
    let keys: Vec<f64> = match strategy {
        Strategy::Ordered => return,
        Strategy::LeastBusy => match state.shared.inflight.get_many(&ids).await {
            Ok(counts) => counts.into_iter().map(|c| c as f64).collect(),
            Err(_) => return, // shared counters unreachable: keep the chain order
        },
        Strategy::UsageBased => match state.shared.usage.current(&ids).await {
            Ok(usage) => usage
                .into_iter()
                .zip(candidates.iter())
                .map(|((requests, tokens), c)| usage_key(state, c, requests, tokens))
                .collect(),
            Err(_) => return,
        },
        Strategy::LatencyBased => ids
            .iter()
            .map(|id| state.shared.view.latency_ms(id).map_or(f64::MAX, f64::from))
            .collect(),
        Strategy::WarmFirst => ids
            .iter()
            .map(|id| {
                if state.shared.view.is_warm(id) {
                    0.0
                } else {
                    1.0
                }
            })
            .collect(),
        Strategy::SimpleShuffle => {
            // Weighted: each deployment goes first with probability weight / sum of weights
            // (an exponential race: the smallest -ln(u) / weight wins).
            let mut rng = rand::rng();
            candidates
                .iter()
                .map(|c| {
                    let u: f64 = rng.random_range(f64::MIN_POSITIVE..1.0);
                    -u.ln() / shuffle_weight(state, c)
                })
                .collect()
        }
    };
    // Stable sort within each run of candidates from the same group.
    let group_of = |c: &Candidate| {
        cfg.deployments
            .get(c.deployment)
            .map_or(usize::MAX, |d| d.group)
    };
    let mut start = 0;
    while start < candidates.len() {
        let g = group_of(&candidates[start]);
        let end = (start..candidates.len())
            .find(|&i| group_of(&candidates[i]) != g)
            .unwrap_or(candidates.len());
        let mut run: Vec<(f64, Candidate)> = (start..end)
            .map(|i| {
                (
                    keys.get(i).copied().unwrap_or(f64::MAX),
                    candidates[i].clone(),
                )
            })
            .collect();
        run.sort_by(|a, b| a.0.total_cmp(&b.0));
        for (offset, (_, c)) in run.into_iter().enumerate() {
            candidates[start + offset] = c;
        }
        start = end;
    }
}

/// LiteLLM's simple-shuffle weight: `weight`, else `rpm`, else `tpm`, else 1.
fn shuffle_weight(state: &RouterState, c: &Candidate) -> f64 {
    let Some(cap) = state
        .config
        .deployments
        .get(c.deployment)
        .map(|d| &d.capacity)
    else {
        return 1.0;
    };
    cap.weight
        .map(f64::from)
        .or(cap.rpm.map(f64::from))
        .or(cap.tpm.map(|t| t as f64))
        .filter(|w| *w > 0.0)
        .unwrap_or(1.0)
}

/// Usage-based order: the share of its per-minute limits a deployment has used (tokens, then
/// requests, when no limit is set), and a deployment at a limit goes after every other.
fn usage_key(state: &RouterState, c: &Candidate, requests: u64, tokens: u64) -> f64 {
    let Some(cap) = state
        .config
        .deployments
        .get(c.deployment)
        .map(|d| &d.capacity)
    else {
        return tokens as f64;
    };
    let over =
        cap.rpm.is_some_and(|r| requests >= u64::from(r)) || cap.tpm.is_some_and(|t| tokens >= t);
    let share = match (cap.tpm, cap.rpm) {
        (Some(t), _) => tokens as f64 / t as f64,
        (None, Some(r)) => requests as f64 / f64::from(r),
        // No limits: raw tokens (then requests), as before, scaled below any limited share.
        (None, None) => (tokens as f64 + requests as f64 * 1e-6) * 1e-12,
    };
    if over { 1e6 + share } else { share }
}
