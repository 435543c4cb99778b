//! Assembles the HTTP router of one simulator from its flavor's endpoints and the control API.

use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::config::Flavor;
use crate::error::llama_type;
use crate::state::SimState;

pub(crate) fn router(state: Arc<SimState>) -> Router {
    let flavor = state.config.flavor;
    let api = match flavor {
        Flavor::Ollama => crate::ollama::routes(),
        Flavor::LlamaCpp => crate::llamacpp::routes(),
    };
    api.merge(crate::control::routes())
        .fallback(move || async move { not_found(flavor) })
        .with_state(state)
}

fn not_found(flavor: Flavor) -> Response {
    match flavor {
        // Go's net/http default.
        Flavor::Ollama => (StatusCode::NOT_FOUND, "404 page not found").into_response(),
        Flavor::LlamaCpp => (
            StatusCode::NOT_FOUND,
            axum::Json(serde_json::json!({"error": {
                    "code": 404, "message": "File Not Found", "type": llama_type(404)}})),
        )
            .into_response(),
    }
}
