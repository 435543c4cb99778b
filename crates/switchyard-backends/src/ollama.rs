//! Ollama's native `/api/chat`: OpenAI fields in, NDJSON events out.
//!
//! The native API is used instead of Ollama's `/v1` layer because only it carries
//! `options.num_ctx`; without it Ollama applies its own default window and silently truncates
//! (backends.md §3). `num_ctx` is always the deployment's configured window, the same value on
//! every request, so the model is never reloaded for a different context size.
//!
//! A request that came through Ollama's own API may carry `think` (passed on as given) and
//! `keep_alive` (sent instead of the deployment's); a client's `num_ctx` never is: it only
//! chose a deployment whose window is large enough (the router's `min_context`).

use std::borrow::Cow;

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use switchyard_core::FailureClass;
use switchyard_proto as pb;

use crate::logprobs::{TokenLogprob, to_json};
use crate::pool::{Endpoint, LineStream};
use crate::{Attempt, BackendError, BackendEvent, Completion, EventStream};

#[derive(Serialize)]
struct ChatBody<'a> {
    model: &'a str,
    messages: Vec<Msg<'a>>,
    stream: bool,
    options: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    format: Option<Value>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    keep_alive: Option<Cow<'a, Value>>,
    /// Ollama's `think`: `true`, `false` or a level (`"low"`, `"medium"`, `"high"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    think: Option<Value>,
    /// `false` turns Ollama's silent truncation into a 400 (Ollama ≥ 0.12.4; older ignore it).
    #[serde(skip_serializing_if = "Option::is_none")]
    truncate: Option<bool>,
    #[serde(flatten)]
    logprobs: LogprobsAsk,
}

/// Top-level `logprobs`/`top_logprobs` of `/api/chat` and `/api/generate` (Ollama ≥ 0.12.11),
/// sent only when the caller asked.
#[derive(Serialize)]
struct LogprobsAsk {
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    logprobs: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_logprobs: Option<u32>,
}

impl LogprobsAsk {
    fn of(req: &pb::ChatRequest) -> Self {
        let on = req.logprobs == Some(true);
        LogprobsAsk {
            logprobs: on,
            top_logprobs: req.top_logprobs.filter(|n| on && *n > 0),
        }
    }
}

#[derive(Serialize)]
struct Msg<'a> {
    role: &'a str,
    content: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    images: Vec<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_name: Option<&'a str>,
}

/// Images in OpenAI content parts, as the base64 payloads Ollama wants.
fn images(parts_json: Option<&str>) -> Vec<String> {
    let Some(parts) = parts_json.and_then(|p| serde_json::from_str::<Vec<Value>>(p).ok()) else {
        return Vec::new();
    };
    parts
        .iter()
        .filter_map(|p| p.get("image_url")?.get("url")?.as_str())
        .filter_map(|url| url.split_once(";base64,").map(|(_, b64)| b64.to_string()))
        .collect()
}

fn options(attempt: &Attempt<'_>) -> Value {
    let d = attempt.deployment;
    let s = attempt.request.sampling.as_ref();
    let mut o = serde_json::Map::with_capacity(d.options.len() + 8);
    for (k, v) in &d.options {
        o.insert(k.clone(), v.clone());
    }
    if let Some(w) = d.context_window {
        o.insert("num_ctx".into(), w.into());
    }
    if let Some(n) = attempt.max_tokens.or(d.max_output_tokens) {
        o.insert("num_predict".into(), n.into());
    }
    if let Some(s) = s {
        crate::put_sampling(&mut o, s);
    }
    Value::Object(o)
}

/// A verbatim JSON field of the request (`think_json`, `keep_alive_json`), parsed; one that does
/// not parse is left out rather than sent as something else.
pub(crate) fn request_json(json: Option<&str>) -> Option<Value> {
    serde_json::from_str(json?).ok()
}

/// The request's `keep_alive` when it has one, else the deployment's.
fn keep_alive<'a>(attempt: &Attempt<'a>) -> Option<Cow<'a, Value>> {
    request_json(attempt.request.keep_alive_json.as_deref())
        .map(Cow::Owned)
        .or_else(|| attempt.deployment.keep_alive.as_ref().map(Cow::Borrowed))
}

/// The request's `think`, when it is one of the values Ollama takes (a boolean or a level).
fn think(req: &pb::ChatRequest) -> Option<Value> {
    request_json(req.think_json.as_deref()).filter(|v| v.is_boolean() || v.is_string())
}

