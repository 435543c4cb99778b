//! Extractors (JSON body, query string, path) whose every rejection is an OpenAI-shaped error
//! naming the field.
//!
//! axum's own `Json`, `Query` and `Path` answer in plain text; API clients need the error object,
//! and people need to know *which* field was wrong (`messages[2].role: unknown variant "bot"`).
//!
//! The body is read as JSON whatever its `Content-Type` says: `curl -d` sends
//! `application/x-www-form-urlencoded`, many scripts send none, and a body that parses as JSON
//! is what was meant. The declared type is only named in the error when the body does not parse.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
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
        // A declared type other than JSON, named if the body turns out not to be JSON.
        let declared = req
            .headers()
            .get(CONTENT_TYPE)
            .map(|ct| String::from_utf8_lossy(ct.as_bytes()).into_owned())
            .filter(|ct| !ct.starts_with("application/json") && !ct.contains("+json"));
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::too_large(limit)
            } else {
                ApiError::invalid(format!("could not read the request body: {e}"), None)
            }
        })?;
        parse(&bytes).map(ApiJson).map_err(|mut e| {
            if let Some(ct) = declared.filter(|_| e.message.starts_with("the body is not valid")) {
                e.message = format!("{} (the request said Content-Type: {ct})", e.message);
            }
            e
        })
    }
}

/// A query string of type `T`; a bad one is a 400 in OpenAI's shape.
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| ApiQuery(v))
            .map_err(|e| ApiError::invalid(e.body_text(), None))
    }
}

/// Path parameters of type `T`; a bad one is a 400 in OpenAI's shape.
pub struct ApiPath<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(v)| ApiPath(v))
            .map_err(|e| ApiError::invalid(e.body_text(), None))
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
