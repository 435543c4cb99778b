//! Asking an OpenAI-compatible server to count a prompt with its own tokenizer.
//!
//! A deployment without a tokenizer file is routed on an estimate with a safety margin; near a
//! window boundary the margin alone may send a prompt that fits to a larger model. Several servers
//! can count exactly, each its own way:
//!
//! - llama.cpp's `llama-server`: `POST /apply-template` renders the messages with the model's chat
//!   template, `POST /tokenize` (`add_special`, `parse_special`) counts the rendered prompt as a
//!   chat completion would.
//! - llama-cpp-python: `POST /extras/tokenize/count` counts a text (special tokens parsed, BOS as
//!   the vocabulary says); it has no template endpoint, so the caller renders the prompt.
//! - vLLM: `POST /tokenize` with `messages` applies the chat template and answers a `count`.
//!
//! [`Backends::detect_tokenize`] finds out which one a server offers; [`Backends::count_prompt`]
//! asks it. Both are bounded by the caller's deadline: these calls sit on a request's path.

use bytes::Bytes;
use futures::StreamExt;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use http::{Request, Uri};
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use switchyard_core::FailureClass;
use switchyard_core::config::{Deployment, Provider};
use tokio::time::Instant;

use crate::{BackendError, Backends};

/// Longest tokenize answer read (a token list of a long prompt as JSON).
const MAX_ANSWER: usize = 16 * 1024 * 1024;

/// The tokenizing endpoint a server offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenizeApi {
    /// llama.cpp's `llama-server`: `/apply-template` then `/tokenize`.
    LlamaServer,
    /// llama-cpp-python: `/extras/tokenize/count` of a prompt the caller renders. Every call takes
    /// the lock generation holds (and, with the server's default `interrupt_requests`, cuts a
    /// running stream short), so callers ask it only while they have nothing in flight there.
    LlamaCppPython,
    /// vLLM: `/tokenize` with the messages.
    Vllm,
}

impl TokenizeApi {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenizeApi::LlamaServer => "llama.cpp /apply-template + /tokenize",
            TokenizeApi::LlamaCppPython => "llama-cpp-python /extras/tokenize/count",
            TokenizeApi::Vllm => "vLLM /tokenize",
        }
    }

    /// Whether the caller must render the chat template itself.
    pub fn needs_rendered_prompt(self) -> bool {
        self == TokenizeApi::LlamaCppPython
    }
}

/// The prompt to count: OpenAI-style messages (`[{role, content}]`) and, for servers without a
/// template endpoint, the prompt rendered with the deployment's template family.
pub struct PromptText<'a> {
    pub messages: &'a Value,
    pub rendered: Option<&'a str>,
}

impl Backends {
    /// Which tokenizing endpoint `d`'s server offers, `None` when it offers none (or is not an
    /// OpenAI-compatible server). An error means the server could not be asked (down, timed
    /// out): ask again later.
    pub async fn detect_tokenize(
        &self,
        d: &Deployment,
        deadline: Instant,
    ) -> Result<Option<TokenizeApi>, BackendError> {
        if d.provider != Provider::OpenAi {
            return Ok(None);
        }
        let messages = json!([{"role": "user", "content": "hi"}]);
        let (status, body) = self
            .post_json(
                d,
                "/apply-template",
                &json!({ "messages": messages }),
                deadline,
            )
            .await?;
        if status == 200 && field(&body, "prompt").is_some_and(|p| p.is_string()) {
            return Ok(Some(TokenizeApi::LlamaServer));
        }
        let (status, body) = self
            .post_json(
                d,
                "/extras/tokenize/count",
                &json!({"input": "hi", "model": d.model}),
                deadline,
            )
            .await?;
        if status == 200 && field(&body, "count").is_some_and(|c| c.is_u64()) {
            return Ok(Some(TokenizeApi::LlamaCppPython));
        }
        let (status, body) = self
            .post_json(
                d,
                "/tokenize",
                &json!({"model": d.model, "messages": messages, "add_generation_prompt": true}),
                deadline,
            )
            .await?;
        if status == 200 && field(&body, "count").is_some_and(|c| c.is_u64()) {
            return Ok(Some(TokenizeApi::Vllm));
        }
        Ok(None)
    }

