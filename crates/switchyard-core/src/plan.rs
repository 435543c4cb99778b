//! Candidate planning: which deployments may serve a request, and in what order.
//!
//! The plan is made before anything is sent. Candidates are the requested group's deployments,
//! then those of each group in its fallback chain, then its context-window fallbacks. A deployment
//! stays only if the predicted prompt plus the output reserve fits its window — so a long prompt
//! goes straight to a large model with no failed attempt first — and it is not cooling down.
//! Every exclusion keeps its reason, which is what `Explain` and the response headers report.
//!
//! A request may also ask for a window of at least some size (Ollama's `options.num_ctx`, the
//! router's `min_context`): a deployment whose known window is smaller is then not a candidate
//! at all, for its own reason, rather than an attempt that fails.

use std::time::Instant;

use crate::config::{Config, DeploymentIx, GroupIx};
use crate::cooldown::Cooldowns;

/// What the planner needs to know about deployments beyond the config: cooldowns, health, and
/// windows learned from the backends.
pub trait Availability {
    /// Skipped after repeated failures (see [`Cooldowns`]).
    fn is_cooling(&self, d: DeploymentIx, now: Instant) -> bool;
    /// Known to be down (the health prober or a passive report said so).
    fn is_down(&self, _d: DeploymentIx) -> bool {
        false
    }
    /// The context window to plan with: the configured one, else one the backend reported.
    fn window(&self, _d: DeploymentIx, configured: Option<u32>) -> Option<u32> {
        configured
    }
}

impl Availability for Cooldowns {
    fn is_cooling(&self, d: DeploymentIx, now: Instant) -> bool {
        Cooldowns::is_cooling(self, d, now)
    }
}

/// A deployment the router will try, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub deployment: DeploymentIx,
    /// Predicted prompt tokens for this deployment's tokenizer and template.
    pub prompt_tokens: u32,
    /// `None` when the window is not known yet (the candidate is kept, unfiltered).
    pub window: Option<u32>,
    /// Kept although cooling down, because every fitting candidate was.
    pub cooling: bool,
}

/// Why a deployment was left out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Exclusion {
    TooSmall {
        needed: u32,
        window: u32,
    },
    /// The window is smaller than the one the request asked for (`min_context`).
    WindowBelowRequested {
        requested: u32,
        window: u32,
    },
    CoolingDown,
    Down,
}

impl Exclusion {
    pub fn describe(&self) -> String {
        match self {
            Exclusion::TooSmall { needed, window } => {
                format!("needs {needed} tokens, window {window}")
            }
            Exclusion::WindowBelowRequested { requested, window } => format!(
                "{WINDOW_BELOW_REQUESTED}: window {window} is smaller than the {requested} tokens \
                 the request asked for (num_ctx)"
            ),
            Exclusion::CoolingDown => "cooling down after repeated failures".to_string(),
            Exclusion::Down => "down (health probe or failed requests)".to_string(),
        }
    }
}

/// How [`Exclusion::WindowBelowRequested`] is named in `Explain` reasons.
pub const WINDOW_BELOW_REQUESTED: &str = "window_below_requested";

#[derive(Clone, Debug, Default)]
pub struct Plan {
    pub candidates: Vec<Candidate>,
    pub excluded: Vec<(DeploymentIx, Exclusion)>,
    /// The deployments excluded as cooling down or down, as the candidates they would be: the
    /// last resort if a later cut (a key's allow-list) leaves no candidate.
    pub last_resort: Vec<Candidate>,
    /// Output tokens reserved in the fit test.
    pub output_reserve: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("unknown model \"{0}\"")]
    UnknownGroup(String),
    #[error(
        "the request needs {needed} tokens ({prompt} prompt + {reserve} output) but the largest context window available to this model is {largest}"
    )]
    NoFit {
        prompt: u32,
        reserve: u32,
        needed: u32,
        largest: u32,
    },
    #[error(
        "the request asks for a context window of at least {requested} tokens but the largest available to this model is {largest}"
    )]
    WindowBelowRequested { requested: u32, largest: u32 },
}

/// Orders the groups a request may reach: the group, its fallbacks, its context fallbacks.
pub fn reachable_groups(config: &Config, group: GroupIx) -> Vec<GroupIx> {
    let mut out = vec![group];
    if let Some(g) = config.groups.get(group) {
        for &f in g.fallbacks.iter().chain(g.context_fallbacks.iter()) {
            if !out.contains(&f) {
                out.push(f);
            }
        }
    }
    out
}

/// Plans a request to `group`.
///
/// `prompt_tokens(d)` predicts the prompt's size on deployment `d` (tokenizers differ per model);
/// `output_reserve` is the request's `max_tokens` or the configured reserve.
pub fn plan(
    config: &Config,
    group: GroupIx,
    prompt_tokens: &mut dyn FnMut(DeploymentIx) -> u32,
    output_reserve: u32,
    availability: &dyn Availability,
    now: Instant,
) -> Result<Plan, PlanError> {
    plan_for_window(
        config,
        group,
        prompt_tokens,
        output_reserve,
        None,
        availability,
        now,
    )
}

