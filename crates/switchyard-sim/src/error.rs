//! Typed API errors and the body shapes each imitated server uses for them.
//!
//! Ollama native: `{"error":"text"}` (backends.md §4). Ollama `/v1/*`: `{"error":{"message","type",
//! "param","code"}}` (§5.4). llama.cpp: `{"error":{"code","message","type"}}` with the §6.5 status
//! mapping.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// Which error body shape to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ErrorStyle {
    Ollama,
    OllamaOpenAi,
    LlamaCpp,
}

/// An error answered to a client.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    #[error("missing request body")]
    MissingBody,
    /// Bad JSON or a wrong field type (Go-style text for Ollama).
    #[error("{0}")]
    BadRequest(String),
    #[error("model is required")]
    ModelRequired,
    #[error("model '{0}' not found")]
    ModelNotFound(String),
    /// A wrong-typed option: Ollama answers 500 (§1.3).
    #[error("option \"{name}\" must be of type {kind}")]
    OptionType { name: String, kind: &'static str },
    #[error("invalid format: {0}; expected \"json\" or a valid JSON Schema object")]
    InvalidFormat(String),
    /// Ollama `truncate:false` overflow.
    #[error("the input length exceeds the context length")]
    InputTooLong,
    /// llama.cpp prompt >= n_ctx.
    #[error(
        "request ({n_prompt} tokens) exceeds the available context size ({n_ctx} tokens), try increasing it"
    )]
    ExceedContext { n_prompt: u32, n_ctx: u32 },
    /// Injected by `Fault::Status`.
    #[error("{message}")]
    Injected { status: u16, message: String },
    /// A generation that failed after it started (non-stream `ErrorLineAfter`).
    #[error("{0}")]
    Runner(String),
    #[error("no model is configured")]
    NoModel,
    /// Ollama past `OLLAMA_MAX_QUEUE`: 503 with the text of server/sched.go's `ErrMaxQueue`.
    #[error("server busy, please try again.  maximum pending requests exceeded")]
    Busy,
}

/// The text of a mid-stream Ollama failure (§4).
pub(crate) const OLLAMA_RUNNER_ERROR: &str =
    "an error was encountered while running the model: unexpected EOF";
/// The llama.cpp mid-stream failure text.
pub(crate) const LLAMA_RUNNER_ERROR: &str = "Compute error.";

/// llama.cpp error `type` for a status (§6.5).
pub(crate) fn llama_type(status: u16) -> &'static str {
    match status {
        400 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        501 => "not_supported_error",
        503 => "unavailable_error",
        _ => "server_error",
    }
}

impl ApiError {
    pub(crate) fn status(&self) -> u16 {
        match self {
            Self::MissingBody
            | Self::BadRequest(_)
            | Self::ModelRequired
            | Self::InputTooLong
            | Self::ExceedContext { .. } => 400,
            Self::ModelNotFound(_) => 404,
            Self::OptionType { .. } | Self::InvalidFormat(_) | Self::Runner(_) | Self::NoModel => {
                500
            }
            Self::Injected { status, .. } => *status,
            Self::Busy => 503,
        }
    }

    /// The JSON body in `style`.
    pub(crate) fn body(&self, style: ErrorStyle) -> Value {
        let status = self.status();
        let message = self.to_string();
        match style {
            ErrorStyle::Ollama => json!({ "error": message }),
            ErrorStyle::OllamaOpenAi => {
                let kind = match status {
                    400 => "invalid_request_error",
                    404 => "not_found_error",
                    _ => "api_error",
                };
                json!({"error": {"message": message, "type": kind, "param": null, "code": null}})
            }
            ErrorStyle::LlamaCpp => match self {
                Self::ExceedContext { n_prompt, n_ctx } => json!({"error": {
                    "code": 400, "message": message, "type": "exceed_context_size_error",
                    "n_prompt_tokens": n_prompt, "n_ctx": n_ctx}}),
                _ => {
                    json!({"error": {"code": status, "message": message, "type": llama_type(status)}})
                }
            },
        }
    }

    pub(crate) fn respond(&self, style: ErrorStyle) -> Response {
        let status =
            StatusCode::from_u16(self.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(self.body(style))).into_response()
    }
}

/// Go's name for a JSON value's type, as used in `json: cannot unmarshal X into ...`.
pub(crate) fn go_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// A Go-style message for a JSON syntax error (`encoding/json`).
pub(crate) fn go_syntax_error(body: &[u8], err: &serde_json::Error) -> String {
    if err.is_eof() {
        return "unexpected EOF".to_owned();
    }
    // Find the offending character from serde's 1-based line/column.
    let text = String::from_utf8_lossy(body);
    let ch = text
        .lines()
        .nth(err.line().saturating_sub(1))
        .and_then(|l| l.chars().nth(err.column().saturating_sub(1)));
    match ch {
        Some(c) => format!("invalid character '{c}' looking for beginning of value"),
        None => "unexpected EOF".to_owned(),
    }
}
