//! `GET /v1/models`: the model groups clients may ask for, with their context windows.

use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};
use switchyard_proto as pb;

use crate::AppState;
use crate::error::ApiError;

fn model_json(g: &pb::ModelGroup) -> Value {
    json!({
        "id": g.name,
        "object": "model",
        "created": 0,
        "owned_by": "switchyard",
        "context_window": g.context_window,
        "fallbacks": g.fallbacks,
        "deployments": g.deployments.iter().map(|d| json!({
            "id": d.id,
            "provider": d.provider,
            "model": d.backend_model,
            "context_window": d.context_window,
            "context_window_source": d.window_source,
            "health": d.health,
            "loaded": d.loaded,
            "reported_context": d.reported_context,
        })).collect::<Vec<_>>(),
    })
}

async fn groups(state: &AppState) -> Result<Vec<pb::ModelGroup>, ApiError> {
    let resp = state
        .router
        .list_models()
        .await
        .map_err(|s| ApiError::router_unavailable(s.message()))?;
    Ok(resp.groups)
}

pub async fn list(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let data: Vec<Value> = groups(&state).await?.iter().map(model_json).collect();
    Ok(Json(json!({"object": "list", "data": data})))
}

pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    groups(&state)
        .await?
        .iter()
        .find(|g| g.name == id)
        .map(|g| Json(model_json(g)))
        .ok_or_else(|| ApiError::not_found(format!("The model `{id}` does not exist")))
}
