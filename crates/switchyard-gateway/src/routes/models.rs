//! `GET /v1/models`: the model groups clients may ask for, with their context windows.
//!
//! A virtual key sees only the groups its allow-list names, and only OpenAI's model fields:
//! deployments, backends and their health are the operator's business.

use axum::extract::State;
use axum::{Extension, Json};
use serde_json::{Value, json};
use switchyard_proto as pb;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::ApiPath;
use crate::keys::Caller;

fn model_json(g: &pb::ModelGroup) -> Value {
    let mut v = json!({
        "id": g.name,
        "object": "model",
        "created": 0,
        "owned_by": "switchyard",
        "context_window": g.context_window,
        "fallbacks": g.fallbacks,
        "deployments": g.deployments.iter().map(deployment_json).collect::<Vec<_>>(),
    });
    // A discovered group says where it came from (its first discovered deployment's entry).
    if let Some(from) = g
        .deployments
        .iter()
        .find_map(|d| d.discovered_from.as_ref())
    {
        v["discovered_from"] = json!(from);
    }
    v
}

fn deployment_json(d: &pb::DeploymentInfo) -> Value {
    let mut v = json!({
        "id": d.id,
        "provider": d.provider,
        "model": d.backend_model,
        "context_window": d.context_window,
        "context_window_source": d.window_source,
        "health": d.health,
        "loaded": d.loaded,
        "reported_context": d.reported_context,
    });
    if let Some(from) = &d.discovered_from {
        v["discovered_from"] = json!(from);
        v["family"] = json!(d.family);
        v["capabilities"] = json!(d.capabilities);
    }
    v
}

/// What a virtual key is shown of a group: OpenAI's model object.
fn model_json_for_key(g: &pb::ModelGroup) -> Value {
    json!({
        "id": g.name,
        "object": "model",
        "created": 0,
        "owned_by": "switchyard",
    })
}

fn render(caller: &Caller, g: &pb::ModelGroup) -> Value {
    match caller {
        Caller::Key(_) => model_json_for_key(g),
        _ => model_json(g),
    }
}

/// The groups `caller` may use.
pub(crate) async fn groups(
    state: &AppState,
    caller: &Caller,
) -> Result<Vec<pb::ModelGroup>, ApiError> {
    let resp = state
        .router
        .list_models()
        .await
        .map_err(|s| ApiError::router_unavailable(s.message()))?;
    let allowed = caller.allowed_groups();
    let mut groups = resp.groups;
    if !allowed.is_empty() {
        groups.retain(|g| allowed.contains(&g.name));
    }
    Ok(groups)
}

fn caller_of(caller: Option<Extension<Caller>>) -> Caller {
    caller.map_or(Caller::Open, |c| c.0)
}

pub async fn list(
    State(state): State<AppState>,
    caller: Option<Extension<Caller>>,
) -> Result<Json<Value>, ApiError> {
    let caller = caller_of(caller);
    let data: Vec<Value> = groups(&state, &caller)
        .await?
        .iter()
        .map(|g| render(&caller, g))
        .collect();
    Ok(Json(json!({"object": "list", "data": data})))
}

pub async fn get(
    State(state): State<AppState>,
    caller: Option<Extension<Caller>>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let caller = caller_of(caller);
    groups(&state, &caller)
        .await?
        .iter()
        .find(|g| g.name == id)
        .map(|g| Json(render(&caller, g)))
        .ok_or_else(|| ApiError::not_found(format!("The model `{id}` does not exist")))
}
