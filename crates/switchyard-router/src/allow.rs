//! A virtual key's model allow-list inside the router: the plan is cut to the groups the key may
//! use, so a fallback never leaves them, and an error says when the cut is why a request failed.

use switchyard_core::plan::Candidate;
use switchyard_proto as pb;

use crate::state::RouterState;

/// Removes candidates outside `req.allowed_groups` (empty = all allowed); returns the names of
/// the groups that lost candidates, in plan order.
pub(crate) fn cut(
    state: &RouterState,
    req: &pb::ChatRequest,
    candidates: &mut Vec<Candidate>,
) -> Vec<String> {
    if req.allowed_groups.is_empty() {
        return Vec::new();
    }
    let mut cut: Vec<String> = Vec::new();
    candidates.retain(|c| {
        let group = state
            .config
            .deployments
            .get(c.deployment)
            .and_then(|d| state.config.groups.get(d.group))
            .map_or("", |g| g.name.as_str());
        let allowed = req.allowed_groups.iter().any(|a| a == group);
        if !allowed && !cut.iter().any(|g| g == group) {
            cut.push(group.to_owned());
        }
        allowed
    });
    cut
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
