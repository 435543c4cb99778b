//! The master key: once configured, nobody reaches the API without it.
//!
//! Accepted as `Authorization: Bearer KEY` (what OpenAI SDKs send) or `x-api-key: KEY`. The
//! comparison is constant-time over SHA-256 digests, so neither the key's bytes nor its length
//! leak through timing. Health endpoints stay open for orchestrators; `/metrics` follows
//! `gateway.metrics_require_key`.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::AppState;
use crate::error::ApiError;

/// The master key, kept as its digest.
#[derive(Clone)]
pub struct MasterKey {
    digest: [u8; 32],
}

impl MasterKey {
    pub fn new(key: &str) -> Self {
        MasterKey {
            digest: Sha256::digest(key.as_bytes()).into(),
        }
    }

    fn matches(&self, presented: &str) -> bool {
        let d: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        bool::from(d.ct_eq(&self.digest))
    }
}

fn presented_key(req: &Request) -> Option<&str> {
    let h = req.headers();
    if let Some(v) = h
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let v = v.trim();
        return Some(
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
                .unwrap_or(v)
                .trim(),
        );
    }
    h.get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

fn unauthorized(message: &str) -> Response {
    ApiError {
        status: StatusCode::UNAUTHORIZED,
        kind: "authentication_error",
        code: "invalid_api_key".into(),
        message: message.into(),
        param: None,
    }
    .into_response()
}

/// Rejects requests without the master key (when one is configured).
pub async fn require_key(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(key) = &state.options.master_key else {
        return next.run(req).await;
    };
    let path = req.uri().path();
    if path.starts_with("/health/") || (path == "/metrics" && !state.options.metrics_require_key) {
        return next.run(req).await;
    }
    match presented_key(&req) {
        None => unauthorized("missing API key: send Authorization: Bearer <key> or x-api-key"),
        Some(k) if key.matches(k) => next.run(req).await,
        Some(_) => unauthorized("invalid API key"),
    }
}
