//! The one error type of an attempt, classified for the fallback loop.

use switchyard_core::FailureClass;
use switchyard_core::failure::mentions_context_overflow;

/// Why an attempt failed. `class` decides what the router does next.
#[derive(Clone, Debug, thiserror::Error, PartialEq)]
#[error("{class}: {message}")]
pub struct BackendError {
    pub class: FailureClass,
    /// Upstream HTTP status, when there was one.
    pub status: Option<u16>,
    pub message: String,
}

impl BackendError {
    pub fn new(class: FailureClass, message: impl Into<String>) -> Self {
        BackendError {
            class,
            status: None,
            message: message.into(),
        }
    }

    pub fn is_retryable(&self) -> bool {
        self.class.is_retryable()
    }

    /// Classifies an HTTP error response from its status and body.
    pub fn from_response(status: u16, body: &str) -> Self {
        let class =
            FailureClass::from_status(status, status < 500 && mentions_context_overflow(body));
        BackendError {
            class,
            status: Some(status),
            message: error_text(body),
        }
    }

    /// Classifies an error of the HTTP client before a response head arrived.
    pub fn from_transport(e: &hyper_util::client::legacy::Error) -> Self {
        let class = if timed_out(e) {
            FailureClass::Timeout
        } else {
            // Connection refused or reset, DNS, or a connection closed before the head: the
            // request never produced an answer, so another deployment may take it.
            FailureClass::Connect
        };
        let message = with_causes(e);
        if crate::tls::is_tls_failure(e) {
            return BackendError::new(
                class,
                format!(
                    "TLS handshake failed (is the server's certificate trusted? set ssl_verify to its CA file): {message}"
                ),
            );
        }
        BackendError::new(class, message)
    }

    /// Classifies an error reading a response body that had started.
    pub fn from_body(e: &hyper::Error) -> Self {
        let class = if timed_out(e) {
            FailureClass::Timeout
        } else {
            FailureClass::StreamBroken
        };
        BackendError::new(class, with_causes(e))
    }
}

/// Whether an I/O timeout (the connect timeout, say) is somewhere in the cause chain.
fn timed_out(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::TimedOut
        {
            return true;
        }
        cur = err.source();
    }
    false
}

/// The error and its causes, `outer: inner: innermost` (the client's Display alone omits them).
fn with_causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    message
}

/// Pulls a readable message out of an error body in Ollama's (`{"error":"…"}`) or OpenAI's
/// (`{"error":{"message":"…"}}`) shape, else returns the body trimmed.
pub(crate) fn error_text(body: &str) -> String {
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(body) {
        match v.get("error") {
            Some(serde_json::Value::String(s)) => return s.clone(),
            Some(obj @ serde_json::Value::Object(_)) => {
                if let Some(m) = obj.get("message").and_then(|m| m.as_str()) {
                    return m.to_string();
                }
            }
            _ => {}
        }
    }
    let t = body.trim();
    let end = t.char_indices().nth(500).map(|(i, _)| i).unwrap_or(t.len());
    t[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_are_classified() {
        let e = BackendError::from_response(
            400,
            r#"{"error":{"code":400,"message":"request (9412 tokens) exceeds the available context size (8192 tokens), try increasing it","type":"exceed_context_size_error"}}"#,
        );
        assert_eq!(e.class, FailureClass::Overflow);
        assert!(e.message.starts_with("request (9412 tokens)"));
        let e = BackendError::from_response(
            503,
            r#"{"error":"server busy, please try again.  maximum pending requests exceeded"}"#,
        );
        assert_eq!(e.class, FailureClass::Busy);
        let e = BackendError::from_response(404, r#"{"error":"model 'x' not found"}"#);
        assert_eq!(e.class, FailureClass::NotFound);
        assert_eq!(e.message, "model 'x' not found");
        let e = BackendError::from_response(400, r#"{"error":"invalid format"}"#);
        assert_eq!(e.class, FailureClass::Client);
    }
}
