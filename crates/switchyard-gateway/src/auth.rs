//! The master key and virtual keys: once a master key is configured, nobody reaches the API
//! without one of them.
//!
//! Accepted as `Authorization: Bearer KEY` (what OpenAI SDKs send) or `x-api-key: KEY`. The
//! comparison is constant-time over SHA-256 digests, so neither the key's bytes nor its length
//! leak through timing. Health endpoints stay open for orchestrators; `/metrics` follows
//! `gateway.metrics_require_key` and, when it requires a key, only the master key reads it.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::AppState;
use crate::error::ApiError;
use crate::keys::{Caller, now_ms};

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

fn forbidden(message: &str) -> Response {
    ApiError {
        status: StatusCode::FORBIDDEN,
        kind: "permission_error",
        code: "insufficient_permissions".into(),
        message: message.into(),
        param: None,
    }
    .into_response()
}

/// Who presented `key`: the master key, a live virtual key, or nobody we know (an error).
async fn identify(state: &AppState, master: &MasterKey, key: &str) -> Result<Caller, Response> {
    if master.matches(key) {
        return Ok(Caller::Master);
    }
    let Some(keys) = &state.keys else {
        return Err(unauthorized("invalid API key"));
    };
    match keys.lookup(key).await {
        Ok(Some(k)) if k.expires_ms.is_some_and(|e| e <= now_ms()) => {
            Err(unauthorized("this API key has expired"))
        }
        Ok(Some(k)) => Ok(Caller::Key(k)),
        Ok(None) => Err(unauthorized("invalid API key")),
        Err(e) => {
            tracing::warn!(error = %e, "cannot look up an API key");
            Err(
                ApiError::router_unavailable(format!("cannot check the API key now: {e}"))
                    .into_response(),
            )
        }
    }
}

/// Establishes the [`Caller`] of every request: without a master key the API is open; with one,
/// every API route needs the master key or a live virtual key, and key management and usage
/// reports need the master key.
pub async fn require_key(State(state): State<AppState>, req: Request, next: Next) -> Response {
    // The capacity queue's priority header, checked once here for every route.
    let priority = match crate::priority::from_headers(req.headers()) {
        Ok(p) => p,
        Err(resp) => return *resp,
    };
    crate::priority::scope(priority, identify_caller(state, req, next)).await
}

async fn identify_caller(state: AppState, mut req: Request, next: Next) -> Response {
    let Some(master) = &state.options.master_key else {
        req.extensions_mut().insert(Caller::Open);
        return next.run(req).await;
    };
    let path = req.uri().path();
    // `/` and `/api/version` are Ollama's liveness checks: clients probe them before anything.
    if path.starts_with("/health/")
        || path == "/"
        || path == "/api/version"
        || (path == "/metrics" && !state.options.metrics_require_key)
    {
        req.extensions_mut().insert(Caller::Open);
        return next.run(req).await;
    }
    let Some(key) = presented_key(&req).map(str::to_owned) else {
        return unauthorized("missing API key: send Authorization: Bearer <key> or x-api-key");
    };
    let caller = match identify(&state, master, &key).await {
        Ok(c) => c,
        Err(resp) => return resp,
    };
    let path = req.uri().path();
    // `/metrics` shows every group's traffic: past here it requires a key, and only the master
    // key may read it, like usage reports.
    let admin_only = path.starts_with("/key/")
        || path.starts_with("/v1/usage")
        || path == "/metrics"
        || path.starts_with("/admin/");
    if admin_only && !matches!(caller, Caller::Master) {
        return forbidden(
            "only the master key may manage keys, reload the config and read usage reports and metrics",
        );
    }
    req.extensions_mut().insert(caller);
    next.run(req).await
}
