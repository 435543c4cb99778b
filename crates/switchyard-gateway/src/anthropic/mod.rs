//! Anthropic's Messages API (`/v1/messages`) on the gateway's port. A translation layer only:
//! requests become the router's `ChatRequest` and are routed like every other request.

use axum::Router;

use crate::AppState;

/// The Anthropic routes.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
}
