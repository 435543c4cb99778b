//! Health endpoints: liveness says the process answers; readiness says it can route (the router
//! service answers).

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::AppState;

pub async fn liveness() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

pub async fn readiness(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let probe = tokio::time::timeout(Duration::from_secs(2), state.router.list_models()).await;
    match probe {
        Ok(Ok(r)) => {
            let deployments = r.groups.iter().flat_map(|g| &g.deployments);
            let (mut total, mut up, mut down) = (0usize, 0usize, 0usize);
            for d in deployments {
                total += 1;
                match d.health.as_str() {
                    "up" => up += 1,
                    "down" => down += 1,
                    _ => {}
                }
            }
            // Degraded still serves: routing falls back to this replica's own state, and with
            // every deployment down requests get a prompt 503 from the router. Readiness stays
            // 200 either way: every replica shares the backends, so taking replicas out of
            // service would turn those OpenAI-shaped answers into refused connections.
            let status = if r.state_degraded || (total > 0 && down == total) {
                "degraded"
            } else {
                "ready"
            };
            let state = if r.state_degraded {
                "unreachable (using local state)"
            } else {
                "ok"
            };
            (
                StatusCode::OK,
                Json(json!({
                    "status": status, "router": "ok", "shared_state": state,
                    "groups": r.groups.len(),
                    "deployments": {"total": total, "up": up, "down": down, "unknown": total - up - down},
                })),
            )
        }
        Ok(Err(s)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "not_ready", "router": s.message()})),
        ),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "not_ready", "router": "timed out"})),
        ),
    }
}

/// `GET /metrics`: the Prometheus exposition (OpenMetrics text).
pub async fn metrics(State(state): State<AppState>) -> axum::response::Response {
    use axum::response::IntoResponse;
    let own = state.http_metrics.render();
    let page = match &state.metrics {
        Some(render) => crate::join_pages(&[render(), own]),
        None => own,
    };
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        page,
    )
        .into_response()
}
