//! The Messages API request as Anthropic clients send it, checked and turned into the router's
//! protocol-neutral `ChatRequest` (the same message the OpenAI routes build).
//!
//! Top-level fields live here: sampling, `system`, `tools`, `tool_choice`, `metadata`,
//! `thinking`, `output_config.format` (structured output). How a message's content blocks become chat messages is [`super::content`].

use serde::Deserialize;
use serde_json::{Value, json};
use switchyard_proto as pb;

use super::content::{self, InputMessage, TextBlocks};
use crate::error::ApiError;
use crate::openai::request::check_range;

/// The client API recorded on the usage record.
pub(crate) const API: &str = "anthropic.messages";

/// `POST /v1/messages` (and, without `max_tokens`, `/v1/messages/count_tokens`). Fields we do
/// not model (`cache_control`, `service_tier`, `container`, …) are accepted and ignored.
#[derive(Debug, Deserialize)]
pub struct MessagesRequest {
    pub model: String,
    pub messages: Vec<InputMessage>,
    #[serde(default)]
    pub system: Option<TextBlocks>,
    /// Required by `/v1/messages` (checked there, with Anthropic's message); not by count_tokens.
    #[serde(default)]
    pub max_tokens: Option<u32>,
    #[serde(default)]
    pub stop_sequences: Option<Vec<String>>,
    #[serde(default)]
    pub temperature: Option<f64>,
    #[serde(default)]
    pub top_p: Option<f64>,
    #[serde(default)]
    pub top_k: Option<u32>,
    #[serde(default)]
    pub metadata: Option<Metadata>,
    #[serde(default)]
    pub tools: Option<Vec<ToolDef>>,
    #[serde(default)]
    pub tool_choice: Option<ToolChoice>,
    #[serde(default)]
    pub thinking: Option<Thinking>,
    /// Structured output (`format`); `effort` is ignored.
    #[serde(default)]
    pub output_config: Option<OutputConfig>,
    /// The structured-output beta's top-level form of `output_config.format`.
    #[serde(default)]
    pub output_format: Option<OutputFormat>,
    #[serde(default, deserialize_with = "null_as_false")]
    pub stream: bool,
}

fn null_as_false<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(Option::<bool>::deserialize(d)?.unwrap_or(false))
}

#[derive(Debug, Deserialize)]
pub struct Metadata {
    #[serde(default)]
    pub user_id: Option<String>,
}

/// A tool the model may call. Only client tools (`type` absent or `custom`) exist here: server
/// tools (web search, code execution, …) run on Anthropic's side and have no local equivalent.
#[derive(Debug, Deserialize)]
pub struct ToolDef {
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub input_schema: Option<Value>,
    #[serde(default)]
    pub strict: Option<bool>,
}

/// `tool_choice`: `{type: auto|any|tool|none}`.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ToolChoice {
    Auto {
        #[serde(default)]
        disable_parallel_tool_use: Option<bool>,
    },
    Any {
        #[serde(default)]
        disable_parallel_tool_use: Option<bool>,
    },
    Tool {
        name: String,
        #[serde(default)]
        disable_parallel_tool_use: Option<bool>,
    },
    None {},
}

impl ToolChoice {
    /// OpenAI's `tool_choice` and whether parallel calls were turned off.
    fn to_openai(&self) -> (Value, bool) {
        match self {
            ToolChoice::Auto {
                disable_parallel_tool_use: d,
            } => (json!("auto"), *d == Some(true)),
            ToolChoice::Any {
                disable_parallel_tool_use: d,
            } => (json!("required"), *d == Some(true)),
            ToolChoice::Tool {
                name,
                disable_parallel_tool_use: d,
            } => (
                json!({"type": "function", "function": {"name": name}}),
                *d == Some(true),
            ),
            ToolChoice::None {} => (json!("none"), false),
        }
    }
}

/// `thinking`: `{type: enabled, budget_tokens}`, `{type: adaptive}` or `{type: disabled}`. Not
/// passed to backends; it only decides whether the backend's reasoning is returned as
/// `thinking` blocks.
#[derive(Debug, Deserialize)]
pub struct Thinking {
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Deserialize)]
pub struct OutputConfig {
    #[serde(default)]
    pub format: Option<OutputFormat>,
}

