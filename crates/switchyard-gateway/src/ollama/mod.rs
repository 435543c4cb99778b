//! Ollama's API (`/api/*`) on the gateway's port, so `OLLAMA_HOST=http://switchyard:4000` works.
//! A translation layer only: requests become the router's `ChatRequest`/`EmbedRequest` and are
//! routed like every other request.

use axum::Router;

use crate::AppState;

/// The Ollama routes.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
}