/// OpenAI `response_format` → Ollama `format`.
fn format(response_format_json: Option<&str>) -> Option<Value> {
    let rf: Value = serde_json::from_str(response_format_json?).ok()?;
    match rf.get("type")?.as_str()? {
        "json_object" => Some(Value::String("json".into())),
        "json_schema" => rf.get("json_schema")?.get("schema").cloned(),
        _ => None,
    }
}

fn tools(req: &pb::ChatRequest) -> Vec<Value> {
    req.tools
        .iter()
        .map(|t| {
            let params = t
                .parameters_json
                .as_deref()
                .and_then(|p| serde_json::from_str::<Value>(p).ok())
                .unwrap_or_else(|| serde_json::json!({"type": "object", "properties": {}}));
            serde_json::json!({
                "type": "function",
                "function": {"name": t.name, "description": t.description.as_deref().unwrap_or(""), "parameters": params}
            })
        })
        .collect()
}

#[derive(Serialize)]
struct GenerateBody<'a> {
    model: &'a str,
    prompt: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    suffix: Option<&'a str>,
    /// The prompt as it is, without the model's template. Not with a suffix: fill-in-the-middle
    /// needs the template's insert tokens, so Ollama applies it then.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    raw: bool,
    stream: bool,
    options: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    keep_alive: Option<Cow<'a, Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    think: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    truncate: Option<bool>,
    #[serde(flatten)]
    logprobs: LogprobsAsk,
}

/// A text completion: `/api/generate`, raw, with what earlier attempts produced appended.
fn generate_request(
    attempt: &Attempt<'_>,
    prompt: &str,
) -> Result<(Endpoint, Vec<u8>), BackendError> {
    let mut text = prompt.to_owned();
    if let Some(prefix) = attempt.extra_assistant_prefix {
        text.push_str(prefix);
    }
    let suffix = attempt.request.suffix.as_deref().filter(|s| !s.is_empty());
    let body = GenerateBody {
        model: &attempt.deployment.model,
        prompt: text,
        suffix,
        raw: suffix.is_none(),
        stream: crate::streams(attempt),
        options: options(attempt),
        keep_alive: keep_alive(attempt),
        think: think(attempt.request),
        truncate: if attempt.deployment.silent_truncation {
            None
        } else {
            Some(false)
        },
        logprobs: LogprobsAsk::of(attempt.request),
    };
    let bytes = serde_json::to_vec(&body).map_err(|e| {
        BackendError::new(
            FailureClass::Protocol,
            format!("cannot encode request: {e}"),
        )
    })?;
    Ok((Endpoint::OllamaGenerate, bytes))
}

/// Builds the body of an `/api/chat` call (`/api/generate` for a text completion).
pub(crate) fn request(attempt: &Attempt<'_>) -> Result<(Endpoint, Vec<u8>), BackendError> {
    if let Some(prompt) = &attempt.request.prompt {
        return generate_request(attempt, prompt);
    }
    let req = attempt.request;
    let image_lists: Vec<Vec<String>> = req
        .messages
        .iter()
        .map(|m| images(m.content_parts_json.as_deref()))
        .collect();
    let mut messages = Vec::with_capacity(req.messages.len() + 1);
    for (m, imgs) in req.messages.iter().zip(&image_lists) {
        let tool_calls = m
            .tool_calls
            .iter()
            .map(|c| {
                let args = serde_json::from_str::<Value>(&c.arguments)
                    .unwrap_or(Value::String(c.arguments.clone()));
                serde_json::json!({"function": {"name": c.name, "arguments": args}})
            })
            .collect();
        // Ollama names tool results by function; look the name up from the call id if needed.
        let tool_name = if m.role == "tool" {
            m.name.as_deref().or_else(|| {
                let id = m.tool_call_id.as_deref()?;
                req.messages
                    .iter()
                    .flat_map(|x| x.tool_calls.iter())
                    .find(|c| c.id == id)
                    .map(|c| c.name.as_str())
            })
        } else {
            None
        };
        messages.push(Msg {
            role: if m.role == "developer" {
                "system"
            } else {
                &m.role
            },
            content: m.content.as_deref().unwrap_or(""),
            images: imgs.iter().map(String::as_str).collect(),
            tool_calls,
            tool_name,
        });
    }
    if let Some(prefix) = attempt.extra_assistant_prefix {
        messages.push(Msg {
            role: "assistant",
            content: prefix,
            images: Vec::new(),
            tool_calls: Vec::new(),
            tool_name: None,
        });
    }
    let body = ChatBody {
        model: &attempt.deployment.model,
        messages,
        // A client that does not stream gets the answer in one piece: one response to read and
        // parse instead of one line per token. (A continuation is always streamed.)
        stream: crate::streams(attempt),
        options: options(attempt),
        format: format(req.response_format_json.as_deref()),
        tools: tools(req),
        keep_alive: keep_alive(attempt),
        think: think(attempt.request),
        truncate: if attempt.deployment.silent_truncation {
            None
        } else {
            Some(false)
        },
        logprobs: LogprobsAsk::of(attempt.request),
    };
    let bytes = serde_json::to_vec(&body).map_err(|e| {
        BackendError::new(
            FailureClass::Protocol,
            format!("cannot encode request: {e}"),
        )
    })?;
    Ok((Endpoint::OllamaChat, bytes))
}

