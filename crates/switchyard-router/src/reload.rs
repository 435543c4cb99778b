//! Swapping the router's configuration while it serves.
//!
//! The router's whole per-config state is one [`RouterState`] behind an [`ArcSwap`]. Every
//! request takes a snapshot (`Arc<RouterState>`) when it starts and keeps it to its end, so a
//! stream started before a reload finishes on the deployments it was planned on. A reload builds
//! the next state from the new config, sharing with the running one everything learned about
//! deployments that still exist (matched by id): cooldowns and metrics always; calibration,
//! discovered tokenizers and backend-tokenizer detection when the deployment still points at
//! the same model on the same server. Health, in-flight counts and usage windows live in the
//! shared store, keyed by id, and are kept whole, like the capacity slots (by id) and queues (by
//! group name). Keys that only take effect at start keep their
//! running value (`switchyard_core::config::diff`) and are reported.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwap;
use switchyard_backends::Backends;
use switchyard_core::calibration::Calibration;
use switchyard_core::config::diff::{ConfigDiff, diff, keep_restart_only};
use switchyard_core::config::{Config, Deployment, DeploymentIx};

use crate::backend_count::BackendCounting;
use crate::state::{RouterState, StateError};
use crate::tokenizers;

/// What a reload changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReloadOutcome {
    /// The router's config generation after the reload (1 at start; unchanged when nothing
    /// changed).
    pub generation: u64,
    /// What differed between the running config and the new one.
    pub diff: ConfigDiff,
}

impl ReloadOutcome {
    /// Whether the new config was the running one (nothing was swapped).
    pub fn unchanged(&self) -> bool {
        self.diff.is_empty()
    }
}

/// Why a reload was refused (the running config stays).
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The new config could not be put into service (a backend client could not be built).
    #[error("the new configuration cannot be applied: {0}")]
    State(#[from] StateError),
}

/// The live state of one router service and what a reload needs to build the next one.
pub(crate) struct Live {
    current: ArcSwap<RouterState>,
    generation: AtomicU64,
    /// One reload at a time: each builds on the state the previous one left.
    reloading: tokio::sync::Mutex<()>,
    tokenizer_cache: Option<PathBuf>,
}

impl Live {
    pub(crate) fn new(state: RouterState, tokenizer_cache: Option<PathBuf>) -> Self {
        Live {
            current: ArcSwap::from_pointee(state),
            generation: AtomicU64::new(1),
            reloading: tokio::sync::Mutex::new(()),
            tokenizer_cache,
        }
    }

    /// The state a request starts on, and keeps to its end.
    pub(crate) fn snapshot(&self) -> Arc<RouterState> {
        self.current.load_full()
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Applies `config`: builds the next state and swaps it in (see the module docs).
    pub(crate) async fn reload(&self, mut config: Config) -> Result<ReloadOutcome, ReloadError> {
        let _one = self.reloading.lock().await;
        let old = self.snapshot();
        let d = diff(&old.config, &config);
        if d.is_empty() {
            return Ok(ReloadOutcome {
                generation: self.generation(),
                diff: d,
            });
        }
        keep_restart_only(&old.config, &mut config);
        let (next, new_tokenizers) = next_state(&old, config)?;
        let next = Arc::new(next);
        tokenizers::discover_ollama(
            &next.config,
            next.tokens.clone(),
            self.tokenizer_cache.clone(),
            &|i| !new_tokenizers.get(i).copied().unwrap_or(true),
        );
        next.backend_counting.detect_all();
        self.current.store(next);
        let generation = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
        tracing::info!(
            generation,
            added = ?d.deployments_added,
            removed = ?d.deployments_removed,
            changed = ?d.deployments_changed,
            "router configuration reloaded"
        );
        Ok(ReloadOutcome {
            generation,
            diff: d,
        })
    }
}

/// Whether two deployments are the same model on the same server, so what was learned about
/// one (calibration, tokenizer, tokenize endpoint) holds for the other.
fn same_server(a: &Deployment, b: &Deployment) -> bool {
    a.provider == b.provider
        && a.api_base == b.api_base
        && a.model == b.model
        && a.tokenizer == b.tokenizer
}

/// The next state, and which of its deployments got a fresh tokenizer (to discover).
fn next_state(old: &RouterState, config: Config) -> Result<(RouterState, Vec<bool>), StateError> {
    let by_id: Vec<Option<DeploymentIx>> = config
        .deployments
        .iter()
        .map(|d| old.config.deployments.iter().position(|o| o.id == d.id))
        .collect();
    let by_server: Vec<Option<DeploymentIx>> = config
        .deployments
        .iter()
        .zip(&by_id)
        .map(|(d, o)| {
            o.filter(|&i| {
                old.config
                    .deployments
                    .get(i)
                    .is_some_and(|o| same_server(o, d))
            })
        })
        .collect();
    let backends = Backends::new(&config).map_err(|e| StateError(e.to_string()))?;
    let cooldowns = old.cooldowns.carried(
        &by_id,
        config.routing.allowed_fails,
        config.routing.cooldown_time,
    );
    let kept = |i: usize| {
        by_server
            .get(i)
            .copied()
            .flatten()
            .and_then(|j| old.tokens.get(j).cloned())
    };
    let tokens = tokenizers::carried(&config, &kept);
    let fresh: Vec<bool> = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| kept(i).is_none_or(|k| !Arc::ptr_eq(&k, t)))
        .collect();
    let calibration = by_server
        .iter()
        .map(|o| {
            o.and_then(|j| old.calibration.get(j).cloned())
                .unwrap_or_else(|| Arc::new(Calibration::default()))
        })
        .collect();
    let metrics = old.metrics.carried(&config);
    let backend_counting = BackendCounting::carried(
        &config,
        backends.clone(),
        Some(&old.backend_counting),
        &by_server,
    );
    let state = RouterState {
        config,
        backends,
        cooldowns,
        tokens: tokens.into(),
        calibration,
        usage_sink: old.usage_sink.clone(),
        shared: old.shared.clone(),
        metrics,
        backend_counting,
        // Keyed by deployment id and by group name: shared whole.
        capacity: old.capacity.clone(),
        queues: old.queues.clone(),
    };
    Ok((state, fresh))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::collections::HashMap;
    use std::time::Instant;

