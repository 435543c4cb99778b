//! The OpenAI Responses API request (`POST /v1/responses`), turned into the router's chat request.
//!
//! n8n's OpenAI node (from version 1.3) and LangChain with `useResponsesApi` speak this API; the
//! router speaks chat. Switchyard is stateless here: `input` carries the whole conversation, so
//! it becomes chat messages (instructions first, replayed output items as assistant turns,
//! `function_call`/`function_call_output` as tool calls and tool results). Fields that need
//! stored conversations (`previous_response_id`, `conversation`) get a 400 naming the field.

use serde::Deserialize;
use serde_json::{Map, Value, json};
use switchyard_proto as pb;

use super::request::check_range;
use crate::error::ApiError;

#[derive(Debug, Deserialize)]
pub struct ResponsesRequest {
    pub model: String,
    pub input: Input,
    #[serde(default)]
    pub instructions: Option<String>,
    #[serde(default)]
    pub tools: Option<Vec<Value>>,
    #[serde(default)]
    pub tool_choice: Option<Value>,
    #[serde(default)]
    pub max_output_tokens: Option<u32>,
    #[serde(default)]
    pub temperature: Option<f64>,
    #[serde(default)]
    pub top_p: Option<f64>,
    #[serde(default)]
    pub text: Option<TextConfig>,
    #[serde(default)]
    pub stream: Option<bool>,
    #[serde(default)]
    pub metadata: Option<Map<String, Value>>,
    #[serde(default)]
    pub parallel_tool_calls: Option<bool>,
    #[serde(default)]
    pub previous_response_id: Option<String>,
    #[serde(default)]
    pub conversation: Option<Value>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub store: Option<bool>,
    /// Accepted and ignored: `reasoning`, `truncation`, `include`, `service_tier`, … .
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Input {
    Text(String),
    Items(Vec<Value>),
}

#[derive(Debug, Default, Deserialize)]
pub struct TextConfig {
    #[serde(default)]
    pub format: Option<Value>,
}

/// The request echo a response carries (`tools`, `tool_choice`, `metadata`, …).
#[derive(Debug, Clone, Default)]
pub struct Echo {
    pub model: String,
    pub instructions: Option<String>,
    pub tools: Vec<Value>,
    pub tool_choice: Value,
    pub metadata: Map<String, Value>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub max_output_tokens: Option<u32>,
    pub parallel_tool_calls: bool,
    pub text_format: Value,
}

fn invalid(message: impl Into<String>, param: &str) -> ApiError {
    ApiError::invalid(message, Some(param))
}

/// Text of content parts (`input_text`, `output_text`, `text`, `refusal`) and the chat parts they
/// become (images as `image_url`); `None` parts when the content is text only.
fn content_of(content: &Value, at: &str) -> Result<(String, Option<Vec<Value>>), ApiError> {
    let parts = match content {
        Value::String(s) => return Ok((s.clone(), None)),
        Value::Null => return Ok((String::new(), None)),
        Value::Array(parts) => parts,
        _ => {
            return Err(invalid(
                format!("{at}.content must be a string or a list of content parts"),
                "input",
            ));
        }
    };
    let mut text = String::new();
    let mut chat_parts = Vec::with_capacity(parts.len());
    let mut only_text = true;
    for (j, p) in parts.iter().enumerate() {
        let kind = p.get("type").and_then(Value::as_str).unwrap_or("");
        match kind {
            "input_text" | "output_text" | "text" | "summary_text" => {
                let t = p.get("text").and_then(Value::as_str).ok_or_else(|| {
                    invalid(
                        format!("{at}.content[{j}]: a {kind} part needs a \"text\" string"),
                        "input",
                    )
                })?;
                text.push_str(t);
                chat_parts.push(json!({"type": "text", "text": t}));
            }
            "refusal" => {
                if let Some(t) = p.get("refusal").and_then(Value::as_str) {
                    text.push_str(t);
                    chat_parts.push(json!({"type": "text", "text": t}));
                }
            }
            "input_image" => {
                let url = p
                    .get("image_url")
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        invalid(
                            format!(
                                "{at}.content[{j}]: an input_image needs an image_url (file ids need stored files, which this gateway does not keep)"
                            ),
                            "input",
                        )
                    })?;
                only_text = false;
                let mut image = json!({"url": url});
                if let Some(d) = p.get("detail") {
                    image["detail"] = d.clone();
                }
                chat_parts.push(json!({"type": "image_url", "image_url": image}));
            }
            other => {
                return Err(invalid(
                    format!("{at}.content[{j}]: content parts of type `{other}` are not supported"),
                    "input",
                ));
            }
        }
    }
    Ok((text, (!only_text).then_some(chat_parts)))
}