#[derive(Deserialize)]
struct Chunk {
    #[serde(default)]
    message: Option<ChunkMessage>,
    /// `/api/generate`'s text.
    #[serde(default)]
    response: Option<String>,
    /// `/api/generate`'s thinking (with `think`); `/api/chat` has it in `message`.
    #[serde(default)]
    thinking: Option<String>,
    #[serde(default, deserialize_with = "crate::nullable::or_default")]
    done: bool,
    #[serde(default)]
    done_reason: Option<String>,
    #[serde(default)]
    prompt_eval_count: Option<u32>,
    #[serde(default)]
    eval_count: Option<u32>,
    #[serde(default)]
    error: Option<Value>,
    /// This chunk's tokens with their log probabilities, when asked for.
    #[serde(default, deserialize_with = "crate::nullable::or_default")]
    logprobs: Vec<TokenLogprob>,
}

#[derive(Deserialize)]
struct ChunkMessage {
    #[serde(default, deserialize_with = "crate::nullable::or_default")]
    content: String,
    #[serde(default)]
    thinking: Option<String>,
    #[serde(default, deserialize_with = "crate::nullable::or_default")]
    tool_calls: Vec<ChunkToolCall>,
}

#[derive(Deserialize)]
struct ChunkToolCall {
    #[serde(default)]
    id: Option<String>,
    #[serde(default, deserialize_with = "crate::nullable::or_default")]
    function: ChunkFunction,
}

#[derive(Default, Deserialize)]
struct ChunkFunction {
    #[serde(default, deserialize_with = "crate::nullable::or_default")]
    name: String,
    #[serde(default)]
    arguments: Value,
}