/// [`plan`] for a request that asks for a window of at least `min_window` tokens: deployments
/// whose known window is smaller are excluded before their prompt is even counted (a window not
/// known yet is kept, as in the fit test). When every deployment is excluded so, the error is
/// [`PlanError::WindowBelowRequested`]. `None` or `Some(0)` asks for nothing.
pub fn plan_for_window(
    config: &Config,
    group: GroupIx,
    prompt_tokens: &mut dyn FnMut(DeploymentIx) -> u32,
    output_reserve: u32,
    min_window: Option<u32>,
    availability: &dyn Availability,
    now: Instant,
) -> Result<Plan, PlanError> {
    let min_window = min_window.filter(|&m| m > 0);
    // The largest window seen, and whether any deployment had a window large enough (or
    // unknown), for the error when none had.
    let mut largest_window = 0u32;
    let mut any_large_enough = false;
    let mut plan = Plan {
        output_reserve,
        ..Plan::default()
    };
    // Deployments that fit but are cooling down or down: the last resort.
    let mut cooling: Vec<(Candidate, Exclusion)> = Vec::new();
    let mut largest: Option<(u32, u32)> = None; // (window, prompt tokens on it)
    let context_only = config
        .groups
        .get(group)
        .map(|g| g.context_fallbacks.as_slice())
        .unwrap_or_default();
    for g in reachable_groups(config, group) {
        let in_chain = g == group
            || config
                .groups
                .get(group)
                .is_some_and(|gg| gg.fallbacks.contains(&g));
        let Some(grp) = config.groups.get(g) else {
            continue;
        };
        for &d in &grp.deployments {
            if plan.candidates.iter().any(|c| c.deployment == d)
                || cooling.iter().any(|(c, _)| c.deployment == d)
            {
                continue;
            }
            let configured = config.deployments.get(d).and_then(|dep| dep.context_window);
            let window = availability.window(d, configured);
            if let Some(w) = window {
                largest_window = largest_window.max(w);
            }
            if let (Some(requested), Some(w)) = (min_window, window)
                && w < requested
            {
                plan.excluded.push((
                    d,
                    Exclusion::WindowBelowRequested {
                        requested,
                        window: w,
                    },
                ));
                continue;
            }
            any_large_enough = true;
            let prompt = prompt_tokens(d);
            let needed = prompt.saturating_add(output_reserve);
            if let Some(w) = window {
                if largest.is_none_or(|(lw, _)| w > lw) {
                    largest = Some((w, prompt));
                }
                if needed > w {
                    plan.excluded
                        .push((d, Exclusion::TooSmall { needed, window: w }));
                    continue;
                }
            }
            if !in_chain && context_only.contains(&g) && window.is_none() {
                // A context-window fallback is only useful if it is known to be larger.
                continue;
            }
            let candidate = Candidate {
                deployment: d,
                prompt_tokens: prompt,
                window,
                cooling: false,
            };
            if availability.is_down(d) {
                cooling.push((candidate, Exclusion::Down));
            } else if availability.is_cooling(d, now) {
                cooling.push((candidate, Exclusion::CoolingDown));
            } else {
                plan.candidates.push(candidate);
            }
        }
    }
    if plan.candidates.is_empty() && !cooling.is_empty() {
        // Everything that fits is cooling down or down: try them anyway rather than refuse.
        plan.candidates = cooling
            .into_iter()
            .map(|(c, _)| Candidate { cooling: true, ..c })
            .collect();
    } else {
        for (c, why) in cooling {
            plan.excluded.push((c.deployment, why));
            plan.last_resort.push(Candidate { cooling: true, ..c });
        }
    }
    if plan.candidates.is_empty() {
        if let Some(requested) = min_window
            && !any_large_enough
        {
            return Err(PlanError::WindowBelowRequested {
                requested,
                largest: largest_window,
            });
        }
        let (largest, prompt) = largest.unwrap_or((0, 0));
        return Err(PlanError::NoFit {
            prompt,
            reserve: output_reserve,
            needed: prompt.saturating_add(output_reserve),
            largest,
        });
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::collections::HashMap;
    use std::time::Duration;

    fn seed() -> Config {
        let text = include_str!("../../../fixtures/seed-config.yaml");
        crate::config::load_str("seed", text, None, &HashMap::<String, String>::new()).unwrap()
    }

    fn run(c: &Config, tokens: u32, reserve: u32, cd: &Cooldowns) -> Result<Plan, PlanError> {
        let g = c.group("local-small").unwrap();
        plan(c, g, &mut |_| tokens, reserve, cd, Instant::now())
    }

    fn models(c: &Config, p: &Plan) -> Vec<String> {
        p.candidates
            .iter()
            .map(|x| c.deployments[x.deployment].model.clone())
            .collect()
    }

    #[test]
    fn fit_filter_follows_the_chain() {
        let c = seed();
        let cd = Cooldowns::new(3, 3, Duration::from_secs(5));
        let p = run(&c, 100, 512, &cd).unwrap();
        assert_eq!(models(&c, &p), ["llama3.2:1b", "llama3.1:8b", "mistral:7b"]);
        let p = run(&c, 1600, 512, &cd).unwrap();
        assert_eq!(models(&c, &p), ["llama3.1:8b", "mistral:7b"]);
        assert_eq!(
            p.excluded,
            vec![(
                0,
                Exclusion::TooSmall {
                    needed: 2112,
                    window: 2048
                }
            )]
        );
        let p = run(&c, 20_000, 512, &cd).unwrap();
        assert_eq!(models(&c, &p), ["mistral:7b"]);
        let e = run(&c, 40_000, 512, &cd).unwrap_err();
        assert_eq!(
            e,
            PlanError::NoFit {
                prompt: 40_000,
                reserve: 512,
                needed: 40_512,
                largest: 32_768
            }
        );
        // The boundary is inclusive: prompt + reserve == window fits.
        let p = run(&c, 2048 - 512, 512, &cd).unwrap();
        assert_eq!(models(&c, &p)[0], "llama3.2:1b");
        let p = run(&c, 2048 - 511, 512, &cd).unwrap();
        assert_eq!(models(&c, &p)[0], "llama3.1:8b");
    }

    fn run_for(c: &Config, tokens: u32, min: Option<u32>) -> Result<Plan, PlanError> {
        let cd = Cooldowns::new(3, 3, Duration::from_secs(5));
        let g = c.group("local-small").unwrap();
        plan_for_window(c, g, &mut |_| tokens, 512, min, &cd, Instant::now())
    }

    #[test]
    fn a_requested_window_leaves_out_smaller_ones() {
        let c = seed();
        // Asking for no more than the small window changes nothing.
        let p = run_for(&c, 100, Some(2048)).unwrap();
        assert_eq!(models(&c, &p), ["llama3.2:1b", "llama3.1:8b", "mistral:7b"]);
        assert!(p.excluded.is_empty());
        assert_eq!(run_for(&c, 100, Some(0)).unwrap().candidates.len(), 3);
        // One token more: the small model is not a candidate, for its own reason.
        let p = run_for(&c, 100, Some(2049)).unwrap();
        assert_eq!(models(&c, &p), ["llama3.1:8b", "mistral:7b"]);
        assert_eq!(
            p.excluded,
            vec![(
                0,
                Exclusion::WindowBelowRequested {
                    requested: 2049,
                    window: 2048
                }
            )]
        );
        assert!(
            p.excluded[0]
                .1
                .describe()
                .starts_with(WINDOW_BELOW_REQUESTED)
        );
        let p = run_for(&c, 100, Some(16_384)).unwrap();
        assert_eq!(models(&c, &p), ["mistral:7b"]);
        // The fit test still applies to the windows that are large enough.
        let e = run_for(&c, 40_000, Some(16_384)).unwrap_err();
        assert!(
            matches!(
                e,
                PlanError::NoFit {
                    largest: 32_768,
                    ..
                }
            ),
            "{e:?}"
        );
        // Larger than every window: its own error, naming the largest.
        let e = run_for(&c, 100, Some(65_536)).unwrap_err();
        assert_eq!(
            e,
            PlanError::WindowBelowRequested {
                requested: 65_536,
                largest: 32_768
            }
        );
    }

    #[test]
    fn cooling_deployments_go_last_resort() {
        let c = seed();
        let cd = Cooldowns::new(3, 0, Duration::from_secs(60));
        cd.record_failure(0, Instant::now());
        let p = run(&c, 100, 512, &cd).unwrap();
        assert_eq!(models(&c, &p), ["llama3.1:8b", "mistral:7b"]);
        assert_eq!(p.excluded, vec![(0, Exclusion::CoolingDown)]);
        // Kept whole for a later cut (an allow-list) that leaves nothing else.
        assert_eq!(p.last_resort.len(), 1);
        assert_eq!(p.last_resort[0].deployment, 0);
        assert!(p.last_resort[0].cooling);
        assert_eq!(p.last_resort[0].prompt_tokens, 100);
        cd.record_failure(1, Instant::now());
        cd.record_failure(2, Instant::now());
        let p = run(&c, 100, 512, &cd).unwrap();
        assert!(p.candidates.iter().all(|x| x.cooling));
        assert_eq!(p.candidates.len(), 3);
    }
}
