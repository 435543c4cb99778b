//! A virtual key's model allow-list inside the router: the plan is cut to the groups the key may
//! use, so a fallback never leaves them, and an error says when the cut is why a request failed.
//!
//! The cut comes after planning, and planning passes over cooling or down deployments when
//! others fit. If the cut removes those others, the allowed deployments that were passed over
//! become the candidates again (tried anyway, as when nothing else fits): a group the key may
//! use never answers 403 because its own deployment is cooling down.

use switchyard_core::config::{Config, DeploymentIx};
use switchyard_core::plan::{Exclusion, Plan};
use switchyard_proto as pb;

use crate::state::RouterState;

/// What the allow-list removed from a plan.
#[derive(Debug, Default)]
pub(crate) struct Cut {
    /// Groups that lost candidates, in plan order (what a failed request's error names).
    pub groups: Vec<String>,
    /// Every deployment left out by the cut, candidate or already excluded, in plan order.
    pub deployments: Vec<DeploymentIx>,
}

fn group_name(cfg: &Config, d: DeploymentIx) -> &str {
    cfg.deployments
        .get(d)
        .and_then(|dep| cfg.groups.get(dep.group))
        .map_or("", |g| g.name.as_str())
}

/// Whether `allowed` (empty = all) lets a request reach `group`.
pub(crate) fn allows(allowed: &[String], group: &str) -> bool {
    allowed.is_empty() || allowed.iter().any(|a| a == group)
}

/// Cuts `plan` to `allowed` (empty = all allowed); see the module docs.
pub(crate) fn cut_plan(cfg: &Config, allowed: &[String], plan: &mut Plan) -> Cut {
    let mut cut = Cut::default();
    if allowed.is_empty() {
        return cut;
    }
    plan.candidates.retain(|c| {
        let group = group_name(cfg, c.deployment);
        let ok = allows(allowed, group);
        if !ok {
            if !cut.groups.iter().any(|g| g == group) {
                cut.groups.push(group.to_owned());
            }
            cut.deployments.push(c.deployment);
        }
        ok
    });
    plan.excluded.retain(|(d, _)| {
        let ok = allows(allowed, group_name(cfg, *d));
        if !ok {
            cut.deployments.push(*d);
        }
        ok
    });
    plan.last_resort
        .retain(|c| allows(allowed, group_name(cfg, c.deployment)));
    if plan.candidates.is_empty() && !plan.last_resort.is_empty() {
        let resort = std::mem::take(&mut plan.last_resort);
        plan.excluded.retain(|(d, why)| {
            !(matches!(why, Exclusion::CoolingDown | Exclusion::Down)
                && resort.iter().any(|c| c.deployment == *d))
        });
        plan.candidates = resort;
    }
    cut
}

/// Cuts the plan of `req` to its allowed groups; returns the names of the groups that lost
/// candidates, in plan order.
pub(crate) fn cut(state: &RouterState, req: &pb::ChatRequest, plan: &mut Plan) -> Vec<String> {
    cut_plan(&state.config, &req.allowed_groups, plan).groups
}

/// The error when the caller asks for a group outside its allow-list.
pub(crate) fn not_allowed(group: &str, allowed: &[String]) -> pb::RouteError {
    pb::RouteError {
        http_status: 403,
        r#type: "permission_error".into(),
        code: "model_not_allowed".into(),
        message: format!(
            "this API key may not use the model `{group}`; it may use: {}",
            allowed.join(", ")
        ),
        param: Some("model".into()),
        ..Default::default()
    }
}

/// The error when the allow-list leaves no candidate at all.
pub(crate) fn nothing_allowed(group: &str, cut: &[String]) -> pb::RouteError {
    pb::RouteError {
        http_status: 403,
        r#type: "permission_error".into(),
        code: "model_not_allowed".into(),
        message: format!(
            "this API key may not use the model groups that can serve this request to `{group}` ({}); its allow-list cut them",
            cut.join(", ")
        ),
        param: Some("model".into()),
        ..Default::default()
    }
}

/// Adds to a final error that fallbacks were cut by the key's allow-list.
pub(crate) fn explain_cut(mut e: pb::RouteError, cut: &[String]) -> pb::RouteError {
    if !cut.is_empty() {
        e.message = format!(
            "{} (fallback to {} was not tried: this API key's allow-list does not include it)",
            e.message,
            cut.join(", ")
        );
    }
    e
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::HashMap;
    use std::time::{Duration, Instant};

    use switchyard_core::cooldown::Cooldowns;
    use switchyard_core::plan::plan;

    use super::*;

    fn seed() -> Config {
        let text = include_str!("../../../fixtures/seed-config.yaml");
        switchyard_core::config::load_str("seed", text, None, &HashMap::<String, String>::new())
            .unwrap()
    }

    /// The only deployment of the allowed group cools down: the plan passes over it for the
    /// fallbacks, the cut removes those, and it is tried anyway (it was a 403 with no attempt).
    #[test]
    fn a_cooling_deployment_of_the_only_allowed_group_is_tried_anyway() {
        let c = seed();
        let cd = Cooldowns::new(3, 0, Duration::from_secs(60));
        cd.record_failure(0, Instant::now());
        let g = c.group("local-small").unwrap();
        let mut p = plan(&c, g, &mut |_| 100, 512, &cd, Instant::now()).unwrap();
        let allowed = vec!["local-small".to_string()];
        let cut = cut_plan(&c, &allowed, &mut p);
        assert_eq!(cut.groups, ["local-medium", "local-large"]);
        assert_eq!(p.candidates.len(), 1);
        assert_eq!(p.candidates[0].deployment, 0);
        assert!(p.candidates[0].cooling);
        assert!(p.excluded.is_empty(), "{:?}", p.excluded);
        assert_eq!(cut.deployments, [1, 2]);
    }

    #[test]
    fn without_an_allow_list_nothing_is_cut() {
        let c = seed();
        let cd = Cooldowns::new(3, 0, Duration::from_secs(60));
        cd.record_failure(0, Instant::now());
        let g = c.group("local-small").unwrap();
        let mut p = plan(&c, g, &mut |_| 100, 512, &cd, Instant::now()).unwrap();
        let cut = cut_plan(&c, &[], &mut p);
        assert!(cut.groups.is_empty() && cut.deployments.is_empty());
        assert_eq!(p.candidates.len(), 2);
        assert_eq!(p.excluded, vec![(0, Exclusion::CoolingDown)]);
    }
}
