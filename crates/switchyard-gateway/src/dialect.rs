//! Which client API a path belongs to, and its error shape.
//!
//! Handlers, the key check, the body limit and the JSON extractor all answer errors as
//! [`ApiError`] in OpenAI's shape. Ollama clients read `{"error": "text"}` and Anthropic clients
//! `{"type":"error","error":{"type","message"}}`; an OpenAI-shaped body makes them fail with an
//! unreadable error (n8n's Ollama node shows `[object Object]`). [`reshape`] is the one place that
//! rewrites an error response into the shape of the API its path belongs to, so every facade
//! gets every error (401, 413, 429, a router refusal) in its own shape without repeating the
//! checks. Errors written inside a stream are the facade's own business.

use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::error::ApiError;

/// A client API served on the gateway's port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    OpenAi,
    Ollama,
    Anthropic,
}

/// Largest error body rewritten (ours are a few hundred bytes).
const MAX_ERROR_BODY: usize = 64 * 1024;

impl Dialect {
    /// The API a request path belongs to.
    pub fn of_path(path: &str) -> Dialect {
        if path == "/api" || path.starts_with("/api/") || path == "/" {
            Dialect::Ollama
        } else if path == "/v1/messages" || path.starts_with("/v1/messages/") {
            Dialect::Anthropic
        } else {
            Dialect::OpenAi
        }
    }

    /// `e` as this API's error body.
    pub fn error_body(self, e: &ApiError) -> Value {
        match self {
            Dialect::OpenAi => e.body(),
            Dialect::Ollama => json!({ "error": e.message }),
            Dialect::Anthropic => json!({
                "type": "error",
                "error": { "type": anthropic_type(e.status, e.kind), "message": e.message },
            }),
        }
    }

    /// `e` as this API's error response, with `e`'s status.
    pub fn error_response(self, e: &ApiError) -> Response {
        (e.status, axum::Json(self.error_body(e))).into_response()
    }
}

/// Anthropic's error type for a status (its documented set), keeping the kinds that match.
fn anthropic_type(status: StatusCode, kind: &str) -> &'static str {
    match status.as_u16() {
        400 | 422 => "invalid_request_error",
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 | 405 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        504 => "timeout_error",
        _ if kind == "invalid_request_error" => "invalid_request_error",
        _ => "api_error",
    }
}

/// Middleware: rewrites OpenAI-shaped error responses on Ollama and Anthropic paths into those
/// APIs' shapes. Successful responses and streams pass untouched.
pub async fn reshape(req: Request, next: Next) -> Response {
    let dialect = Dialect::of_path(req.uri().path());
    let resp = next.run(req).await;
    if dialect == Dialect::OpenAi || resp.status().is_success() || !is_json(&resp) {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_ERROR_BODY).await else {
        let e = ApiError::router_unavailable("unreadable error body");
        return dialect.error_response(&ApiError {
            status: parts.status,
            ..e
        });
    };
    let Some(e) = openai_error(parts.status, &bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    let body = dialect.error_body(&e).to_string();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(body))
}

fn is_json(resp: &Response) -> bool {
    resp.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// An OpenAI error body read back (`None`: not one of ours).
fn openai_error(status: StatusCode, bytes: &[u8]) -> Option<ApiError> {
    let v: Value = serde_json::from_slice(bytes).ok()?;
    let err = v.get("error")?;
    let message = err.get("message")?.as_str()?.to_owned();
    let kind = match err.get("type").and_then(Value::as_str) {
        Some("invalid_request_error") => "invalid_request_error",
        Some("authentication_error") => "authentication_error",
        Some("permission_error") => "permission_error",
        Some("rate_limit_error") => "rate_limit_error",
        _ => "api_error",
    };
    Some(ApiError {
        status,
        kind,
        code: err
            .get("code")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        message,
        param: err.get("param").and_then(Value::as_str).map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_dialects() {
        assert_eq!(Dialect::of_path("/api/chat"), Dialect::Ollama);
        assert_eq!(Dialect::of_path("/"), Dialect::Ollama);
        assert_eq!(Dialect::of_path("/apis"), Dialect::OpenAi);
        assert_eq!(Dialect::of_path("/v1/messages"), Dialect::Anthropic);
        assert_eq!(
            Dialect::of_path("/v1/messages/count_tokens"),
            Dialect::Anthropic
        );
        assert_eq!(Dialect::of_path("/v1/chat/completions"), Dialect::OpenAi);
    }

    #[test]
    fn shapes() {
        let e = ApiError::invalid("bad", Some("x"));
        assert_eq!(Dialect::Ollama.error_body(&e), json!({"error": "bad"}));
        assert_eq!(
            Dialect::Anthropic.error_body(&e),
            json!({"type":"error","error":{"type":"invalid_request_error","message":"bad"}})
        );
    }
}
