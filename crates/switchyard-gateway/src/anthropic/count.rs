//! `POST /v1/messages/count_tokens`: the prompt's size as the deployment that would serve it
//! counts it, from the router's dry run (Explain) — exact where the deployment has a tokenizer
//! (`tokenizer:` in the configuration), the router's calibrated estimate elsewhere. Nothing is
//! sent to a model.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};
use switchyard_proto as pb;

use super::request::MessagesRequest;
use crate::AppState;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::keys::{Caller, check_allowed};

pub async fn count_tokens(
    State(state): State<AppState>,
    caller: Option<axum::Extension<Caller>>,
    ApiJson(body): ApiJson<MessagesRequest>,
) -> Result<Json<Value>, ApiError> {
    let caller = caller.map_or(Caller::Open, |c| c.0);
    let mut req = body.into_count_request()?;
    check_allowed(&caller, &req.model)?;
    req.api_key_id = caller.api_key_id().to_owned();
    req.allowed_groups = caller.allowed_groups().to_vec();
    let plan = state
        .router
        .explain(req)
        .await
        .map_err(|s| ApiError::router_unavailable(s.message()))?;
    let tokens = input_tokens(&plan)?;
    Ok(Json(json!({ "input_tokens": tokens })))
}

/// The prompt size the backend is expected to report, for the first deployment in try order
/// (or, when none can take it now, the first one counted); the plan's error when none was.
fn input_tokens(plan: &pb::ExplainResponse) -> Result<u32, ApiError> {
    let first = plan
        .verdicts
        .iter()
        .filter(|v| v.rank > 0)
        .min_by_key(|v| v.rank)
        .or_else(|| plan.verdicts.iter().find(|v| v.predicted_tokens > 0));
    match (first, &plan.error) {
        (Some(v), _) => Ok(v.predicted_tokens),
        (None, Some(e)) => Err(ApiError::from_route(e)),
        (None, None) => Err(ApiError::invalid(
            format!("model {}: no deployment can count this prompt", plan.group),
            Some("model"),
        )),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn verdict(rank: u32, predicted: u32) -> pb::CandidateVerdict {
        pb::CandidateVerdict {
            rank,
            predicted_tokens: predicted,
            prompt_tokens: predicted + 16,
            ..Default::default()
        }
    }

    #[test]
    fn counts_with_the_first_candidate() {
        let plan = pb::ExplainResponse {
            verdicts: vec![verdict(2, 50), verdict(1, 40), verdict(0, 30)],
            ..Default::default()
        };
        assert_eq!(input_tokens(&plan).unwrap(), 40);
        let excluded_only = pb::ExplainResponse {
            verdicts: vec![verdict(0, 30)],
            ..Default::default()
        };
        assert_eq!(input_tokens(&excluded_only).unwrap(), 30);
        let failed = pb::ExplainResponse {
            error: Some(pb::RouteError {
                http_status: 404,
                message: "no such model".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(input_tokens(&failed).unwrap_err().status, 404);
    }
}