/// Turns NDJSON lines into events. A stream that ends without `done:true` is broken.
pub(crate) fn events(mut lines: LineStream) -> EventStream {
    Box::pin(async_stream::stream! {
        let mut tool_index = 0u32;
        loop {
            let line = match lines.next().await {
                Some(Ok(l)) => l,
                Some(Err(e)) => { yield Err(e); return; }
                None => {
                    yield Err(BackendError::new(FailureClass::StreamBroken, "Ollama stream ended without done:true"));
                    return;
                }
            };
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let chunk: Chunk = match serde_json::from_slice(&line) {
                Ok(c) => c,
                Err(e) => {
                    yield Err(BackendError::new(FailureClass::Protocol, format!("unreadable Ollama chunk: {e}")));
                    return;
                }
            };
            if let Some(err) = chunk.error {
                let text = err.as_str().map(str::to_string).unwrap_or_else(|| err.to_string());
                let class = if switchyard_core::failure::mentions_context_overflow(&text) {
                    FailureClass::Overflow
                } else {
                    FailureClass::StreamBroken
                };
                yield Err(BackendError::new(class, text));
                return;
            }
            let mut logprobs_json = to_json(&chunk.logprobs);
            let thinking = chunk.thinking.filter(|t| !t.is_empty());
            if let Some(text) = chunk.response.filter(|t| !t.is_empty() || thinking.is_some() || logprobs_json.is_some()) {
                yield Ok(BackendEvent::Delta(pb::Delta { content: text, reasoning: thinking, tool_calls: Vec::new(), logprobs_json: logprobs_json.take() }));
            }
            if let Some(m) = chunk.message {
                let tool_calls: Vec<pb::ToolCallDelta> = m.tool_calls.into_iter().map(|c| {
                    let index = tool_index;
                    tool_index += 1;
                    let arguments = match c.function.arguments {
                        Value::String(s) => s,
                        Value::Null => "{}".to_string(),
                        other => other.to_string(),
                    };
                    pb::ToolCallDelta {
                        index,
                        id: Some(c.id.filter(|s| !s.is_empty()).unwrap_or_else(|| format!("call_{index}"))),
                        name: Some(c.function.name),
                        arguments,
                    }
                }).collect();
                let thinking = m.thinking.filter(|t| !t.is_empty());
                if !m.content.is_empty() || thinking.is_some() || !tool_calls.is_empty() || logprobs_json.is_some() {
                    yield Ok(BackendEvent::Delta(pb::Delta { content: m.content, reasoning: thinking, tool_calls, logprobs_json: logprobs_json.take() }));
                }
            }
            if chunk.done {
                let finish_reason = match chunk.done_reason.as_deref() {
                    _ if tool_index > 0 => "tool_calls",
                    Some("length") => "length",
                    _ => "stop",
                };
                yield Ok(BackendEvent::Done(Completion {
                    finish_reason: finish_reason.to_string(),
                    prompt_tokens: chunk.prompt_eval_count,
                    completion_tokens: chunk.eval_count,
                }));
                return;
            }
        }
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use bytes::Bytes;

    fn lines(items: &[&'static str]) -> LineStream {
        Box::pin(futures::stream::iter(
            items
                .iter()
                .map(|s| Ok(Bytes::from_static(s.as_bytes())))
                .collect::<Vec<_>>(),
        ))
    }

    #[tokio::test]
    async fn parses_a_stream() {
        let ev: Vec<_> = events(lines(&[
            r#"{"model":"m","message":{"role":"assistant","content":"Hel"},"done":false}"#,
            r#"{"model":"m","message":{"role":"assistant","content":"lo"},"done":false}"#,
            r#"{"model":"m","message":{"role":"assistant","content":""},"done":true,"done_reason":"length","prompt_eval_count":26,"eval_count":2}"#,
        ]))
        .collect()
        .await;
        assert_eq!(ev.len(), 3);
        assert_eq!(
            ev[2],
            Ok(BackendEvent::Done(Completion {
                finish_reason: "length".into(),
                prompt_tokens: Some(26),
                completion_tokens: Some(2)
            }))
        );
    }

    #[tokio::test]
    async fn missing_done_or_error_line_is_a_failure() {
        let ev: Vec<_> = events(lines(&[r#"{"message":{"content":"a"},"done":false}"#]))
            .collect()
            .await;
        assert_eq!(
            ev.last().unwrap().as_ref().unwrap_err().class,
            FailureClass::StreamBroken
        );
        let ev: Vec<_> = events(lines(&[
            r#"{"error":"an error was encountered while running the model: boom"}"#,
        ]))
        .collect()
        .await;
        assert_eq!(
            ev[0].as_ref().unwrap_err().class,
            FailureClass::StreamBroken
        );
    }

    #[tokio::test]
    async fn generate_thinking_becomes_reasoning() {
        let ev: Vec<_> = events(lines(&[
            r#"{"model":"m","response":"","thinking":"Hmm","done":false}"#,
            r#"{"model":"m","response":"Hi","done":false}"#,
            r#"{"model":"m","response":"","done":true,"done_reason":"stop"}"#,
        ]))
        .collect()
        .await;
        let Ok(BackendEvent::Delta(d)) = &ev[0] else {
            panic!("{ev:?}")
        };
        assert_eq!(
            (d.content.as_str(), d.reasoning.as_deref()),
            ("", Some("Hmm"))
        );
        let Ok(BackendEvent::Delta(d)) = &ev[1] else {
            panic!("{ev:?}")
        };
        assert_eq!((d.content.as_str(), d.reasoning.as_deref()), ("Hi", None));
        assert_eq!(ev.len(), 3);
    }

    #[tokio::test]
    async fn tool_calls_become_deltas() {
        let ev: Vec<_> = events(lines(&[
            r#"{"message":{"content":"","tool_calls":[{"function":{"name":"get_weather","arguments":{"city":"Tokyo"}}}]},"done":false}"#,
            r#"{"message":{"content":""},"done":true,"done_reason":"stop"}"#,
        ]))
        .collect()
        .await;
        let Ok(BackendEvent::Delta(d)) = &ev[0] else {
            panic!("{ev:?}")
        };
        assert_eq!(d.tool_calls[0].name.as_deref(), Some("get_weather"));
        assert_eq!(d.tool_calls[0].arguments, r#"{"city":"Tokyo"}"#);
        let Ok(BackendEvent::Done(c)) = &ev[1] else {
            panic!()
        };
        assert_eq!(c.finish_reason, "tool_calls");
    }
}
