//! `POST /v1/explain`: a dry run of routing for a chat request body. Nothing is sent to a model;
//! the answer lists every deployment the request could reach, in try order, with the reason it
//! was kept or left out.
//!
//! A virtual key sees what its requests would get: 403 for a group outside its allow-list, and
//! the router cuts the plan to its groups (fallbacks elsewhere show as excluded, with why).

use axum::extract::State;
use axum::{Extension, Json};
use serde_json::{Value, json};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::keys::{Caller, check_allowed};
use crate::openai::request::ChatCompletionRequest;

pub async fn explain(
    State(state): State<AppState>,
    caller: Option<Extension<Caller>>,
    ApiJson(body): ApiJson<ChatCompletionRequest>,
) -> Result<Json<Value>, ApiError> {
    let caller = caller.map_or(Caller::Open, |c| c.0);
    let mut req = body.into_router_request(String::new())?;
    check_allowed(&caller, &req.model)?;
    req.api_key_id = caller.api_key_id().to_owned();
    req.allowed_groups = caller.allowed_groups().to_vec();
    let plan = state
        .router
        .explain(req)
        .await
        .map_err(|s| ApiError::router_unavailable(s.message()))?;
    let verdicts: Vec<Value> = plan
        .verdicts
        .iter()
        .map(|v| {
            json!({
                "deployment": v.deployment,
                "group": v.group,
                "verdict": v.verdict,
                "rank": if v.rank == 0 { Value::Null } else { v.rank.into() },
                "prompt_tokens": v.prompt_tokens,
                "predicted_tokens": v.predicted_tokens,
                "context_window": v.context_window,
                "reason": v.reason,
            })
        })
        .collect();
    let error = plan
        .error
        .as_ref()
        .map(|e| ApiError::from_route(e).body()["error"].clone());
    Ok(Json(json!({
        "model": plan.group,
        "output_reserve": plan.output_reserve,
        "deployments": verdicts,
        "error": error,
    })))
}
