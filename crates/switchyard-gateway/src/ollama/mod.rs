//! Ollama's API (`/api/*`) on the gateway's port, so `OLLAMA_HOST=http://switchyard:4000` works.
//! A translation layer only: requests become the router's `ChatRequest`/`EmbedRequest` and are
//! routed like every other request (fit, fallback, continuation, usage, keys, limits, metrics,
//! traces). Errors are written as `ApiError` and reshaped into Ollama's `{"error": "…"}` by the
//! dialect layer; errors inside an NDJSON stream are written here as `{"error": "…"}` lines.
//!
//! Model management (`pull`, `push`, `create`, `delete`, `copy`, blobs) is not served: models
//! are configured in Switchyard's configuration, so those routes answer 501 saying so.

mod embed;
mod generate;
mod models;
mod request;
mod response;

use axum::Router;
use axum::http::{StatusCode, Uri, header};
use axum::response::IntoResponse;
use axum::routing::{any, get, post};

use crate::AppState;
use crate::error::ApiError;

/// The Ollama version `/api/version` reports: a recent release, so clients that gate features
/// on the server's version (tools, `think`, structured output, `logprobs` since 0.12.11) use
/// them.
pub(crate) const OLLAMA_VERSION: &str = "0.12.11";

/// The Ollama routes.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(running))
        .route("/api/version", get(version))
        .route("/api/chat", post(generate::chat))
        .route("/api/generate", post(generate::generate))
        .route("/api/embed", post(embed::embed_route))
        .route("/api/embeddings", post(embed::embeddings_route))
        .route("/api/tags", get(models::tags))
        .route("/api/show", post(models::show))
        .route("/api/ps", get(models::ps))
        .route("/api/pull", any(managed_in_config))
        .route("/api/push", any(managed_in_config))
        .route("/api/create", any(managed_in_config))
        .route("/api/delete", any(managed_in_config))
        .route("/api/copy", any(managed_in_config))
        .route("/api/blobs/{digest}", any(managed_in_config))
        .route("/api", any(no_such_route))
        .route("/api/{*rest}", any(no_such_route))
}

/// `GET /` and `HEAD /`: what clients check the server with.
async fn running() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "Ollama is running",
    )
}

async fn version() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({ "version": OLLAMA_VERSION }))
}

/// Model management: models are groups of Switchyard's configuration.
async fn managed_in_config(uri: Uri) -> ApiError {
    ApiError {
        status: StatusCode::NOT_IMPLEMENTED,
        kind: "invalid_request_error",
        code: "not_supported".into(),
        message: format!(
            "{} is not supported: Switchyard serves the model groups of its configuration; add or change models there (GET /api/tags lists them)",
            uri.path()
        ),
        param: None,
    }
}

/// A router's 404 (the only one: no such group) as Ollama words it, `model 'x' not found`,
/// naming the model as the client did; other responses pass unchanged.
fn unknown_model(resp: axum::response::Response, client_model: &str) -> axum::response::Response {
    if resp.status() != StatusCode::NOT_FOUND {
        return resp;
    }
    let (parts, _) = resp.into_parts();
    let mut out = ApiError::not_found(format!("model '{client_model}' not found")).into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_LENGTH && name != header::CONTENT_TYPE {
            out.headers_mut().insert(name, value.clone());
        }
    }
    out
}

async fn no_such_route(uri: Uri) -> ApiError {
    ApiError::not_found(format!(
        "{} is not an Ollama API route Switchyard serves (see /api/chat, /api/generate, /api/embed, /api/tags, /api/show, /api/ps, /api/version)",
        uri.path()
    ))
}
