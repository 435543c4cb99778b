//! A JSON body extractor whose every rejection is an OpenAI-shaped error naming the field.
//!
//! axum's own `Json` answers in plain text; API clients need the error object, and people need
//! to know *which* field was wrong (`messages[2].role: unknown variant "bot"`).

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_TYPE;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Body limit shared by the extractor (set from `gateway.max_body_bytes`).
#[derive(Clone, Copy, Debug)]
pub struct BodyLimit(pub usize);

/// A JSON request body of type `T`.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let limit = req
            .extensions()
            .get::<BodyLimit>()
            .map(|l| l.0)
            .unwrap_or(usize::MAX);
        if let Some(ct) = req.headers().get(CONTENT_TYPE) {
            let ct = ct.to_str().unwrap_or("");
            if !ct.is_empty() && !ct.starts_with("application/json") && !ct.contains("+json") {
                return Err(ApiError::invalid(
                    format!("Content-Type must be application/json, got {ct}"),
                    None,
                ));
            }
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::too_large(limit)
            } else {
                ApiError::invalid(format!("could not read the request body: {e}"), None)
            }
        })?;
        parse(&bytes).map(ApiJson)
    }
}

/// Parses JSON, naming the path of the offending field in the error.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::invalid(
            "the request body is empty; expected a JSON object",
            None,
        ));
    }
    // The common case, a valid body, takes serde_json's direct path; only a body that fails is
    // parsed again with path tracking, which costs about twice as much, to name the field.
    if let Ok(v) = serde_json::from_slice::<T>(bytes) {
        return Ok(v);
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Ok(v) => {
            de.end().map_err(|e| {
                ApiError::invalid(format!("invalid JSON after the body: {e}"), None)
            })?;
            Ok(v)
        }
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if inner.is_syntax() || inner.is_eof() {
                return Err(ApiError::invalid(
                    format!("the body is not valid JSON: {inner}"),
                    None,
                ));
            }
            if path == "." {
                Err(ApiError::invalid(format!("invalid request: {inner}"), None))
            } else {
                let param = path.clone();
                Err(ApiError::invalid(format!("{path}: {inner}"), Some(&param)))
            }
        }
    }
}
