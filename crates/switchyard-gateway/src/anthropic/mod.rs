//! Anthropic's Messages API (`/v1/messages`) on the gateway's port. A translation layer only:
//! requests become the router's `ChatRequest` and are routed like every other request.
//!
//! The pieces, each of which another API would have its own version of: [`request`] and
//! [`content`] read the request into the router's message; [`messages`] runs it through the
//! shared dispatch; [`response`] and [`stream`] write the answer; [`count`] answers
//! `count_tokens` from the router's dry run. Errors are `ApiError`s like everywhere else; the
//! dialect layer (`crate::dialect`) gives them Anthropic's shape on these paths.

mod content;
mod count;
mod messages;
mod request;
mod response;
mod stream;

use axum::Router;
use axum::routing::post;

use crate::AppState;

/// The Anthropic routes.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/messages", post(messages::create))
        .route("/v1/messages/count_tokens", post(count::count_tokens))
}
