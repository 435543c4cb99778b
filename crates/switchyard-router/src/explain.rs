//! Read-only views of routing: the model list, and the dry-run plan for a request.

use std::time::Instant;

use switchyard_core::config::WindowSource;
use switchyard_core::plan::plan_for_window;
use switchyard_health::Status;
use switchyard_proto as pb;

use crate::allow;
use crate::chat::output_reserve;
use crate::route_error;
use crate::shared::RouterAvailability;
use crate::state::{Estimator, RouterState};

/// The configured name of a chat-template family (as `template:` in the config takes it).
fn template_name(family: switchyard_core::tokens::TemplateFamily) -> &'static str {
    use switchyard_core::tokens::TemplateFamily;
    match family {
        TemplateFamily::Llama3 => "llama3",
        TemplateFamily::Mistral => "mistral",
        TemplateFamily::ChatMl => "chatml",
    }
}

pub(crate) fn list_models(state: &RouterState) -> pb::ListModelsResponse {
    let cfg = &state.config;
    let groups = cfg
        .groups
        .iter()
        .enumerate()
        .map(|(gi, g)| pb::ModelGroup {
            name: g.name.clone(),
            context_window: cfg.group_window(gi).unwrap_or(0),
            deployments: g
                .deployments
                .iter()
                .filter_map(|&d| cfg.deployments.get(d))
                .map(|d| (d, state.shared.view.get(&d.id)))
                .map(|(d, h)| pb::DeploymentInfo {
                    health: match h.status {
                        Status::Up => "up",
                        Status::Down => "down",
                        Status::Unknown => "unknown",
                    }
                    .to_string(),
                    loaded: h.loaded,
                    reported_context: h.loaded_context,
                    id: d.id.clone(),
                    provider: d.provider.as_str().to_string(),
                    backend_model: d.model.clone(),
                    mode: d.mode.as_str().to_string(),
                    template: template_name(d.template).to_string(),
                    discovered_from: d.discovered.as_ref().map(|x| x.from.clone()),
                    family: d.discovered.as_ref().and_then(|x| x.family.clone()),
                    capabilities: d
                        .discovered
                        .as_ref()
                        .map(|x| x.capabilities.clone())
                        .unwrap_or_default(),
                    context_window: d.context_window.unwrap_or(0),
                    window_source: match &d.window_source {
                        WindowSource::Config(k) | WindowSource::Discovered(k) => k.clone(),
                        WindowSource::Unknown => "unknown".into(),
                    },
                })
                .collect(),
            fallbacks: g
                .fallbacks
                .iter()
                .filter_map(|&f| cfg.groups.get(f).map(|x| x.name.clone()))
                .collect(),
        })
        .collect();
    pb::ListModelsResponse {
        groups,
        state_degraded: state.shared.is_degraded(),
    }
}

pub(crate) fn explain(state: &RouterState, req: &pb::ChatRequest) -> pb::ExplainResponse {
    let cfg = &state.config;
    let mut out = pb::ExplainResponse {
        group: req.model.clone(),
        ..Default::default()
    };
    let Some(group) = cfg.group(&req.model) else {
        out.error = Some(route_error::unknown_group(cfg, &req.model));
        return out;
    };
    if !allow::allows(&req.allowed_groups, &req.model) {
        out.error = Some(allow::not_allowed(&req.model, &req.allowed_groups));
        return out;
    }
    let (_, reserve) = output_reserve(state, req);
    out.output_reserve = reserve;
    let mut estimator = Estimator::new(state, req).always_exact();
    let mut tokens: Vec<(usize, u32, u32)> = Vec::new();
    let result = plan_for_window(
        cfg,
        group,
        &mut |d| {
            let e = estimator.estimate(d);
            tokens.push((d, e.total(), e.predicted()));
            e.total()
        },
        reserve,
        req.min_context,
        &RouterAvailability(state),
        Instant::now(),
    );
    let verdict = |d: usize, verdict: &str, reason: String, rank: u32| {
        let dep = cfg.deployments.get(d);
        // A discovered deployment says where it came from and how its window was read.
        let reason = match dep.map(|x| (x.discovered.as_ref(), &x.window_source)) {
            Some((Some(disc), WindowSource::Discovered(w))) => {
                format!("{reason}; discovered by {}, window from {w}", disc.from)
            }
            Some((Some(disc), _)) => format!("{reason}; discovered by {}", disc.from),
            _ => reason,
        };
        pb::CandidateVerdict {
            deployment: dep.map(|x| x.id.clone()).unwrap_or_default(),
            group: dep
                .and_then(|x| cfg.groups.get(x.group))
                .map(|g| g.name.clone())
                .unwrap_or_default(),
            prompt_tokens: tokens
                .iter()
                .find(|(x, _, _)| *x == d)
                .map(|(_, t, _)| *t)
                .unwrap_or(0),
            predicted_tokens: tokens
                .iter()
                .find(|(x, _, _)| *x == d)
                .map(|(_, _, p)| *p)
                .unwrap_or(0),
            context_window: dep.and_then(|x| x.context_window).unwrap_or(0),
            verdict: verdict.to_string(),
            reason,
            rank,
        }
    };
    match result {
        Ok(mut p) => {
            // Cut like a chat request is, so the plan shown is the one a request would get.
            let cut = allow::cut_plan(cfg, &req.allowed_groups, &mut p);
            if p.candidates.is_empty() {
                out.error = Some(allow::nothing_allowed(&req.model, &cut.groups));
            }
            for (i, c) in p.candidates.iter().enumerate() {
                let reason = match c.window {
                    Some(w) => format!("fits: {} + {} output <= {}", c.prompt_tokens, reserve, w),
                    None => "window unknown: tried without a fit check".to_string(),
                };
                let reason = match (req.min_context.filter(|&m| m > 0), c.window) {
                    (Some(m), Some(_)) => {
                        format!("{reason}; window >= the {m} asked for (num_ctx)")
                    }
                    (Some(m), None) => format!("{reason} or a check of num_ctx {m}"),
                    (None, _) => reason,
                };
                let reason = if c.cooling {
                    format!("{reason} (cooling down, no other choice)")
                } else {
                    reason
                };
                let reason = match crate::capacity::describe(state, c.deployment) {
                    Some(cap) => format!("{reason}; {cap}"),
                    None => reason,
                };
                out.verdicts
                    .push(verdict(c.deployment, "candidate", reason, i as u32 + 1));
            }
            for (d, why) in &p.excluded {
                out.verdicts
                    .push(verdict(*d, "excluded", why.describe(), 0));
            }
            for d in cut.deployments {
                let reason = "not in this API key's allow-list".to_string();
                out.verdicts.push(verdict(d, "excluded", reason, 0));
            }
        }
        Err(e) => out.error = Some(route_error::from_plan(&e)),
    }
    out
}