/// `{type: json_schema, schema}`: the answer is JSON following the schema.
#[derive(Debug, Deserialize)]
pub struct OutputFormat {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub schema: Option<Value>,
}

impl OutputFormat {
    /// OpenAI's `response_format` for it.
    fn to_openai(&self) -> Result<Value, ApiError> {
        match (self.kind.as_str(), &self.schema) {
            ("json_schema", Some(schema)) => Ok(json!({
                "type": "json_schema",
                "json_schema": {"name": "output", "schema": schema, "strict": true},
            })),
            ("json_schema", None) => Err(ApiError::invalid(
                "output_config.format.schema: Field required",
                Some("output_config"),
            )),
            (other, _) => Err(ApiError::invalid(
                format!("output_config.format.type: {other:?} is not supported (json_schema is)"),
                Some("output_config"),
            )),
        }
    }
}

impl MessagesRequest {
    /// Whether the client asked for thinking blocks.
    pub fn wants_thinking(&self) -> bool {
        self.thinking.as_ref().is_some_and(|t| t.kind != "disabled")
    }

    /// A `/v1/messages` request as the router's request: `max_tokens` is required.
    pub fn into_router_request(self, request_id: String) -> Result<pb::ChatRequest, ApiError> {
        let Some(max_tokens) = self.max_tokens else {
            return Err(ApiError::invalid(
                "max_tokens: Field required",
                Some("max_tokens"),
            ));
        };
        if max_tokens == 0 {
            return Err(ApiError::invalid(
                "max_tokens: must be greater than or equal to 1",
                Some("max_tokens"),
            ));
        }
        self.into_chat(request_id, max_tokens)
    }

    /// A `/v1/messages/count_tokens` request as the router's request, for a dry run: the output
    /// is asked to be one token, so the deployment counted is the first whose window holds the
    /// prompt.
    pub fn into_count_request(self) -> Result<pb::ChatRequest, ApiError> {
        self.into_chat(String::new(), 1)
    }

    fn into_chat(self, request_id: String, max_tokens: u32) -> Result<pb::ChatRequest, ApiError> {
        if self.model.trim().is_empty() {
            return Err(ApiError::invalid("model: must not be empty", Some("model")));
        }
        if self.messages.is_empty() {
            return Err(ApiError::invalid(
                "messages: at least one message is required",
                Some("messages"),
            ));
        }
        check_range(self.temperature, 0.0, 1.0, "temperature")?;
        check_range(self.top_p, 0.0, 1.0, "top_p")?;
        let mut messages = Vec::with_capacity(self.messages.len() + 1);
        if let Some(system) = self.system {
            messages.push(pb::Message {
                role: "system".into(),
                content: Some(system.joined("system")?),
                ..Default::default()
            });
        }
        for (i, m) in self.messages.into_iter().enumerate() {
            content::convert(m, i, &mut messages)?;
        }
        let tools = convert_tools(self.tools.unwrap_or_default())?;
        let (tool_choice_json, no_parallel) = match &self.tool_choice {
            Some(c) => {
                let (v, off) = c.to_openai();
                (Some(v.to_string()), off)
            }
            None => (None, false),
        };
        let format = self
            .output_config
            .and_then(|c| c.format)
            .or(self.output_format);
        let response_format_json = match format {
            Some(f) => Some(f.to_openai()?.to_string()),
            None => None,
        };
        let extra_json = if no_parallel {
            json!({"parallel_tool_calls": false}).to_string()
        } else {
            String::new()
        };
        Ok(pb::ChatRequest {
            request_id,
            model: self.model,
            messages,
            tools,
            tool_choice_json,
            sampling: Some(pb::Sampling {
                temperature: self.temperature,
                top_p: self.top_p,
                max_tokens: Some(max_tokens),
                stop: self.stop_sequences.unwrap_or_default(),
                top_k: self.top_k,
                ..Default::default()
            }),
            response_format_json,
            stream: self.stream,
            // The message_delta event always carries usage, so the router must send it.
            include_usage: true,
            user: self.metadata.and_then(|m| m.user_id),
            extra_json,
            api: API.into(),
            ..Default::default()
        })
    }
}

