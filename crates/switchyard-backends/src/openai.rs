//! OpenAI-compatible servers (llama.cpp's `llama-server`, llama-cpp-python, vLLM, LM Studio…):
//! `/v1/chat/completions`, streamed (SSE) for streaming callers and continuations, else one JSON
//! answer.
//!
//! The request is re-serialised from the router's message, with `stream_options.include_usage`
//! on in streams so token usage comes back (backends.md §5.3, §6.6). A stream that closes
//! without a finish reason or `[DONE]` is a failure, as is an `{"error":…}` event.

use futures::StreamExt;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use switchyard_core::FailureClass;
use switchyard_core::config::Continuation;
use switchyard_core::template::{end_of_turn, render_continuation};
use switchyard_proto as pb;

use crate::logprobs::ChoiceLogprobs;
use crate::pool::{Endpoint, LineStream};
use crate::{Attempt, BackendError, BackendEvent, Completion, EventStream};

fn message_json(m: &pb::Message) -> Value {
    let mut o = Map::with_capacity(4);
    o.insert("role".into(), Value::String(m.role.clone()));
    let content = match (&m.content_parts_json, &m.content) {
        (Some(parts), _) => serde_json::from_str(parts).unwrap_or(Value::Null),
        (None, Some(text)) => Value::String(text.clone()),
        // An assistant turn that only called tools: llama-cpp-python refuses `null` ("Input
        // should be a valid string") and its templates need the field, so it is sent empty.
        (None, None) if !m.tool_calls.is_empty() => Value::String(String::new()),
        (None, None) => Value::Null,
    };
    o.insert("content".into(), content);
    if let Some(n) = &m.name {
        o.insert("name".into(), Value::String(n.clone()));
    }
    if !m.tool_calls.is_empty() {
        let calls: Vec<Value> = m
            .tool_calls
            .iter()
            .map(|c| json!({"id": c.id, "type": if c.r#type.is_empty() { "function" } else { &c.r#type }, "function": {"name": c.name, "arguments": c.arguments}}))
            .collect();
        o.insert("tool_calls".into(), Value::Array(calls));
    }
    if let Some(id) = &m.tool_call_id {
        o.insert("tool_call_id".into(), Value::String(id.clone()));
    }
    Value::Object(o)
}

/// Sampling fields shared by chat and text completions.
fn put_sampling(body: &mut Map<String, Value>, attempt: &Attempt<'_>) {
    // The request's limit, else the deployment's (LiteLLM's `litellm_params.max_tokens`).
    if let Some(n) = attempt.max_tokens.or(attempt.deployment.max_output_tokens) {
        body.insert("max_tokens".into(), n.into());
    }
    if let Some(s) = &attempt.request.sampling {
        crate::put_sampling(body, s);
    }
}

/// A `/v1/completions` call continuing `prefix` after the conversation rendered with the model
/// family's chat template (see `switchyard_core::template`).
fn continuation_request(
    attempt: &Attempt<'_>,
    prefix: &str,
) -> Result<(Endpoint, Vec<u8>), BackendError> {
    let family = attempt.deployment.template;
    let messages = attempt
        .request
        .messages
        .iter()
        .map(|m| (m.role.as_str(), m.content.as_deref().unwrap_or("")));
    let prompt = render_continuation(family, messages, prefix);
    let mut body = Map::new();
    body.insert(
        "model".into(),
        Value::String(attempt.deployment.model.clone()),
    );
    body.insert("prompt".into(), Value::String(prompt));
    body.insert("stream".into(), Value::Bool(true));
    body.insert("stream_options".into(), json!({"include_usage": true}));
    put_sampling(&mut body, attempt);
    if attempt.request.logprobs == Some(true) {
        // The continued tokens keep their log probabilities (asked in the legacy form).
        let top = attempt.request.top_logprobs.unwrap_or(0);
        body.insert("logprobs".into(), top.into());
    }
    // The answer ends with its turn, even on a server that does not stop there by itself.
    let eot = Value::String(end_of_turn(family).to_owned());
    match body.get_mut("stop") {
        Some(Value::Array(stops)) if !stops.contains(&eot) => stops.push(eot),
        Some(_) => {}
        None => {
            body.insert("stop".into(), Value::Array(vec![eot]));
        }
    }
    let bytes = serde_json::to_vec(&Value::Object(body)).map_err(|e| {
        BackendError::new(
            FailureClass::Protocol,
            format!("cannot encode request: {e}"),
        )
    })?;
    Ok((Endpoint::Completions, bytes))
}

/// A text completion (`/v1/completions`): the caller's prompt as it is, with what earlier
/// attempts produced appended (a continuation needs no template).
fn text_request(attempt: &Attempt<'_>, prompt: &str) -> Result<(Endpoint, Vec<u8>), BackendError> {
    let req = attempt.request;
    let mut body: Map<String, Value> = if req.extra_json.is_empty() {
        Map::new()
    } else {
        serde_json::from_str(&req.extra_json).unwrap_or_default()
    };
    let mut text = prompt.to_owned();
    if let Some(prefix) = attempt.extra_assistant_prefix {
        text.push_str(prefix);
    }
    body.insert(
        "model".into(),
        Value::String(attempt.deployment.model.clone()),
    );
    body.insert("prompt".into(), Value::String(text));
    if let Some(s) = &req.suffix {
        body.insert("suffix".into(), Value::String(s.clone()));
    }
    // Echo is the gateway's to write (once, before any continuation).
    body.remove("echo");
    if req.logprobs == Some(true) {
        // The legacy field: how many alternatives per token (the chosen one always comes).
        body.insert("logprobs".into(), req.top_logprobs.unwrap_or(0).into());
    }
    let streamed = crate::streams(attempt);
    body.insert("stream".into(), Value::Bool(streamed));
    if streamed {
        body.insert("stream_options".into(), json!({"include_usage": true}));
    }
    if let Some(u) = &req.user {
        body.insert("user".into(), Value::String(u.clone()));
    }
    put_sampling(&mut body, attempt);
    let bytes = serde_json::to_vec(&Value::Object(body)).map_err(|e| {
        BackendError::new(
            FailureClass::Protocol,
            format!("cannot encode request: {e}"),
        )
    })?;
    Ok((Endpoint::Completions, bytes))
}

/// Ollama's `think` as OpenAI's `reasoning_effort`: a level (`"low"`, `"medium"`, `"high"`)
/// carries over; `true`/`false` have no OpenAI equivalent every server takes, and are left out,
/// as is `keep_alive` (OpenAI-compatible servers manage their own models).
fn reasoning_effort(req: &pb::ChatRequest) -> Option<String> {
    match crate::ollama::request_json(req.think_json.as_deref())? {
        Value::String(level) if !level.is_empty() => Some(level),
        _ => None,
    }
}

/// Builds the URL and body of a `/v1/chat/completions` call (or `/v1/completions` for a text
/// completion or a template continuation).
///
/// `continuation` is the deployment's continuation mode (its key, or what its server was found
/// to do), used when the attempt continues a partial answer.
pub(crate) fn request(
    attempt: &Attempt<'_>,
    continuation: Continuation,
) -> Result<(Endpoint, Vec<u8>), BackendError> {
    if let Some(prompt) = &attempt.request.prompt {
        return text_request(attempt, prompt);
    }
    if let (Some(prefix), Continuation::Completions) =
        (attempt.extra_assistant_prefix, continuation)
    {
        return continuation_request(attempt, prefix);
    }
    let req = attempt.request;
    let mut body: Map<String, Value> = if req.extra_json.is_empty() {
        Map::new()
    } else {
        serde_json::from_str(&req.extra_json).unwrap_or_default()
    };
    let mut messages: Vec<Value> = req.messages.iter().map(message_json).collect();
    if let Some(prefix) = attempt.extra_assistant_prefix {
        messages.push(json!({"role": "assistant", "content": prefix}));
    }
    body.insert(
        "model".into(),
        Value::String(attempt.deployment.model.clone()),
    );
    body.insert("messages".into(), Value::Array(messages));
    // A caller that does not stream gets an unstreamed backend call too: one answer to read, and
    // no stream for llama-cpp-python's `interrupt_requests` to cut when the next request arrives.
    // (vLLM rejects `stream_options` without `stream: true`.)
    let streamed = crate::streams(attempt);
    body.insert("stream".into(), Value::Bool(streamed));
    if streamed {
        body.insert("stream_options".into(), json!({"include_usage": true}));
    }
    if !req.tools.is_empty() {
        let tools: Vec<Value> = req
            .tools
            .iter()
            .map(|t| {
                let mut f = Map::new();
                f.insert("name".into(), Value::String(t.name.clone()));
                if let Some(d) = &t.description {
                    f.insert("description".into(), Value::String(d.clone()));
                }
                if let Some(p) = t.parameters_json.as_deref().and_then(|p| serde_json::from_str::<Value>(p).ok()) {
                    f.insert("parameters".into(), p);
                }
                if let Some(s) = t.strict {
                    f.insert("strict".into(), Value::Bool(s));
                }
                json!({"type": if t.r#type.is_empty() { "function" } else { &t.r#type }, "function": f})
            })
            .collect();
        body.insert("tools".into(), Value::Array(tools));
    }
    let parse = |s: &Option<String>| {
        s.as_deref()
            .and_then(|j| serde_json::from_str::<Value>(j).ok())
    };
    if let Some(tc) = parse(&req.tool_choice_json) {
        body.insert("tool_choice".into(), tc);
    }
    if let Some(rf) = parse(&req.response_format_json) {
        body.insert("response_format".into(), rf);
    }
    if let Some(u) = &req.user {
        body.insert("user".into(), Value::String(u.clone()));
    }
    if req.logprobs == Some(true) {
        body.insert("logprobs".into(), Value::Bool(true));
        if let Some(n) = req.top_logprobs {
            body.insert("top_logprobs".into(), n.into());
        }
    }
    if let Some(effort) = reasoning_effort(req)
        && !body.contains_key("reasoning_effort")
    {
        body.insert("reasoning_effort".into(), Value::String(effort));
    }
    put_sampling(&mut body, attempt);
    let bytes = serde_json::to_vec(&Value::Object(body)).map_err(|e| {
        BackendError::new(
            FailureClass::Protocol,
            format!("cannot encode request: {e}"),
        )
    })?;
    Ok((Endpoint::ChatCompletions, bytes))
}

/// One SSE chunk (`chat.completion.chunk`, `text_completion`) or one whole unstreamed answer
/// (`chat.completion`): the same envelope, with `delta` or `message` in the choices.
#[derive(Deserialize)]
struct Chunk {
    #[serde(default, deserialize_with = "crate::nullable::or_default")]
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<UsageJson>,
    #[serde(default)]
    timings: Option<Timings>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
struct Choice {
    #[serde(default)]
    delta: Option<DeltaJson>,
    /// An unstreamed answer's message: the same fields as a delta.
    #[serde(default)]
    message: Option<DeltaJson>,
    /// Text completions (`/v1/completions`) carry their text here instead of in a delta.
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    finish_reason: Option<String>,
    /// The tokens of this chunk (or answer) with their log probabilities, when asked for.
    #[serde(default, deserialize_with = "crate::nullable::or_default")]
    logprobs: Option<ChoiceLogprobs>,
}

#[derive(Deserialize)]
struct DeltaJson {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    reasoning_content: Option<String>,
    #[serde(default)]
    reasoning: Option<String>,
    #[serde(default, deserialize_with = "crate::nullable::or_default")]
    tool_calls: Vec<ToolCallJson>,
}

#[derive(Deserialize)]
struct ToolCallJson {
    /// Absent in an unstreamed message's calls (their position is their index).
    #[serde(default)]
    index: Option<u32>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<FunctionJson>,
}

#[derive(Deserialize)]
struct FunctionJson {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<String>,
}

#[derive(Deserialize)]
struct UsageJson {
    #[serde(default)]
    prompt_tokens: Option<u32>,
    #[serde(default)]
    completion_tokens: Option<u32>,
}

#[derive(Deserialize)]
struct Timings {
    #[serde(default)]
    prompt_n: Option<u32>,
    #[serde(default)]
    cache_n: Option<u32>,
    #[serde(default)]
    predicted_n: Option<u32>,
}

/// What a response has said so far: the finish reason and token counts, and which tool calls'
/// id and name the caller already has (llama-cpp-python repeats both in every chunk of a call;
/// passed on, an SDK that concatenates fragments would read `get_weatherget_weather…`).
#[derive(Default)]
struct Decoder {
    finish: Option<String>,
    prompt_tokens: Option<u32>,
    completion_tokens: Option<u32>,
    named: Vec<u32>,
}

impl Decoder {
    /// The deltas of one chunk (or of a whole answer), or the error it carries.
    fn chunk(&mut self, chunk: Chunk) -> Result<Vec<BackendEvent>, BackendError> {
        if let Some(err) = chunk.error {
            let text = crate::error::error_text(&json!({ "error": err }).to_string());
            let class = if switchyard_core::failure::mentions_context_overflow(&err.to_string()) {
                FailureClass::Overflow
            } else {
                FailureClass::StreamBroken
            };
            return Err(BackendError::new(class, text));
        }
        if let Some(u) = chunk.usage {
            self.prompt_tokens = u.prompt_tokens.or(self.prompt_tokens);
            self.completion_tokens = u.completion_tokens.or(self.completion_tokens);
        } else if let Some(t) = chunk.timings {
            if let Some(p) = t.prompt_n {
                self.prompt_tokens = Some(p + t.cache_n.unwrap_or(0));
            }
            self.completion_tokens = t.predicted_n.or(self.completion_tokens);
        }
        let mut out = Vec::new();
        for choice in chunk.choices {
            let mut logprobs_json = choice.logprobs.and_then(ChoiceLogprobs::into_json);
            if let Some(text) = choice
                .text
                .filter(|t| !t.is_empty() || logprobs_json.is_some())
            {
                out.push(BackendEvent::Delta(pb::Delta {
                    content: text,
                    reasoning: None,
                    tool_calls: Vec::new(),
                    logprobs_json: logprobs_json.take(),
                }));
            }
            if let Some(d) = choice.delta.or(choice.message) {
                let tool_calls: Vec<pb::ToolCallDelta> = d
                    .tool_calls
                    .into_iter()
                    .enumerate()
                    .map(|(i, c)| self.tool_call(i, c))
                    .collect();
                let content = d.content.unwrap_or_default();
                let reasoning = d
                    .reasoning_content
                    .or(d.reasoning)
                    .filter(|r| !r.is_empty());
                if !content.is_empty()
                    || reasoning.is_some()
                    || !tool_calls.is_empty()
                    || logprobs_json.is_some()
                {
                    out.push(BackendEvent::Delta(pb::Delta {
                        content,
                        reasoning,
                        tool_calls,
                        logprobs_json: logprobs_json.take(),
                    }));
                }
            }
            if let Some(f) = choice.finish_reason {
                self.finish = Some(f);
            }
        }
        Ok(out)
    }

    fn tool_call(&mut self, position: usize, c: ToolCallJson) -> pb::ToolCallDelta {
        let index = c.index.unwrap_or(position as u32);
        let f = c.function.unwrap_or(FunctionJson {
            name: None,
            arguments: None,
        });
        let (mut id, mut name) = (c.id.filter(|s| !s.is_empty()), f.name);
        if self.named.contains(&index) {
            // Already introduced: only the arguments continue.
            id = None;
            name = None;
        } else if name.is_some() {
            self.named.push(index);
        }
        pb::ToolCallDelta {
            index,
            id,
            name,
            arguments: f.arguments.unwrap_or_default(),
        }
    }

    /// The end of a response: `Done`, or a failure when no finish reason came.
    fn done(self) -> Result<BackendEvent, BackendError> {
        match self.finish {
            Some(finish_reason) => Ok(BackendEvent::Done(Completion {
                finish_reason,
                prompt_tokens: self.prompt_tokens,
                completion_tokens: self.completion_tokens,
            })),
            None => Err(BackendError::new(
                FailureClass::StreamBroken,
                "stream ended without a finish reason",
            )),
        }
    }
}

/// Turns SSE lines into events. The finish reason may come before the usage chunk, so `Done` is
/// emitted at `[DONE]` (or at the end of the body once a finish reason was seen).
pub(crate) fn events(mut lines: LineStream) -> EventStream {
    Box::pin(async_stream::stream! {
        let mut decoder = Decoder::default();
        loop {
            let line = match lines.next().await {
                Some(Ok(l)) => l,
                Some(Err(e)) => { yield Err(e); return; }
                None => break,
            };
            let Some(data) = line.strip_prefix(b"data:") else {
                // Comments (": ping"), event names and blank separators carry nothing for us.
                continue;
            };
            let data = data.trim_ascii();
            if data == b"[DONE]" {
                break;
            }
            let chunk: Chunk = match serde_json::from_slice(data) {
                Ok(c) => c,
                Err(e) => {
                    yield Err(BackendError::new(FailureClass::Protocol, format!("unreadable SSE chunk: {e}")));
                    return;
                }
            };
            match decoder.chunk(chunk) {
                Ok(events) => for ev in events { yield Ok(ev); },
                Err(e) => { yield Err(e); return; }
            }
        }
        yield decoder.done();
    })
}

/// The events of a whole unstreamed answer (`chat.completion` or `text_completion`).
pub(crate) fn answer(body: &[u8]) -> Vec<Result<BackendEvent, BackendError>> {
    let chunk: Chunk = match serde_json::from_slice(body) {
        Ok(c) => c,
        Err(e) => {
            return vec![Err(BackendError::new(
                FailureClass::Protocol,
                format!("unreadable answer: {e}"),
            ))];
        }
    };
    let mut decoder = Decoder::default();
    match decoder.chunk(chunk) {
        Ok(events) => {
            let mut out: Vec<_> = events.into_iter().map(Ok).collect();
            out.push(decoder.done().map_err(|mut e| {
                e.message = "answer without a finish reason".into();
                e.class = FailureClass::Protocol;
                e
            }));
            out
        }
        Err(e) => vec![Err(e)],
    }
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
    async fn parses_llama_cpp_stream_with_usage_chunk() {
        let ev: Vec<_> = events(lines(&[
            r#"data: {"choices":[{"finish_reason":null,"index":0,"delta":{"role":"assistant","content":null}}],"object":"chat.completion.chunk"}"#,
            "",
            ": ping",
            r#"data: {"choices":[{"finish_reason":null,"index":0,"delta":{"content":"Hel"}}]}"#,
            r#"data: {"choices":[{"finish_reason":"stop","index":0,"delta":{}}]}"#,
            r#"data: {"choices":[],"usage":{"completion_tokens":1,"prompt_tokens":44,"total_tokens":45}}"#,
            "data: [DONE]",
        ]))
        .collect()
        .await;
        assert_eq!(ev.len(), 2, "{ev:?}");
        assert_eq!(
            ev[1],
            Ok(BackendEvent::Done(Completion {
                finish_reason: "stop".into(),
                prompt_tokens: Some(44),
                completion_tokens: Some(1)
            }))
        );
    }

    #[tokio::test]
    async fn error_event_and_cut_stream_fail() {
        let ev: Vec<_> = events(lines(&[
            r#"data: {"choices":[{"index":0,"delta":{"content":"a"}}]}"#,
            r#"data: {"error":{"code":500,"message":"Compute error.","type":"server_error"}}"#,
        ]))
        .collect()
        .await;
        let e = ev[1].as_ref().unwrap_err();
        assert_eq!(e.class, FailureClass::StreamBroken);
        assert_eq!(e.message, "Compute error.");
        let ev: Vec<_> = events(lines(&[
            r#"data: {"choices":[{"index":0,"delta":{"content":"a"}}]}"#,
        ]))
        .collect()
        .await;
        assert_eq!(
            ev[1].as_ref().unwrap_err().class,
            FailureClass::StreamBroken
        );
    }
}

/// The request `body` with a `response_format` of type `json_schema` rewritten as
/// `{"type": "json_object", "schema": …}`, the only way llama-cpp-python takes a schema; `None`
/// when the body asks for no JSON schema.
pub(crate) fn schema_as_json_object(body: &[u8]) -> Option<Vec<u8>> {
    if !body.windows(11).any(|w| w == b"json_schema") {
        return None;
    }
    let mut v: Value = serde_json::from_slice(body).ok()?;
    let rf = v.get_mut("response_format")?;
    if rf.get("type").and_then(Value::as_str) != Some("json_schema") {
        return None;
    }
    let schema = rf
        .get("json_schema")
        .and_then(|j| j.get("schema"))
        .cloned()
        .unwrap_or_else(|| json!({}));
    *rf = json!({"type": "json_object", "schema": schema});
    serde_json::to_vec(&v).ok()
}

/// Whether an error answer says the server takes no `json_schema` response format.
pub(crate) fn refuses_json_schema(text: &str) -> bool {
    text.contains("'text' or 'json_object'")
}

#[cfg(test)]
mod schema_tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_json_schema_format_becomes_json_object_with_the_schema() {
        let body = br#"{"model":"m","response_format":{"type":"json_schema","json_schema":{"name":"w","schema":{"type":"object"}}}}"#;
        let out: Value = serde_json::from_slice(&schema_as_json_object(body).unwrap()).unwrap();
        assert_eq!(
            out["response_format"],
            json!({"type": "json_object", "schema": {"type": "object"}})
        );
        assert!(schema_as_json_object(br#"{"response_format":{"type":"json_object"}}"#).is_none());
        assert!(refuses_json_schema(
            "[{'type': 'literal_error', 'msg': \"Input should be 'text' or 'json_object'\"}]"
        ));
    }
}
