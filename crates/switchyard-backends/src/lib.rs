//! Backend clients: one attempt of a chat request against one deployment.
//!
//! Each provider's wire format (Ollama's NDJSON `/api/chat`, OpenAI-style SSE) is translated into
//! one event stream of [`BackendEvent`]s, and every way an attempt can fail becomes a
//! [`BackendError`] carrying a [`FailureClass`]. The router sees neither HTTP nor JSON: it reads
//! events and asks the error's class what to do next. Streaming clients (and continuations) get
//! streamed upstream calls; for a non-streaming client every backend is asked for the whole answer
//! at once, read as one JSON object. Decoders read `null` and an absent field alike.

mod continuation;
mod embed;
mod error;
mod lines;
mod logprobs;
mod nullable;
mod ollama;
mod openai;
mod pool;
#[cfg(test)]
mod request_tests;
mod timeouts;
pub mod tls;
mod tokenize;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use switchyard_core::config::{Deployment, Provider};
use switchyard_proto as pb;

pub use embed::{EmbedCall, Embedded, takes_token_ids};
pub use error::BackendError;
pub use logprobs::append as append_logprobs;
pub use pool::Backends;
pub use tokenize::{PromptText, TokenizeApi};

/// What one attempt produces, in order: deltas, then exactly one `Done`.
#[derive(Clone, Debug, PartialEq)]
pub enum BackendEvent {
    Delta(pb::Delta),
    Done(Completion),
}

/// The end of a successful attempt.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Completion {
    /// OpenAI finish reason: `stop`, `length`, `tool_calls`.
    pub finish_reason: String,
    /// Prompt tokens the backend reports it evaluated (after any truncation).
    pub prompt_tokens: Option<u32>,
    pub completion_tokens: Option<u32>,
}

/// The events of one attempt; an `Err` item ends it.
pub type EventStream = BoxStream<'static, Result<BackendEvent, BackendError>>;

/// Everything an attempt needs besides the client.
pub struct Attempt<'a> {
    pub deployment: &'a Deployment,
    pub request: &'a pb::ChatRequest,
    /// Messages to append after the request's own (a continuation's partial answer).
    pub extra_assistant_prefix: Option<&'a str>,
    /// Output limit for this attempt (the request's, reduced by what earlier attempts produced).
    pub max_tokens: Option<u32>,
    /// W3C `traceparent` to send, making the backend's work part of the request's trace.
    pub traceparent: Option<&'a str>,
}

/// Writes the request's sampling fields into `target` under their OpenAI names, which Ollama's
/// `options` share (`temperature`, `top_p`, `top_k`, `min_p`, penalties, `seed`, `stop`).
pub(crate) fn put_sampling(
    target: &mut serde_json::Map<String, serde_json::Value>,
    s: &pb::Sampling,
) {
    let floats = [
        ("temperature", s.temperature),
        ("top_p", s.top_p),
        ("min_p", s.min_p),
        ("presence_penalty", s.presence_penalty),
        ("frequency_penalty", s.frequency_penalty),
        ("repeat_penalty", s.repeat_penalty),
    ];
    for (k, v) in floats {
        if let Some(v) = v {
            target.insert(k.into(), v.into());
        }
    }
    if let Some(k) = s.top_k {
        target.insert("top_k".into(), k.into());
    }
    if let Some(seed) = s.seed {
        target.insert("seed".into(), seed.into());
    }
    if !s.stop.is_empty() {
        target.insert("stop".into(), s.stop.clone().into());
    }
}

/// Whether an attempt asks its backend for a stream: for a streaming caller, and for a
/// continuation (whose text the caller is already receiving).
pub(crate) fn streams(attempt: &Attempt<'_>) -> bool {
    attempt.request.stream || attempt.extra_assistant_prefix.is_some()
}

/// Decodes a recorded response body of `provider`'s wire format, streamed (SSE or NDJSON lines)
/// or whole (one JSON answer), into the events an attempt would produce. For tests and tools.
pub fn decode(provider: Provider, streamed: bool, body: Bytes) -> EventStream {
    match (provider, streamed) {
        (Provider::OpenAi, false) => Box::pin(futures::stream::iter(openai::answer(&body))),
        (Provider::Ollama, false) => ollama::events(Box::pin(futures::stream::iter([Ok(body)]))),
        (provider, true) => {
            let mut buf = lines::LineBuffer::default();
            buf.push(&body);
            let mut all = Vec::new();
            while let Some(line) = buf.next_line() {
                all.push(Ok(line));
            }
            all.extend(buf.take_rest().map(Ok));
            let lines = futures::stream::iter(all).boxed();
            match provider {
                Provider::Ollama => ollama::events(lines),
                Provider::OpenAi => openai::events(lines),
            }
        }
    }
}

impl Attempt<'_> {
    /// The provider whose wire format this attempt uses.
    pub fn provider(&self) -> Provider {
        self.deployment.provider
    }
}
