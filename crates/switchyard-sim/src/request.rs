//! Reading generation requests: the body, Ollama's native fields and options, OpenAI's fields.
//!
//! Requests are handled as `serde_json::Value` so unknown fields are ignored (as both servers do)
//! and type errors can be reported in each server's own words.

use axum::body::Body;
use serde_json::{Map, Value};

use crate::error::{ApiError, go_syntax_error, go_type};
use crate::prompt::{Msg, PromptInput};

/// Largest request body accepted.
const BODY_LIMIT: usize = 64 * 1024 * 1024;

/// A generation request, whichever API it came through.
#[derive(Debug)]
pub(crate) struct GenRequest {
    pub model: String,
    pub input: PromptInput,
    pub stream: bool,
    pub first_tool: Option<String>,
    pub json: bool,
    pub stops: Vec<String>,
    /// num_predict / max_tokens as sent (negative = unlimited).
    pub max_output: Option<i64>,
    /// Ollama `options.num_ctx` as sent.
    pub num_ctx_sent: Option<u32>,
    /// Ollama `truncate` (default true).
    pub truncate: bool,
    /// Ollama `keep_alive` of zero: unload after this request.
    pub keep_alive_zero: bool,
    /// OpenAI `stream_options.include_usage`.
    pub include_usage: bool,
    /// Ollama `think`: `true` or a level (`"low"`, …) asks for the thinking, answered apart.
    pub think: bool,
    /// Log probabilities asked for, with this many alternatives per token (Ollama and OpenAI
    /// chat: `logprobs: true` and `top_logprobs`; OpenAI text completions: `logprobs: N`).
    pub logprobs: Option<u32>,
}

/// Reads the whole body as JSON: empty → "missing request body", bad JSON → a Go-style message.
pub(crate) async fn read_json(body: Body) -> Result<Value, ApiError> {
    let bytes = axum::body::to_bytes(body, BODY_LIMIT)
        .await
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::MissingBody);
    }
    serde_json::from_slice(&bytes).map_err(|e| ApiError::BadRequest(go_syntax_error(&bytes, &e)))
}

fn unmarshal_error(v: &Value, go_struct: &str, field: &str, go_field_type: &str) -> ApiError {
    ApiError::BadRequest(format!(
        "json: cannot unmarshal {} into Go struct field {go_struct}.{field} of type {go_field_type}",
        go_type(v)
    ))
}

fn top_object<'a>(v: &'a Value, go_struct: &str) -> Result<&'a Map<String, Value>, ApiError> {
    v.as_object().ok_or_else(|| {
        ApiError::BadRequest(format!(
            "json: cannot unmarshal {} into Go value of type api.{go_struct}",
            go_type(v)
        ))
    })
}

fn opt_string(o: &Map<String, Value>, key: &str, st: &str) -> Result<Option<String>, ApiError> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v) => Err(unmarshal_error(v, st, key, "string")),
    }
}

fn opt_bool(o: &Map<String, Value>, key: &str, st: &str) -> Result<Option<bool>, ApiError> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(v) => Err(unmarshal_error(v, st, key, "bool")),
    }
}

/// Text of a message `content`: a string, or OpenAI content parts (text parts concatenated).
fn content_text(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect(),
        _ => String::new(),
    }
}

fn messages(o: &Map<String, Value>, st: &str) -> Result<Vec<Msg>, ApiError> {
    let list = match o.get("messages") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(a)) => a,
        Some(v) => return Err(unmarshal_error(v, st, "messages", "[]api.Message")),
    };
    list.iter()
        .map(|m| {
            let mo = m
                .as_object()
                .ok_or_else(|| unmarshal_error(m, st, "messages", "api.Message"))?;
            let role = opt_string(mo, "role", "Message")?.unwrap_or_default();
            Ok(Msg {
                role: role.to_lowercase(),
                content: content_text(mo.get("content")),
            })
        })
        .collect()
}