    use super::*;
    use crate::RouterService;

    fn config(deployments: &[(&str, &str)]) -> Config {
        let mut text =
            String::from("router_settings: {allowed_fails: 0, cooldown_time: 600}\nmodel_list:\n");
        for (id, base) in deployments {
            text.push_str(&format!(
                "  - {{model_name: g{id}, litellm_params: {{model: \"ollama/m{id}\", api_base: \"{base}\"}}, model_info: {{id: {id}}}}}\n"
            ));
        }
        switchyard_core::config::load_str("t.yaml", &text, None, &HashMap::<String, String>::new())
            .unwrap()
    }

    fn ix(state: &RouterState, id: &str) -> usize {
        state
            .config
            .deployments
            .iter()
            .position(|d| d.id == id)
            .unwrap()
    }

    #[tokio::test]
    async fn surviving_deployments_keep_what_was_learned_and_running_requests_keep_their_state() {
        let a = "http://127.0.0.1:9";
        let svc = RouterService::new(config(&[("x", a), ("y", a)])).unwrap();
        let before = svc.state();
        let now = Instant::now();
        assert!(before.cooldowns.record_failure(ix(&before, "y"), now));
        before.metrics.attempt("y", "ok");

        // `x` goes, `y` stays on the same server (at another index), `z` comes.
        let out = svc.reload(config(&[("y", a), ("z", a)])).await.unwrap();
        assert_eq!(out.generation, 2);
        assert_eq!(out.diff.deployments_added, ["z"]);
        assert_eq!(out.diff.deployments_removed, ["x"]);
        let after = svc.state();
        let (y0, y1) = (ix(&before, "y"), ix(&after, "y"));
        assert_ne!(y0, y1);
        assert!(after.cooldowns.is_cooling(y1, now));
        assert!(!after.cooldowns.is_cooling(ix(&after, "z"), now));
        assert!(Arc::ptr_eq(&before.calibration[y0], &after.calibration[y1]));
        assert!(Arc::ptr_eq(&before.tokens[y0], &after.tokens[y1]));
        assert!(Arc::ptr_eq(&before.shared, &after.shared));
        let page = svc.render_metrics();
        assert!(
            page.contains("switchyard_attempts_total{deployment=\"y\",outcome=\"ok\"} 1"),
            "{page}"
        );
        // The snapshot a running request holds is the old config, whole.
        assert_eq!(before.config.deployments[0].id, "x");

        // The same config again: nothing is swapped.
        let same = svc.reload(config(&[("y", a), ("z", a)])).await.unwrap();
        assert!(same.unchanged());
        assert_eq!((same.generation, svc.generation()), (2, 2));
        assert!(Arc::ptr_eq(&after, &svc.state()));

        // `y` moved to another server: its cooldown follows the id, what was learned about the
        // old server does not.
        let moved = svc
            .reload(config(&[("y", "http://127.0.0.1:10"), ("z", a)]))
            .await
            .unwrap();
        assert_eq!(moved.diff.deployments_changed, ["y"]);
        let last = svc.state();
        let y2 = ix(&last, "y");
        assert!(last.cooldowns.is_cooling(y2, now));
        assert!(!Arc::ptr_eq(&after.calibration[y1], &last.calibration[y2]));
    }
}