fn message(role: &str, content: String, parts: Option<Vec<Value>>) -> pb::Message {
    pb::Message {
        role: role.to_owned(),
        content: Some(content),
        content_parts_json: parts.map(|p| Value::Array(p).to_string()),
        ..Default::default()
    }
}

/// `function_call_output.output`: a string, or a list of parts whose text is joined.
fn output_text(output: Option<&Value>, at: &str) -> Result<String, ApiError> {
    match output {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(v @ Value::Array(_)) => content_of(v, at).map(|(t, _)| t),
        Some(other) => Ok(other.to_string()),
    }
}

fn str_field<'a>(item: &'a Value, key: &str, at: &str) -> Result<&'a str, ApiError> {
    item.get(key).and_then(Value::as_str).ok_or_else(|| {
        invalid(
            format!("{at}: a {} item needs a \"{key}\" string", kind_of(item)),
            "input",
        )
    })
}

fn kind_of(item: &Value) -> &str {
    item.get("type")
        .and_then(Value::as_str)
        .unwrap_or("message")
}

/// Appends one input item to the chat messages.
fn push_item(messages: &mut Vec<pb::Message>, item: &Value, i: usize) -> Result<(), ApiError> {
    let at = format!("input[{i}]");
    if !item.is_object() {
        return Err(invalid(format!("{at} must be an object"), "input"));
    }
    match kind_of(item) {
        "message" => {
            let role = str_field(item, "role", &at)?;
            // `developer` is OpenAI's new name for `system`; several local servers reject it.
            let role = match role {
                "developer" | "system" => "system",
                "user" => "user",
                "assistant" => "assistant",
                other => {
                    return Err(invalid(
                        format!(
                            "{at}.role: unknown role `{other}` (expected user, assistant, system or developer)"
                        ),
                        "input",
                    ));
                }
            };
            let (text, parts) = content_of(item.get("content").unwrap_or(&Value::Null), &at)?;
            messages.push(message(role, text, parts));
        }
        "function_call" => {
            let call = pb::ToolCall {
                id: str_field(item, "call_id", &at)?.to_owned(),
                r#type: "function".into(),
                name: str_field(item, "name", &at)?.to_owned(),
                arguments: match item.get("arguments") {
                    Some(Value::String(s)) => s.clone(),
                    None | Some(Value::Null) => String::new(),
                    Some(other) => other.to_string(),
                },
            };
            // Calls made in one turn belong to one assistant message.
            match messages.last_mut() {
                Some(last) if last.role == "assistant" && last.tool_call_id.is_none() => {
                    last.tool_calls.push(call);
                }
                // Empty text, not none: llama-cpp-python refuses an assistant message whose
                // content is null (422/500) or absent (its template reads `message.content`).
                _ => messages.push(pb::Message {
                    role: "assistant".into(),
                    content: Some(String::new()),
                    tool_calls: vec![call],
                    ..Default::default()
                }),
            }
        }
        "function_call_output" => {
            let call_id = str_field(item, "call_id", &at)?.to_owned();
            messages.push(pb::Message {
                role: "tool".into(),
                content: Some(output_text(item.get("output"), &at)?),
                tool_call_id: Some(call_id),
                ..Default::default()
            });
        }
        // Replayed reasoning carries nothing a local model can use.
        "reasoning" => {}
        "item_reference" => {
            return Err(invalid(
                format!(
                    "{at}: item_reference needs stored responses, which this gateway does not keep; send the item itself"
                ),
                "input",
            ));
        }
        other => {
            return Err(invalid(
                format!("{at}: input items of type `{other}` are not supported"),
                "input",
            ));
        }
    }
    Ok(())
}

