//! Failure classes: the closed vocabulary that drives the fallback loop.
//!
//! Every error a backend attempt can end with is reduced to one [`FailureClass`]. The router asks
//! only two questions of it — "may another candidate be tried?" and "must the next candidate have
//! a larger context window?" — so the fallback policy lives here, in one place, instead of being
//! spread over string matches in the clients. The names double as low-cardinality metric labels.

use std::fmt;

/// Why one attempt against one deployment failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FailureClass {
    /// The prompt did not fit the deployment's context (llama.cpp's 400, Ollama's `truncate:false`
    /// error) or the backend silently truncated it (detected from the reported prompt tokens).
    Overflow,
    /// TCP connect refused or reset before any response.
    Connect,
    /// No response head, no first token, or no further token within the configured timeout.
    Timeout,
    /// The backend said it is busy or loading (503).
    Busy,
    /// The backend answered 5xx (model runner crashed, load failure, …).
    Server,
    /// The backend does not have the model (404).
    NotFound,
    /// The response stream ended without its terminator, or carried an error event.
    StreamBroken,
    /// The backend rejected the request itself (a 4xx other than overflow): the caller's fault, so
    /// another deployment would reject it too.
    Client,
    /// The backend returned something we could not parse.
    Protocol,
}

impl FailureClass {
    /// Whether the router may move on to another candidate after this failure.
    pub fn is_retryable(self) -> bool {
        !matches!(self, FailureClass::Client)
    }

    /// Whether the next candidate must have a strictly larger context window than this one.
    pub fn needs_larger_window(self) -> bool {
        matches!(self, FailureClass::Overflow)
    }

    /// Whether this failure says something about the deployment's health, and so counts towards
    /// its cooldown. An overflow or the caller's own bad request does not.
    pub fn counts_against_health(self) -> bool {
        !matches!(self, FailureClass::Overflow | FailureClass::Client)
    }

    /// Stable snake_case label, used in headers, records and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureClass::Overflow => "overflow",
            FailureClass::Connect => "connect",
            FailureClass::Timeout => "timeout",
            FailureClass::Busy => "busy",
            FailureClass::Server => "server_error",
            FailureClass::NotFound => "not_found",
            FailureClass::StreamBroken => "stream_broken",
            FailureClass::Client => "client_error",
            FailureClass::Protocol => "protocol",
        }
    }

    /// Parses the label written by [`FailureClass::as_str`].
    pub fn from_label(label: &str) -> Option<Self> {
        Some(match label {
            "overflow" => FailureClass::Overflow,
            "connect" => FailureClass::Connect,
            "timeout" => FailureClass::Timeout,
            "busy" => FailureClass::Busy,
            "server_error" => FailureClass::Server,
            "not_found" => FailureClass::NotFound,
            "stream_broken" => FailureClass::StreamBroken,
            "client_error" => FailureClass::Client,
            "protocol" => FailureClass::Protocol,
            _ => return None,
        })
    }

    /// Classifies an HTTP error status from a backend, given whether its body said the context
    /// was exceeded.
    pub fn from_status(status: u16, context_exceeded: bool) -> Self {
        match status {
            _ if context_exceeded => FailureClass::Overflow,
            404 => FailureClass::NotFound,
            408 => FailureClass::Timeout,
            429 | 503 => FailureClass::Busy,
            400..=499 => FailureClass::Client,
            _ => FailureClass::Server,
        }
    }
}

impl fmt::Display for FailureClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether an error text from Ollama or llama.cpp says the prompt exceeded the context.
///
/// Covers llama.cpp's `exceed_context_size_error` in its three eras, the Python server's
/// `context_length_exceeded`, and Ollama's `truncate:false` / `shift:false` messages (which may
/// embed the llama-server body as a string).
pub fn mentions_context_overflow(text: &str) -> bool {
    const NEEDLES: [&str; 6] = [
        "exceed_context_size_error",
        "exceeds the available context size",
        "context_length_exceeded",
        "maximum context length",
        "the input length exceeds the context length",
        "longer than the context length",
    ];
    NEEDLES.iter().any(|n| text.contains(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_drives_policy() {
        assert_eq!(FailureClass::from_status(400, true), FailureClass::Overflow);
        assert_eq!(FailureClass::from_status(400, false), FailureClass::Client);
        assert_eq!(FailureClass::from_status(503, false), FailureClass::Busy);
        assert_eq!(FailureClass::from_status(500, false), FailureClass::Server);
        assert_eq!(
            FailureClass::from_status(404, false),
            FailureClass::NotFound
        );
        assert!(!FailureClass::Client.is_retryable());
        assert!(FailureClass::Overflow.needs_larger_window());
        assert!(!FailureClass::Overflow.counts_against_health());
        for c in [
            FailureClass::Overflow,
            FailureClass::Connect,
            FailureClass::Protocol,
        ] {
            assert_eq!(FailureClass::from_label(c.as_str()), Some(c));
        }
    }

    #[test]
    fn overflow_texts_are_recognised() {
        assert!(mentions_context_overflow(
            r#"{"error":"{\"error\":{\"code\":400,\"message\":\"request (9001 tokens) exceeds the available context size (4096 tokens), try increasing it\",\"type\":\"exceed_context_size_error\"}}"}"#
        ));
        assert!(mentions_context_overflow(
            "This model's maximum context length is 512 tokens. However, you requested 751 tokens"
        ));
        assert!(!mentions_context_overflow("model 'x' not found"));
    }
}
