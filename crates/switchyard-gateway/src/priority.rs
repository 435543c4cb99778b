//! A request's place in the router's capacity queue: the `x-switchyard-priority` header, else
//! the virtual key's metadata `priority` (an integer; higher waits less; default 0).
//!
//! The header is read once, by the auth middleware, and carried to admission in a task-local
//! (every client API's handler runs inside the middleware's future), so no route has to pass it.

use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::keys::Caller;

/// The request header that sets a request's priority.
pub const HEADER: &str = "x-switchyard-priority";

tokio::task_local! {
    static PRIORITY: Option<i32>;
}

/// The header's value; a value that is not an integer is a 400 naming the header.
pub(crate) fn from_headers(h: &HeaderMap) -> Result<Option<i32>, Box<Response>> {
    let Some(v) = h.get(HEADER) else {
        return Ok(None);
    };
    v.to_str()
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok())
        .map(Some)
        .ok_or_else(|| {
            ApiError::invalid(
                format!("{HEADER} must be an integer (higher is served first; default 0)"),
                Some(HEADER),
            )
            .into_response()
            .into()
        })
}

/// Runs `f` with the request's header priority in scope.
pub(crate) async fn scope<F: Future>(priority: Option<i32>, f: F) -> F::Output {
    PRIORITY.scope(priority, f).await
}

/// The priority of the request being admitted: its header, else its key's metadata.
pub(crate) fn of(caller: &Caller) -> Option<i32> {
    PRIORITY
        .try_with(|p| *p)
        .ok()
        .flatten()
        .or_else(|| match caller {
            Caller::Key(k) => serde_json::from_str::<serde_json::Value>(&k.metadata_json)
                .ok()?
                .get("priority")?
                .as_i64()
                .and_then(|p| i32::try_from(p).ok()),
            _ => None,
        })
}
