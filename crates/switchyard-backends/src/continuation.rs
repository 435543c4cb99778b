//! Which continuation mode an OpenAI-compatible server needs, found out once per deployment.
//!
//! A broken stream is continued by sending the partial answer as a trailing assistant message
//! (`prefill`) or by rendering the chat template up to the open assistant turn and asking
//! `/v1/completions` for the rest (`completions`). Servers differ in what they do with a trailing
//! assistant message: llama-server (recent builds) and Ollama's `/v1` continue it; llama-cpp-python
//! and vLLM (without `continue_final_message`) close it and start a new turn, which restarts the
//! answer or joins a second one to it. A deployment without a `continuation` key is asked, the
//! first time it has to continue something:
//!
//! 1. `GET /health`. No such route (404): `GET /api/version` tells Ollama's `/v1` layer (prefill)
//!    from llama-cpp-python and other servers without it (completions). Nothing is generated:
//!    a generation sent to llama-cpp-python, whose `interrupt_requests` is on by default, would cut
//!    whatever stream it is serving.
//! 2. A server with `/health` (llama-server, vLLM, TGI, SGLang…) serves requests side by side, so
//!    it is asked directly: "The capital of France is" as a trailing assistant message, 4 tokens
//!    at temperature 0. An answer that carries on with a new word (leading whitespace, not the
//!    sentence again) shows it continues; anything else, including a refusal, means completions.
//!
//! The verdict is kept for the process's life; a probe that could not reach the server is not
//! kept (the attempt itself will find the server down).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use http::{Request, Uri};
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use switchyard_core::config::{Continuation, Deployment, Provider};
use tokio::time::Instant;

use crate::Backends;

/// Longest a detection may take (both steps together).
const DETECT_TIMEOUT: Duration = Duration::from_secs(15);

/// Longest body read from a detection answer.
const MAX_BODY: usize = 64 * 1024;

/// The prefix of the behavioural probe, and the question it answers.
const PROBE_QUESTION: &str = "What is the capital of France? Answer in one sentence.";
const PROBE_PREFIX: &str = "The capital of France is";

/// Verdicts by deployment id.
#[derive(Debug, Default)]
pub(crate) struct Modes(Mutex<HashMap<String, Continuation>>);

impl Modes {
    fn get(&self, id: &str) -> Option<Continuation> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(id)
            .copied()
    }

    fn put(&self, id: &str, mode: Continuation) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(id.to_owned(), mode);
    }
}

impl Backends {
    /// How `d` continues a partial answer: its `continuation` key, else what its server was found
    /// to do (asked once, see the module docs). Ollama's native API always continues.
    pub async fn continuation_mode(&self, d: &Deployment) -> Continuation {
        match (d.continuation, d.provider) {
            (Continuation::Auto, Provider::OpenAi) => {}
            (Continuation::Auto, Provider::Ollama) => return Continuation::Prefill,
            (explicit, _) => return explicit,
        }
        if let Some(known) = self.modes.get(&d.id) {
            return known;
        }
        let deadline = Instant::now() + DETECT_TIMEOUT.min(d.timeouts.total);
        match tokio::time::timeout_at(deadline, self.detect(d)).await {
            Ok(Some(mode)) => {
                tracing::info!(deployment = %d.id, ?mode, "continuation mode detected");
                self.modes.put(&d.id, mode);
                mode
            }
            // Unreachable or too slow: the attempt will tell; prefill needs no template.
            _ => Continuation::Prefill,
        }
    }

    /// `None` when the server could not be reached.
    async fn detect(&self, d: &Deployment) -> Option<Continuation> {
        match self.call(d, "/health", None).await? {
            (404, _) => match self.call(d, "/api/version", None).await? {
                (s, _) if (200..300).contains(&s) => Some(Continuation::Prefill),
                _ => Some(Continuation::Completions),
            },
            _ => {
                let body = json!({
                    "model": d.model,
                    "messages": [
                        {"role": "user", "content": PROBE_QUESTION},
                        {"role": "assistant", "content": PROBE_PREFIX},
                    ],
                    "max_tokens": 4,
                    "temperature": 0,
                    "stream": false,
                });
                let (status, answer) = self
                    .call(d, "/v1/chat/completions", Some(body.to_string()))
                    .await?;
                let content = serde_json::from_slice::<Value>(&answer)
                    .ok()
                    .and_then(|v| {
                        v.pointer("/choices/0/message/content")
                            .and_then(Value::as_str)
                            .map(str::to_owned)
                    })
                    .filter(|_| (200..300).contains(&status));
                Some(judge(content.as_deref()))
            }
        }
    }

    /// One call to `d`'s host: `(status, body)`, or `None` when it could not be made.
    async fn call(
        &self,
        d: &Deployment,
        path: &str,
        body: Option<String>,
    ) -> Option<(u16, Vec<u8>)> {
        let (client, auth) = self.client_of(d)?;
        let uri: Uri = format!("{}{path}", d.api_base).parse().ok()?;
        let mut rb = match &body {
            Some(_) => Request::post(uri)
                .header(CONTENT_TYPE, HeaderValue::from_static("application/json")),
            None => Request::get(uri),
        };
        if let Some(v) = auth {
            rb = rb.header(AUTHORIZATION, v.clone());
        }
        let req = rb
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .ok()?;
        let resp = client.request(req).await.ok()?;
        let status = resp.status().as_u16();
        let mut data = resp.into_body().into_data_stream();
        let mut out = Vec::new();
        while let Some(chunk) = futures::StreamExt::next(&mut data).await {
            out.extend_from_slice(&chunk.ok()?);
            if out.len() > MAX_BODY {
                break;
            }
        }
        Some((status, out))
    }
}

/// Whether a probe's answer continued "The capital of France is": a new word with its leading
/// whitespace (" Paris"), not the sentence again or a fresh turn ("The capital…", "Paris.").
fn judge(answer: Option<&str>) -> Continuation {
    let Some(a) = answer else {
        return Continuation::Completions;
    };
    let rest = a.trim_start();
    let continued = a.len() > rest.len()
        && !rest.is_empty()
        && !rest.starts_with(PROBE_PREFIX)
        && !rest.starts_with("The ");
    if continued {
        Continuation::Prefill
    } else {
        Continuation::Completions
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_continued_probe_means_prefill() {
        assert_eq!(judge(Some(" Paris.")), Continuation::Prefill);
        assert_eq!(judge(Some(" located in")), Continuation::Prefill);
    }

    #[test]
    fn a_new_turn_or_a_refusal_means_completions() {
        // llama-cpp-python with SmolLM2 repeats the sentence in a new turn.
        assert_eq!(
            judge(Some("The capital of France is")),
            Continuation::Completions
        );
        assert_eq!(
            judge(Some("Paris is the capital")),
            Continuation::Completions
        );
        assert_eq!(judge(Some("\n\nThe capital")), Continuation::Completions);
        assert_eq!(judge(Some("")), Continuation::Completions);
        assert_eq!(judge(Some("  ")), Continuation::Completions);
        assert_eq!(judge(None), Continuation::Completions);
    }
}
