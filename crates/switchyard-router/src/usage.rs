//! The accounting of one request, handed to a [`UsageSink`] when the request ends.
//!
//! The router knows everything a usage record needs (route, attempts and why each failed, tokens,
//! latency, time to first token); where records go — the usage ledger, a test collector — is the
//! sink's business. `record` must not block: the request path never waits on accounting.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// One attempt of a request.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AttemptUsage {
    pub deployment: String,
    /// `None` for the attempt that served the request.
    pub failure_class: Option<String>,
    pub message: String,
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
}

/// One request, as the ledger stores it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RequestRecord {
    pub request_id: String,
    pub started_unix_ms: u64,
    pub api_key_id: String,
    pub requested_group: String,
    pub served_group: Option<String>,
    pub deployment: Option<String>,
    pub backend_model: Option<String>,
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    /// True when the counts are ours, not the backend's.
    pub tokens_estimated: bool,
    pub latency_ms: u32,
    pub ttft_ms: Option<u32>,
    pub streamed: bool,
    /// `ok`, an error code such as `context_length_exceeded`, or `client_disconnected`.
    pub status: String,
    pub http_status: u16,
    pub attempts: Vec<AttemptUsage>,
    /// W3C `traceparent` naming the request's span (or the caller's trace when tracing is off),
    /// so the ledger's write joins the request's trace.
    pub traceparent: Option<String>,
    /// The client API the request came through (`openai.chat`, `ollama.generate`,
    /// `anthropic.messages`…): the request's own `api`, or the OpenAI API of its kind when empty.
    pub api: String,
}

/// The API a request names, or `default` (its kind's OpenAI API) when it names none.
pub(crate) fn api_or(api: &str, default: &str) -> String {
    if api.is_empty() { default } else { api }.to_owned()
}

/// Where finished requests go.
pub trait UsageSink: Send + Sync {
    fn record(&self, record: RequestRecord);

    /// Delivery figures for `/metrics`, when the sink keeps any.
    fn stats(&self) -> Option<SinkStats> {
        None
    }
}

/// How a sink's deliveries stand (the ledger recorder's spool and counters).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SinkStats {
    /// Records acknowledged by the ledger.
    pub delivered: u64,
    /// Records lost (queue or spool full, corrupt spool, refused as invalid).
    pub lost: u64,
    /// Failed deliveries (each retried from the spool).
    pub delivery_failures: u64,
    /// Records waiting in memory or in the spool.
    pub pending: u64,
    /// Records in the spool file.
    pub spool_records: u64,
}

/// Timing of one request, shared by its attempts.
pub(crate) struct Timing {
    pub started: Instant,
    pub started_wall: SystemTime,
    first_token: OnceLock<Instant>,
    /// Time spent inside backend attempts, in nanoseconds.
    backend_ns: AtomicU64,
}

impl Timing {
    pub fn start() -> Self {
        Timing {
            started: Instant::now(),
            started_wall: SystemTime::now(),
            first_token: OnceLock::new(),
            backend_ns: AtomicU64::new(0),
        }
    }

    /// Adds the duration of one backend attempt.
    pub fn add_backend(&self, d: Duration) {
        self.backend_ns
            .fetch_add(d.as_nanos() as u64, Ordering::Relaxed);
    }

    /// Switchyard's own time so far: elapsed minus time inside backend attempts.
    pub fn overhead(&self) -> Duration {
        self.started.elapsed().saturating_sub(Duration::from_nanos(
            self.backend_ns.load(Ordering::Relaxed),
        ))
    }

    pub fn ttft(&self) -> Option<Duration> {
        self.first_token
            .get()
            .map(|t| t.saturating_duration_since(self.started))
    }

    /// Marks the first token sent to the caller (later calls are ignored).
    pub fn first_token(&self) {
        let _ = self.first_token.set(Instant::now());
    }

    pub fn ttft_ms(&self) -> Option<u32> {
        self.first_token
            .get()
            .map(|t| t.saturating_duration_since(self.started).as_millis() as u32)
    }

    pub fn elapsed_ms(&self) -> u32 {
        self.started.elapsed().as_millis() as u32
    }

    pub fn started_unix_ms(&self) -> u64 {
        self.started_wall
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }
}
