//! The OpenAI chat request as clients send it, checked and turned into the router's message.
//!
//! Decoding is strict about what routing depends on (model, messages, roles, numeric ranges) and
//! lenient about the rest: fields we do not model are kept in `extra` and passed through to
//! OpenAI-compatible backends untouched.

use serde::Deserialize;
use serde_json::{Map, Value};
use switchyard_proto as pb;

use crate::error::ApiError;

#[derive(Debug, Deserialize)]
pub struct ChatCompletionRequest {
    pub model: String,
    pub messages: Vec<ChatMessage>,
    #[serde(default, deserialize_with = "null_as_false")]
    pub stream: bool,
    #[serde(default)]
    pub stream_options: Option<StreamOptions>,
    #[serde(default)]
    pub tools: Option<Vec<ToolDef>>,
    #[serde(default)]
    pub tool_choice: Option<Value>,
    #[serde(default)]
    pub response_format: Option<Value>,
    #[serde(default)]
    pub temperature: Option<f64>,
    #[serde(default)]
    pub top_p: Option<f64>,
    #[serde(default)]
    pub max_tokens: Option<u32>,
    #[serde(default)]
    pub max_completion_tokens: Option<u32>,
    #[serde(default)]
    pub stop: Option<Stop>,
    #[serde(default)]
    pub seed: Option<i64>,
    #[serde(default)]
    pub presence_penalty: Option<f64>,
    #[serde(default)]
    pub frequency_penalty: Option<f64>,
    #[serde(default)]
    pub top_k: Option<u32>,
    #[serde(default)]
    pub min_p: Option<f64>,
    #[serde(default)]
    pub repeat_penalty: Option<f64>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub n: Option<u32>,
    /// Return each output token's log probability.
    #[serde(default)]
    pub logprobs: Option<bool>,
    /// How many most likely alternatives to return per token (0-20); needs `logprobs`.
    #[serde(default)]
    pub top_logprobs: Option<u32>,
    /// Everything else (parallel_tool_calls, logit_bias, …), passed through.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn null_as_false<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(Option::<bool>::deserialize(d)?.unwrap_or(false))
}

#[derive(Debug, Deserialize)]
pub struct StreamOptions {
    #[serde(default)]
    pub include_usage: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Stop {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    Developer,
    User,
    Assistant,
    Tool,
    Function,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::Developer => "developer",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool | Role::Function => "tool",
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct ChatMessage {
    pub role: Role,
    #[serde(default)]
    pub content: Option<Content>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub tool_calls: Option<Vec<ToolCall>>,
    #[serde(default)]
    pub tool_call_id: Option<String>,
    #[serde(default, alias = "reasoning")]
    pub reasoning_content: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Parts(Vec<ContentPart>),
}

#[derive(Debug, Deserialize, serde::Serialize)]
pub struct ContentPart {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

#[derive(Debug, Deserialize)]
pub struct ToolCall {
    #[serde(default)]
    pub id: String,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    pub function: FunctionCall,
}

#[derive(Debug, Deserialize)]
pub struct FunctionCall {
    pub name: String,
    #[serde(default, deserialize_with = "arguments_as_string")]
    pub arguments: String,
}

/// OpenAI sends arguments as a JSON string; some clients send the object itself.
fn arguments_as_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => s,
        Value::Null => String::new(),
        other => other.to_string(),
    })
}

#[derive(Debug, Deserialize)]
pub struct ToolDef {
    #[serde(rename = "type", default = "function_type")]
    pub kind: String,
    pub function: FunctionDef,
}

fn function_type() -> String {
    "function".into()
}

#[derive(Debug, Deserialize)]
pub struct FunctionDef {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub parameters: Option<Value>,
    #[serde(default)]
    pub strict: Option<bool>,
}

/// A sampling value outside `lo..=hi` (or NaN) is a 400 naming it; shared by every API.
pub(crate) fn check_range(
    value: Option<f64>,
    lo: f64,
    hi: f64,
    name: &str,
) -> Result<(), ApiError> {
    match value {
        Some(v) if !(lo..=hi).contains(&v) || v.is_nan() => Err(ApiError::invalid(
            format!("{name} must be between {lo} and {hi}, got {v}"),
            Some(name),
        )),
        _ => Ok(()),
    }
}

/// Most choices (`n`) one request may ask for; each is its own routed answer.
pub const MAX_CHOICES: u32 = 16;

/// Most alternatives per token `top_logprobs` may ask for (OpenAI's and Ollama's limit).
pub const MAX_TOP_LOGPROBS: u32 = 20;

/// Checks `top_logprobs` as OpenAI does: at most 20, and (above 0) only with `logprobs: true`.
fn check_logprobs(logprobs: Option<bool>, top_logprobs: Option<u32>) -> Result<(), ApiError> {
    match top_logprobs {
        Some(n) if n > MAX_TOP_LOGPROBS => Err(ApiError::invalid(
            format!("top_logprobs must be between 0 and {MAX_TOP_LOGPROBS}, got {n}"),
            Some("top_logprobs"),
        )),
        // 0 asks for nothing more than no field would: accepted, as some clients send it.
        Some(n) if n > 0 && logprobs != Some(true) => Err(ApiError::invalid(
            "top_logprobs requires logprobs to be true",
            Some("top_logprobs"),
        )),
        _ => Ok(()),
    }
}