/// Flat function tools (`{type:"function", name, parameters, strict, description}`).
fn tool_of(t: &Value, i: usize) -> Result<pb::Tool, ApiError> {
    let kind = t.get("type").and_then(Value::as_str).unwrap_or("function");
    if kind != "function" {
        return Err(invalid(
            format!(
                "tools[{i}]: tools of type `{kind}` run on OpenAI's servers and are not available here; only function tools are"
            ),
            "tools",
        ));
    }
    // Chat's nested shape is accepted too.
    let f = t.get("function").unwrap_or(t);
    let name = f
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(format!("tools[{i}]: a function tool needs a name"), "tools"))?;
    Ok(pb::Tool {
        r#type: "function".into(),
        name: name.to_owned(),
        description: f
            .get("description")
            .and_then(Value::as_str)
            .map(str::to_owned),
        parameters_json: f
            .get("parameters")
            .filter(|p| !p.is_null())
            .map(Value::to_string),
        strict: f.get("strict").and_then(Value::as_bool),
    })
}

/// Responses `tool_choice` in chat's shape.
fn chat_tool_choice(tc: &Value) -> Result<Value, ApiError> {
    match tc {
        Value::String(_) => Ok(tc.clone()),
        Value::Object(o) => match o.get("type").and_then(Value::as_str) {
            Some("function") => {
                let name = o.get("name").and_then(Value::as_str).ok_or_else(|| {
                    invalid("tool_choice: a function choice needs a name", "tool_choice")
                })?;
                Ok(json!({"type": "function", "function": {"name": name}}))
            }
            Some("allowed_tools") => Ok(o
                .get("mode")
                .cloned()
                .unwrap_or_else(|| Value::String("auto".into()))),
            other => Err(invalid(
                format!(
                    "tool_choice: `{}` is not supported here; use none, auto, required or a function",
                    other.unwrap_or("?")
                ),
                "tool_choice",
            )),
        },
        _ => Err(invalid(
            "tool_choice must be a string or an object",
            "tool_choice",
        )),
    }
}

/// `text.format` as chat's `response_format`.
fn response_format(format: &Value) -> Result<Option<Value>, ApiError> {
    match format.get("type").and_then(Value::as_str) {
        None | Some("text") => Ok(None),
        Some("json_object") => Ok(Some(json!({"type": "json_object"}))),
        Some("json_schema") => {
            let mut schema = Map::new();
            for key in ["name", "schema", "description", "strict"] {
                if let Some(v) = format.get(key) {
                    schema.insert(key.into(), v.clone());
                }
            }
            if !schema.contains_key("schema") {
                return Err(invalid(
                    "text.format: a json_schema format needs a schema",
                    "text.format",
                ));
            }
            schema
                .entry("name")
                .or_insert_with(|| Value::String("response".into()));
            Ok(Some(
                json!({"type": "json_schema", "json_schema": Value::Object(schema)}),
            ))
        }
        Some(other) => Err(invalid(
            format!("text.format: unknown format type `{other}`"),
            "text.format",
        )),
    }
}

impl ResponsesRequest {
    /// Number of messages `input` will become (for `gateway.max_messages`).
    pub fn item_count(&self) -> usize {
        match &self.input {
            Input::Text(_) => 1,
            Input::Items(items) => items.len(),
        }
    }