fn tools(o: &Map<String, Value>) -> (Option<String>, Option<String>) {
    match o.get("tools") {
        Some(Value::Array(t)) if !t.is_empty() => {
            let first = t.first().and_then(|t| {
                t.pointer("/function/name")
                    .or_else(|| t.get("name"))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            });
            let json = serde_json::to_string(t).ok();
            (json, first)
        }
        _ => (None, None),
    }
}

fn stop_list(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

fn keep_alive_zero(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Number(n)) => n.as_f64() == Some(0.0),
        Some(Value::String(s)) => {
            let digits = s.trim_end_matches(|c: char| c.is_ascii_alphabetic());
            !digits.is_empty() && digits.parse::<f64>().ok() == Some(0.0)
        }
        _ => false,
    }
}

const INT_OPTIONS: [&str; 12] = [
    "num_ctx",
    "num_predict",
    "num_keep",
    "num_batch",
    "num_gpu",
    "main_gpu",
    "num_thread",
    "seed",
    "top_k",
    "repeat_last_n",
    "draft_num_predict",
    "top_logprobs",
];
const FLOAT_OPTIONS: [&str; 7] = [
    "temperature",
    "top_p",
    "min_p",
    "typical_p",
    "repeat_penalty",
    "presence_penalty",
    "frequency_penalty",
];

/// Checks option types like Ollama's `FromMap` (a wrong type is an HTTP 500 there).
fn check_options(options: &Map<String, Value>) -> Option<ApiError> {
    for (k, v) in options {
        if v.is_null() {
            continue;
        }
        let kind = if INT_OPTIONS.contains(&k.as_str()) && !v.is_number() {
            "integer"
        } else if FLOAT_OPTIONS.contains(&k.as_str()) && !v.is_number() {
            "float"
        } else if k == "stop" && !(v.is_array() || v.is_string()) {
            "array"
        } else {
            continue;
        };
        return Some(ApiError::OptionType {
            name: k.clone(),
            kind,
        });
    }
    None
}

fn as_int(v: Option<&Value>) -> Option<i64> {
    let v = v?;
    v.as_i64().or_else(|| {
        v.as_f64().map(|f| {
            // Go converts float64 option values with int(); saturating here.
            #[allow(clippy::cast_possible_truncation)]
            let i = f as i64;
            i
        })
    })
}

/// `top_logprobs`: 0-20, as both servers require.
fn top_logprobs(o: &Map<String, Value>) -> Result<u32, ApiError> {
    match as_int(o.get("top_logprobs")) {
        None => Ok(0),
        Some(n) => u32::try_from(n).ok().filter(|n| *n <= 20).ok_or_else(|| {
            ApiError::BadRequest("top_logprobs must be between 0 and 20".to_owned())
        }),
    }
}

