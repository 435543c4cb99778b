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
                .map(|(rpm, tpm)| tpm as f64 + rpm as f64 * 1e-6)
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
            let mut rng = rand::rng();
            ids.iter().map(|_| rng.random::<f64>()).collect()
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