    /// The prompt tokens `d`'s server would count for `prompt`, by `deadline`.
    pub async fn count_prompt(
        &self,
        d: &Deployment,
        api: TokenizeApi,
        prompt: &PromptText<'_>,
        deadline: Instant,
    ) -> Result<u32, BackendError> {
        match api {
            TokenizeApi::LlamaServer => {
                let (status, body) = self
                    .post_json(
                        d,
                        "/apply-template",
                        &json!({ "messages": prompt.messages }),
                        deadline,
                    )
                    .await?;
                let rendered = ok(status, &body)
                    .and_then(|v| v.get("prompt").and_then(Value::as_str).map(str::to_owned))
                    .ok_or_else(|| unexpected("/apply-template", status))?;
                let (status, body) = self
                    .post_json(
                        d,
                        "/tokenize",
                        &json!({"content": rendered, "add_special": true, "parse_special": true}),
                        deadline,
                    )
                    .await?;
                ok(status, &body)
                    .and_then(|v| v.get("tokens").and_then(Value::as_array).map(Vec::len))
                    .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
                    .ok_or_else(|| unexpected("/tokenize", status))
            }
            TokenizeApi::LlamaCppPython => {
                let rendered = prompt.rendered.ok_or_else(|| {
                    BackendError::new(FailureClass::Protocol, "no rendered prompt to count")
                })?;
                let (status, body) = self
                    .post_json(
                        d,
                        "/extras/tokenize/count",
                        &json!({"input": rendered, "model": d.model}),
                        deadline,
                    )
                    .await?;
                count_of(status, &body).ok_or_else(|| unexpected("/extras/tokenize/count", status))
            }
            TokenizeApi::Vllm => {
                let (status, body) = self
                    .post_json(
                        d,
                        "/tokenize",
                        &json!({
                            "model": d.model,
                            "messages": prompt.messages,
                            "add_generation_prompt": true,
                        }),
                        deadline,
                    )
                    .await?;
                count_of(status, &body).ok_or_else(|| unexpected("/tokenize", status))
            }
        }
    }

    /// POSTs `body` to `path` under `d`'s `api_base`; the status and the body read by `deadline`.
    async fn post_json(
        &self,
        d: &Deployment,
        path: &str,
        body: &Value,
        deadline: Instant,
    ) -> Result<(u16, Vec<u8>), BackendError> {
        let (client, auth) = self.client_of(d).ok_or_else(|| {
            BackendError::new(
                FailureClass::Protocol,
                format!("no client for {}", d.api_base),
            )
        })?;
        let url = format!("{}{path}", d.api_base);
        let uri: Uri = url.parse().map_err(|e| {
            BackendError::new(FailureClass::Connect, format!("invalid URL {url}: {e}"))
        })?;
        let mut rb =
            Request::post(uri).header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(v) = auth {
            rb = rb.header(AUTHORIZATION, v.clone());
        }
        let bytes = serde_json::to_vec(body)
            .map_err(|e| BackendError::new(FailureClass::Protocol, e.to_string()))?;
        let req = rb.body(Full::new(Bytes::from(bytes))).map_err(|e| {
            BackendError::new(
                FailureClass::Protocol,
                format!("cannot build the request: {e}"),
            )
        })?;
        let timed_out =
            || BackendError::new(FailureClass::Timeout, format!("{path}: no answer in time"));
        let resp = match tokio::time::timeout_at(deadline, client.request(req)).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => return Err(BackendError::from_transport(&e)),
            Err(_) => return Err(timed_out()),
        };
        let status = resp.status().as_u16();
        let mut data = resp.into_body().into_data_stream();
        let mut whole = Vec::new();
        loop {
            match tokio::time::timeout_at(deadline, data.next()).await {
                Ok(Some(Ok(chunk))) => {
                    whole.extend_from_slice(&chunk);
                    if whole.len() > MAX_ANSWER {
                        return Err(BackendError::new(
                            FailureClass::Protocol,
                            format!("{path}: the answer exceeded 16 MiB"),
                        ));
                    }
                }
                Ok(Some(Err(e))) => return Err(BackendError::from_body(&e)),
                Ok(None) => return Ok((status, whole)),
                Err(_) => return Err(timed_out()),
            }
        }
    }
}

fn field(body: &[u8], name: &str) -> Option<Value> {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|mut v| v.get_mut(name).map(Value::take))
}

fn ok(status: u16, body: &[u8]) -> Option<Value> {
    (status == 200)
        .then(|| serde_json::from_slice(body).ok())
        .flatten()
}

fn count_of(status: u16, body: &[u8]) -> Option<u32> {
    ok(status, body)?
        .get("count")?
        .as_u64()
        .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
}

fn unexpected(path: &str, status: u16) -> BackendError {
    BackendError::new(
        FailureClass::Protocol,
        format!("{path}: status {status} or an answer of another shape"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_by_shape() {
        assert_eq!(
            count_of(200, br#"{"count": 7, "max_model_len": 4096, "tokens": []}"#),
            Some(7)
        );
        assert_eq!(count_of(404, br#"{"count": 7}"#), None);
        assert_eq!(count_of(200, br#"{"tokens": [1, 2]}"#), None);
        assert!(field(br#"{"prompt": "x"}"#, "prompt").is_some_and(|p| p.is_string()));
        assert!(field(b"not json", "prompt").is_none());
    }
}