    /// Checks the request and builds the router's chat request, plus what the response echoes.
    pub fn into_router_request(
        self,
        request_id: String,
    ) -> Result<(pb::ChatRequest, Echo), ApiError> {
        if self.model.trim().is_empty() {
            return Err(ApiError::invalid("model must not be empty", Some("model")));
        }
        if self.previous_response_id.is_some() {
            return Err(invalid(
                "previous_response_id: this gateway does not store responses; send the whole conversation in `input`",
                "previous_response_id",
            ));
        }
        if self.conversation.as_ref().is_some_and(|c| !c.is_null()) {
            return Err(invalid(
                "conversation: this gateway does not store conversations; send the whole conversation in `input`",
                "conversation",
            ));
        }
        // Both need responses kept on the server: a background response is fetched later by id,
        // a prompt is a template stored at OpenAI. Served in line, they would only look like it.
        if self
            .rest
            .get("background")
            .is_some_and(|b| b == &Value::Bool(true))
        {
            return Err(invalid(
                "background: this gateway does not store responses to fetch later; send the request without it",
                "background",
            ));
        }
        if self.rest.get("prompt").is_some_and(|p| !p.is_null()) {
            return Err(invalid(
                "prompt: prompt templates are stored at OpenAI and not available here; send the text in `input` and `instructions`",
                "prompt",
            ));
        }
        if self.max_output_tokens == Some(0) {
            return Err(invalid(
                "max_output_tokens must be at least 1",
                "max_output_tokens",
            ));
        }
        check_range(self.temperature, 0.0, 2.0, "temperature")?;
        check_range(self.top_p, 0.0, 1.0, "top_p")?;
        let mut messages = Vec::new();
        if let Some(i) = self.instructions.as_ref().filter(|i| !i.is_empty()) {
            messages.push(message("system", i.clone(), None));
        }
        match &self.input {
            Input::Text(t) => messages.push(message("user", t.clone(), None)),
            Input::Items(items) => {
                for (i, item) in items.iter().enumerate() {
                    push_item(&mut messages, item, i)?;
                }
            }
        }
        if messages.is_empty() {
            return Err(invalid("input must contain at least one item", "input"));
        }
        let raw_tools = self.tools.unwrap_or_default();
        let tools = raw_tools
            .iter()
            .enumerate()
            .map(|(i, t)| tool_of(t, i))
            .collect::<Result<Vec<_>, _>>()?;
        let tool_choice = self
            .tool_choice
            .as_ref()
            .map(chat_tool_choice)
            .transpose()?;
        if let Some(name) = tool_choice
            .as_ref()
            .and_then(|tc| tc.pointer("/function/name"))
            .and_then(Value::as_str)
            && !tools.iter().any(|t| t.name == name)
        {
            // OpenAI refuses this too; passed on, a backend would answer in text or fail.
            return Err(invalid(
                format!("tool_choice: the function `{name}` is not among `tools`"),
                "tool_choice",
            ));
        }
        let format = self.text.and_then(|t| t.format);
        let response_format = format.as_ref().map(response_format).transpose()?.flatten();
        let mut extra = Map::new();
        if let Some(p) = self.parallel_tool_calls
            && !tools.is_empty()
        {
            extra.insert("parallel_tool_calls".into(), Value::Bool(p));
        }
        let echo = Echo {
            model: self.model.clone(),
            instructions: self.instructions,
            tools: raw_tools,
            tool_choice: self
                .tool_choice
                .unwrap_or_else(|| Value::String("auto".into())),
            metadata: self.metadata.unwrap_or_default(),
            temperature: self.temperature,
            top_p: self.top_p,
            max_output_tokens: self.max_output_tokens,
            parallel_tool_calls: self.parallel_tool_calls.unwrap_or(true),
            text_format: format.unwrap_or_else(|| json!({"type": "text"})),
        };
        let req = pb::ChatRequest {
            request_id,
            model: self.model,
            messages,
            tools,
            tool_choice_json: tool_choice.map(|v| v.to_string()),
            sampling: Some(pb::Sampling {
                temperature: self.temperature,
                top_p: self.top_p,
                max_tokens: self.max_output_tokens,
                ..Default::default()
            }),
            response_format_json: response_format.map(|v| v.to_string()),
            stream: self.stream.unwrap_or(false),
            include_usage: true,
            user: self.user,
            extra_json: if extra.is_empty() {
                String::new()
            } else {
                Value::Object(extra).to_string()
            },
            api_key_id: String::new(),
            allowed_groups: Vec::new(),
            api: "openai.responses".into(),
            prompt: None,
            suffix: None,
            ..Default::default()
        };
        Ok((req, echo))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn convert(v: Value) -> Result<(pb::ChatRequest, Echo), ApiError> {
        serde_json::from_value::<ResponsesRequest>(v)
            .unwrap()
            .into_router_request("r1".into())
    }

    #[test]
    fn string_input_and_instructions_become_system_and_user() {
        let (req, _) =
            convert(json!({"model": "m", "input": "hi", "instructions": "be brief"})).unwrap();
        let roles: Vec<_> = req.messages.iter().map(|m| m.role.as_str()).collect();
        assert_eq!(roles, ["system", "user"]);
        assert_eq!(req.messages[1].content.as_deref(), Some("hi"));
        assert!(req.include_usage);
    }

    #[test]
    fn tool_round_trip_items_become_assistant_tool_calls_and_tool_results() {
        let (req, _) = convert(json!({"model": "m", "input": [
            {"role": "user", "content": "weather?"},
            {"type": "reasoning", "id": "rs_1", "summary": []},
            {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "get", "arguments": "{\"city\":\"Oslo\"}", "status": "completed"},
            {"type": "function_call", "call_id": "call_2", "name": "get", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "call_1", "output": "cold"},
            {"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
             "content": [{"type": "output_text", "text": "It is cold.", "annotations": []}]},
            {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "x"}]}
        ]}))
        .unwrap();
        let roles: Vec<_> = req.messages.iter().map(|m| m.role.as_str()).collect();
        assert_eq!(roles, ["user", "assistant", "tool", "assistant", "system"]);
        assert_eq!(req.messages[1].tool_calls.len(), 2);
        assert_eq!(req.messages[1].content.as_deref(), Some(""));
        assert_eq!(req.messages[1].tool_calls[0].id, "call_1");
        assert_eq!(req.messages[2].tool_call_id.as_deref(), Some("call_1"));
        assert_eq!(req.messages[3].content.as_deref(), Some("It is cold."));
    }

    #[test]
    fn flat_tools_named_choice_and_json_schema_map_to_chat() {
        let (req, echo) = convert(json!({"model": "m", "input": "x",
            "tools": [{"type": "function", "name": "get", "parameters": {"type": "object"}, "strict": false}],
            "tool_choice": {"type": "function", "name": "get"},
            "text": {"format": {"type": "json_schema", "name": "out", "schema": {"type": "object"}}},
            "max_output_tokens": 7}))
        .unwrap();
        assert_eq!(req.tools[0].name, "get");
        let tc: Value = serde_json::from_str(req.tool_choice_json.as_deref().unwrap()).unwrap();
        assert_eq!(tc["function"]["name"], "get");
        let rf: Value = serde_json::from_str(req.response_format_json.as_deref().unwrap()).unwrap();
        assert_eq!(rf["json_schema"]["name"], "out");
        assert_eq!(req.sampling.unwrap().max_tokens, Some(7));
        assert_eq!(echo.tools.len(), 1);
    }

    #[test]
    fn stateful_and_hosted_features_get_400_naming_the_field() {
        let e = convert(json!({"model": "m", "input": "x", "previous_response_id": "resp_1"}))
            .unwrap_err();
        assert_eq!(e.param.as_deref(), Some("previous_response_id"));
        let e = convert(json!({"model": "m", "input": "x", "tools": [{"type": "web_search"}]}))
            .unwrap_err();
        assert_eq!(e.param.as_deref(), Some("tools"));
        let e = convert(json!({"model": "m", "input": [{"type": "item_reference", "id": "x"}]}))
            .unwrap_err();
        assert_eq!(e.param.as_deref(), Some("input"));
        let e = convert(json!({"model": "m", "input": []})).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("input"));
        let e = convert(json!({"model": "m", "input": "x", "background": true})).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("background"));
        assert!(convert(json!({"model": "m", "input": "x", "background": false})).is_ok());
        let e =
            convert(json!({"model": "m", "input": "x", "prompt": {"id": "pmpt_1"}})).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("prompt"));
    }

    #[test]
    fn a_named_choice_must_name_one_of_the_tools() {
        let tools = json!([{"type": "function", "name": "get", "parameters": {"type": "object"}}]);
        let e = convert(json!({"model": "m", "input": "x", "tools": tools,
            "tool_choice": {"type": "function", "name": "nope"}}))
        .unwrap_err();
        assert_eq!(e.param.as_deref(), Some("tool_choice"));
        assert!(e.message.contains("`nope`"), "{}", e.message);
        let e = convert(json!({"model": "m", "input": "x",
            "tool_choice": {"type": "function", "name": "get"}}))
        .unwrap_err();
        assert_eq!(e.param.as_deref(), Some("tool_choice"));
        assert!(
            convert(json!({"model": "m", "input": "x", "tools": tools, "tool_choice": "required"}))
                .is_ok()
        );
    }
}
