//! `POST /v1/explain`: a dry run of routing for a chat request body. Nothing is sent to a model;
//! the answer lists every deployment the request could reach, in try order, with the reason it
//! was kept or left out.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::openai::request::ChatCompletionRequest;

pub async fn explain(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<ChatCompletionRequest>,
) -> Result<Json<Value>, ApiError> {
    let req = body.into_router_request(String::new())?;
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