impl ChatCompletionRequest {
    /// How many choices the caller asked for (`n`, default 1).
    pub fn choices(&self) -> u32 {
        self.n.unwrap_or(1).max(1)
    }

    /// Checks what the schema cannot and builds the router's request.
    pub fn into_router_request(self, request_id: String) -> Result<pb::ChatRequest, ApiError> {
        if self.model.trim().is_empty() {
            return Err(ApiError::invalid("model must not be empty", Some("model")));
        }
        if self.messages.is_empty() {
            return Err(ApiError::invalid(
                "messages must contain at least one message",
                Some("messages"),
            ));
        }
        if self.n.is_some_and(|n| !(1..=MAX_CHOICES).contains(&n)) {
            return Err(ApiError::invalid(
                format!("n must be between 1 and {MAX_CHOICES}"),
                Some("n"),
            ));
        }
        for (name, v) in [
            ("max_tokens", self.max_tokens),
            ("max_completion_tokens", self.max_completion_tokens),
        ] {
            if v == Some(0) {
                return Err(ApiError::invalid(
                    format!("{name} must be at least 1"),
                    Some(name),
                ));
            }
        }
        check_range(self.temperature, 0.0, 2.0, "temperature")?;
        check_range(self.top_p, 0.0, 1.0, "top_p")?;
        check_range(self.presence_penalty, -2.0, 2.0, "presence_penalty")?;
        check_range(self.frequency_penalty, -2.0, 2.0, "frequency_penalty")?;
        check_logprobs(self.logprobs, self.top_logprobs)?;
        let mut messages = Vec::with_capacity(self.messages.len());
        for (i, m) in self.messages.into_iter().enumerate() {
            messages.push(convert_message(m, i)?);
        }
        let tools = self
            .tools
            .unwrap_or_default()
            .into_iter()
            .map(|t| pb::Tool {
                r#type: t.kind,
                name: t.function.name,
                description: t.function.description,
                parameters_json: t.function.parameters.map(|p| p.to_string()),
                strict: t.function.strict,
            })
            .collect();
        let stop = match self.stop {
            None => Vec::new(),
            Some(Stop::One(s)) => vec![s],
            Some(Stop::Many(v)) => v,
        };
        let include_usage = self
            .stream_options
            .as_ref()
            .and_then(|o| o.include_usage)
            .unwrap_or(false);
        let extra_json = if self.extra.is_empty() {
            String::new()
        } else {
            Value::Object(self.extra).to_string()
        };
        Ok(pb::ChatRequest {
            request_id,
            model: self.model,
            messages,
            tools,
            tool_choice_json: self.tool_choice.map(|v| v.to_string()),
            sampling: Some(pb::Sampling {
                temperature: self.temperature,
                top_p: self.top_p,
                max_tokens: self.max_tokens,
                max_completion_tokens: self.max_completion_tokens,
                stop,
                seed: self.seed,
                presence_penalty: self.presence_penalty,
                frequency_penalty: self.frequency_penalty,
                top_k: self.top_k,
                min_p: self.min_p,
                repeat_penalty: self.repeat_penalty,
            }),
            response_format_json: self.response_format.map(|v| v.to_string()),
            stream: self.stream,
            include_usage,
            user: self.user,
            extra_json,
            api_key_id: String::new(),
            allowed_groups: Vec::new(),
            prompt: None,
            suffix: None,
            logprobs: self.logprobs.filter(|&on| on),
            top_logprobs: self.top_logprobs.filter(|_| self.logprobs == Some(true)),
            api: "openai.chat".into(),
            ..Default::default()
        })
    }
}

fn convert_message(m: ChatMessage, i: usize) -> Result<pb::Message, ApiError> {
    let (content, content_parts_json) = match m.content {
        None => (None, None),
        Some(Content::Text(t)) => (Some(t), None),
        Some(Content::Parts(parts)) => {
            let mut text = String::new();
            let mut only_text = true;
            for (j, p) in parts.iter().enumerate() {
                match p.kind.as_str() {
                    "text" | "input_text" => {
                        let Some(t) = &p.text else {
                            return Err(ApiError::invalid(
                                format!(
                                    "messages[{i}].content[{j}]: a text part needs a \"text\" string"
                                ),
                                Some("messages"),
                            ));
                        };
                        text.push_str(t);
                    }
                    _ => only_text = false,
                }
            }
            let parts_json = if only_text {
                None
            } else {
                serde_json::to_string(&parts).ok()
            };
            (Some(text), parts_json)
        }
    };
    if content.is_none() && m.role != Role::Assistant {
        return Err(ApiError::invalid(
            format!(
                "messages[{i}].content is required for role {}",
                m.role.as_str()
            ),
            Some("messages"),
        ));
    }
    Ok(pb::Message {
        role: m.role.as_str().to_string(),
        content,
        content_parts_json,
        name: m.name,
        tool_calls: m
            .tool_calls
            .unwrap_or_default()
            .into_iter()
            .map(|c| pb::ToolCall {
                id: c.id,
                r#type: c.kind.unwrap_or_else(function_type),
                name: c.function.name,
                arguments: c.function.arguments,
            })
            .collect(),
        tool_call_id: m.tool_call_id,
        reasoning: m.reasoning_content,
    })
}