fn convert_tools(tools: Vec<ToolDef>) -> Result<Vec<pb::Tool>, ApiError> {
    tools
        .into_iter()
        .enumerate()
        .map(|(i, t)| {
            if let Some(kind) = t.kind.as_deref().filter(|k| *k != "custom") {
                return Err(ApiError::invalid(
                    format!(
                        "tools[{i}]: server tools ({kind}) are not supported by this gateway; only client tools with an input_schema are"
                    ),
                    Some("tools"),
                ));
            }
            let Some(schema) = t.input_schema else {
                return Err(ApiError::invalid(
                    format!("tools[{i}].input_schema: Field required"),
                    Some("tools"),
                ));
            };
            Ok(pb::Tool {
                r#type: "function".into(),
                name: t.name,
                description: t.description,
                parameters_json: Some(schema.to_string()),
                strict: t.strict,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn parse(v: Value) -> MessagesRequest {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn max_tokens_is_required_and_fields_map() {
        let body = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
        let e = parse(body.clone())
            .into_router_request("r".into())
            .unwrap_err();
        assert_eq!(e.message, "max_tokens: Field required");
        // count_tokens needs none.
        assert!(parse(body).into_count_request().is_ok());

        let req = parse(json!({
            "model": "m", "max_tokens": 100, "system": [{"type": "text", "text": "be brief"}],
            "messages": [{"role": "user", "content": "hi"}], "stop_sequences": ["END"],
            "temperature": 0.5, "top_p": 0.9, "top_k": 40, "metadata": {"user_id": "u1"},
            "tools": [{"name": "get_weather", "description": "d", "input_schema": {"type": "object"}}],
            "tool_choice": {"type": "any", "disable_parallel_tool_use": true}, "stream": true,
        }))
        .into_router_request("r".into())
        .unwrap();
        assert_eq!(req.api, API);
        assert_eq!(req.messages[0].role, "system");
        assert_eq!(req.messages[0].content.as_deref(), Some("be brief"));
        let s = req.sampling.unwrap();
        assert_eq!(s.max_tokens, Some(100));
        assert_eq!(s.stop, vec!["END".to_string()]);
        assert_eq!(s.top_k, Some(40));
        assert_eq!(req.user.as_deref(), Some("u1"));
        assert_eq!(
            req.tools[0].parameters_json.as_deref(),
            Some(r#"{"type":"object"}"#)
        );
        assert_eq!(req.tool_choice_json.as_deref(), Some(r#""required""#));
        assert_eq!(req.extra_json, r#"{"parallel_tool_calls":false}"#);
        assert!(req.stream && req.include_usage);
    }

    #[test]
    fn tool_choice_named_and_server_tools_refused() {
        let req = parse(json!({
            "model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}],
            "tools": [{"name": "t", "input_schema": {"type": "object"}}],
            "tool_choice": {"type": "tool", "name": "t"},
        }))
        .into_router_request("r".into())
        .unwrap();
        assert_eq!(
            req.tool_choice_json.as_deref(),
            Some(r#"{"function":{"name":"t"},"type":"function"}"#)
        );
        let e = parse(json!({
            "model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}],
            "tools": [{"type": "web_search_20250305", "name": "web_search"}],
        }))
        .into_router_request("r".into())
        .unwrap_err();
        assert!(e.message.contains("server tools"), "{}", e.message);
    }

    #[test]
    fn output_config_format_is_a_json_schema_response_format() {
        let req = parse(json!({
            "model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}],
            "output_config": {"effort": "low", "format": {"type": "json_schema", "schema": {"type": "object"}}},
        }))
        .into_router_request("r".into())
        .unwrap();
        let v: Value = serde_json::from_str(req.response_format_json.as_deref().unwrap()).unwrap();
        assert_eq!(v["type"], "json_schema");
        assert_eq!(v["json_schema"]["schema"], json!({"type": "object"}));
    }

    #[test]
    fn temperature_range_is_anthropics() {
        let e = parse(json!({
            "model": "m", "max_tokens": 5, "temperature": 1.5,
            "messages": [{"role": "user", "content": "x"}],
        }))
        .into_router_request("r".into())
        .unwrap_err();
        assert_eq!(e.param.as_deref(), Some("temperature"));
    }
}
