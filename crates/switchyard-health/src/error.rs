//! The one error type of this crate: every shared-state call can fail (Redis down, timeout), and
//! callers on the request path are expected to log it and carry on.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum HealthError {
    /// The Redis URL could not be parsed.
    #[error("invalid Redis URL: {0}")]
    InvalidUrl(String),
    /// Redis answered with an error or the connection failed.
    #[error("redis {op}: {reason}")]
    Redis { op: &'static str, reason: String },
    /// Redis did not answer in time (it is down or overloaded).
    #[error("redis {op}: no answer within {ms} ms")]
    Timeout { op: &'static str, ms: u64 },
    /// A stored value was not the JSON we write.
    #[error("bad stored value for {key}: {reason}")]
    Decode { key: String, reason: String },
    /// Building the HTTP client failed.
    #[error("http client: {0}")]
    Http(String),
}

impl HealthError {
    /// Whether the error means the shared store is unreachable (as opposed to bad data).
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            HealthError::Redis { .. } | HealthError::Timeout { .. }
        )
    }
}