/// Parses an Ollama `/api/chat` (`chat`) or `/api/generate` request. Errors are 400s; the second
/// value is an error Ollama raises later (after the model lookup): bad option types, bad format.
pub(crate) fn parse_ollama(
    v: &Value,
    chat: bool,
) -> Result<(GenRequest, Option<ApiError>), ApiError> {
    let st = if chat {
        "ChatRequest"
    } else {
        "GenerateRequest"
    };
    let o = top_object(v, st)?;
    let model = opt_string(o, "model", st)?
        .or(opt_string(o, "name", st)?)
        .unwrap_or_default();
    let stream = opt_bool(o, "stream", st)?.unwrap_or(true);
    let truncate = opt_bool(o, "truncate", st)?.unwrap_or(true);
    let empty = Map::new();
    let options = match o.get("options") {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(m)) => m,
        Some(other) => {
            return Err(unmarshal_error(
                other,
                st,
                "options",
                "map[string]interface {}",
            ));
        }
    };
    let mut deferred = check_options(options);
    let json = match o.get("format") {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) if s.is_empty() => false,
        Some(Value::String(s)) if s == "json" => true,
        Some(Value::Object(_)) => true,
        Some(other) => {
            if deferred.is_none() {
                deferred = Some(ApiError::InvalidFormat(other.to_string()));
            }
            false
        }
    };
    let (tools_json, first_tool) = if chat { tools(o) } else { (None, None) };
    let input = if chat {
        PromptInput::Chat {
            messages: messages(o, st)?,
            tools_json,
        }
    } else {
        let raw = opt_bool(o, "raw", st)?.unwrap_or(false);
        let system = opt_string(o, "system", st)?;
        if raw && (system.is_some() || o.get("template").is_some_and(|t| !t.is_null())) {
            return Err(ApiError::BadRequest(
                "raw mode does not support template, system, or context".to_owned(),
            ));
        }
        PromptInput::Text {
            prompt: opt_string(o, "prompt", st)?.unwrap_or_default(),
            system,
            raw,
        }
    };
    let logprobs = match opt_bool(o, "logprobs", st)? {
        Some(true) => Some(top_logprobs(o)?),
        _ => None,
    };
    let num_ctx_sent = options
        .get("num_ctx")
        .and_then(|n| as_int(Some(n)))
        .and_then(|n| u32::try_from(n).ok());
    Ok((
        GenRequest {
            model,
            input,
            stream,
            first_tool,
            json,
            stops: stop_list(options.get("stop")),
            max_output: as_int(options.get("num_predict")),
            num_ctx_sent,
            truncate,
            keep_alive_zero: keep_alive_zero(o.get("keep_alive")),
            include_usage: false,
            think: matches!(o.get("think"), Some(Value::Bool(true) | Value::String(_))),
            logprobs,
        },
        deferred,
    ))
}

/// Parses an OpenAI `/v1/chat/completions` (`chat`) or `/v1/completions` request.
/// `read_max_completion_tokens`: llama.cpp reads it; Ollama ignores it (§5.1).
pub(crate) fn parse_openai(
    v: &Value,
    chat: bool,
    read_max_completion_tokens: bool,
) -> Result<GenRequest, ApiError> {
    let st = if chat {
        "ChatCompletionRequest"
    } else {
        "CompletionRequest"
    };
    let o = top_object(v, st)?;
    let model = opt_string(o, "model", st)?.unwrap_or_default();
    let stream = opt_bool(o, "stream", st)?.unwrap_or(false);
    let (tools_json, first_tool) = if chat { tools(o) } else { (None, None) };
    let input = if chat {
        PromptInput::Chat {
            messages: messages(o, st)?,
            tools_json,
        }
    } else {
        let prompt = match o.get("prompt") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
            None | Some(Value::Null) => String::new(),
            Some(other) => return Err(unmarshal_error(other, st, "prompt", "string")),
        };
        PromptInput::Text {
            prompt,
            system: None,
            raw: false,
        }
    };
    let mut max_output = as_int(o.get("max_tokens"));
    if read_max_completion_tokens && let Some(m) = as_int(o.get("max_completion_tokens")) {
        max_output = Some(max_output.map_or(m, |x| x.min(m)));
    }
    let json = o
        .get("response_format")
        .and_then(|r| r.get("type"))
        .and_then(Value::as_str)
        .is_some_and(|t| t == "json_object" || t == "json_schema");
    let logprobs = if chat {
        match o.get("logprobs") {
            Some(Value::Bool(true)) => Some(top_logprobs(o)?),
            _ => None,
        }
    } else {
        // The legacy form: how many alternatives per token.
        as_int(o.get("logprobs")).map(|n| u32::try_from(n.clamp(0, 20)).unwrap_or(0))
    };
    let include_usage = o
        .get("stream_options")
        .and_then(|s| s.get("include_usage"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    Ok(GenRequest {
        model,
        input,
        stream,
        first_tool,
        json,
        stops: stop_list(o.get("stop")),
        max_output,
        num_ctx_sent: None,
        truncate: true,
        keep_alive_zero: false,
        include_usage,
        think: false,
        logprobs,
    })
}

/// Embedding inputs: a string or an array of strings.
pub(crate) fn embed_inputs(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}
