//! Ollama's `/api/chat` and `/api/generate` bodies as clients send them, turned into the router's
//! `ChatRequest`.
//!
//! Field names follow Ollama's `api/types.go`. What routing needs is checked; the options we do
//! not model (`num_gpu`, `mirostat`, …) are accepted and ignored, as they describe how a server
//! runs a model and the deployment's own settings decide that. `options.num_ctx` is a request
//! for at least that much window (`min_context`); the window sent to a backend stays the
//! deployment's own.

use serde::Deserialize;
use serde_json::{Value, json};
use switchyard_proto as pb;

use crate::error::ApiError;
use crate::openai::request::MAX_TOP_LOGPROBS;

/// Ollama's `stream` defaults to true.
fn default_true() -> bool {
    true
}

/// `stream: null` reads as the default (true).
fn null_as_true<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(Option::<bool>::deserialize(d)?.unwrap_or(true))
}

/// `options`: the sampling fields we pass on, and `num_ctx`.
#[derive(Debug, Default, Deserialize)]
pub struct Options {
    #[serde(default)]
    pub num_ctx: Option<i64>,
    #[serde(default)]
    pub num_predict: Option<i64>,
    #[serde(default)]
    pub temperature: Option<f64>,
    #[serde(default)]
    pub top_p: Option<f64>,
    #[serde(default)]
    pub top_k: Option<i64>,
    #[serde(default)]
    pub min_p: Option<f64>,
    #[serde(default)]
    pub seed: Option<i64>,
    #[serde(default)]
    pub stop: Option<StopList>,
    #[serde(default)]
    pub repeat_penalty: Option<f64>,
    #[serde(default)]
    pub presence_penalty: Option<f64>,
    #[serde(default)]
    pub frequency_penalty: Option<f64>,
}

/// `stop`: Ollama takes a list; a single string is accepted too.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum StopList {
    One(String),
    Many(Vec<String>),
}

/// A tool call as Ollama writes it: arguments are an object, not a string.
#[derive(Debug, Deserialize)]
pub struct ToolCall {
    #[serde(default)]
    pub id: Option<String>,
    pub function: ToolCallFunction,
}

#[derive(Debug, Deserialize)]
pub struct ToolCallFunction {
    pub name: String,
    #[serde(default)]
    pub arguments: Value,
}

/// One chat message.
#[derive(Debug, Deserialize)]
pub struct Message {
    pub role: String,
    #[serde(default)]
    pub content: Option<String>,
    /// Base64 images.
    #[serde(default)]
    pub images: Option<Vec<String>>,
    #[serde(default)]
    pub thinking: Option<String>,
    #[serde(default)]
    pub tool_calls: Option<Vec<ToolCall>>,
    /// On a `tool` message: which tool answered.
    #[serde(default)]
    pub tool_name: Option<String>,
    #[serde(default)]
    pub tool_call_id: Option<String>,
}

/// A tool definition (OpenAI's shape, which Ollama uses).
#[derive(Debug, Deserialize)]
pub struct Tool {
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    pub function: ToolFunction,
}

#[derive(Debug, Deserialize)]
pub struct ToolFunction {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub parameters: Option<Value>,
}

/// What `/api/chat` and `/api/generate` share.
#[derive(Debug, Deserialize)]
pub struct Common {
    pub model: String,
    #[serde(default = "default_true", deserialize_with = "null_as_true")]
    pub stream: bool,
    #[serde(default)]
    pub format: Option<Value>,
    #[serde(default)]
    pub options: Option<Options>,
    #[serde(default)]
    pub keep_alive: Option<Value>,
    #[serde(default)]
    pub think: Option<Value>,
    /// Return each output token's log probability (Ollama ≥ 0.12.11).
    #[serde(default)]
    pub logprobs: Option<bool>,
    /// How many most likely alternatives per token (0-20), with `logprobs`.
    #[serde(default)]
    pub top_logprobs: Option<u32>,
}

/// `POST /api/chat`.
#[derive(Debug, Deserialize)]
pub struct ChatBody {
    #[serde(flatten)]
    pub common: Common,
    #[serde(default)]
    pub messages: Vec<Message>,
    #[serde(default)]
    pub tools: Option<Vec<Tool>>,
}

/// `POST /api/generate`. `template` and `context` are not read: the deployment's own chat
/// template applies, and a conversation is continued with `/api/chat`.
#[derive(Debug, Deserialize)]
pub struct GenerateBody {
    #[serde(flatten)]
    pub common: Common,
    #[serde(default)]
    pub prompt: Option<String>,
    #[serde(default)]
    pub suffix: Option<String>,
    #[serde(default)]
    pub system: Option<String>,
    #[serde(default)]
    pub images: Option<Vec<String>>,
    /// The prompt is sent as it is, without a chat template (a text completion).
    #[serde(default)]
    pub raw: Option<bool>,
}

/// The MIME type of a base64 image, from its first bytes (PNG when unknown).
fn image_mime(b64: &str) -> &'static str {
    if b64.starts_with("/9j/") {
        "image/jpeg"
    } else if b64.starts_with("R0lGOD") {
        "image/gif"
    } else if b64.starts_with("UklGR") {
        "image/webp"
    } else {
        "image/png"
    }
}

/// Text plus images as OpenAI content parts (images as `data:` URLs, which the Ollama backend
/// turns back into base64 images); `None` without images.
fn content_parts(text: &str, images: &[String]) -> Option<String> {
    if images.is_empty() {
        return None;
    }
    let mut parts = vec![json!({"type": "text", "text": text})];
    for img in images {
        let url = format!("data:{};base64,{img}", image_mime(img));
        parts.push(json!({"type": "image_url", "image_url": {"url": url}}));
    }
    Some(Value::Array(parts).to_string())
}

/// Ollama's `format` as OpenAI's `response_format`: `"json"` or a JSON schema.
fn response_format(format: Option<&Value>) -> Result<Option<String>, ApiError> {
    match format {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) if s == "json" => {
            Ok(Some(json!({"type": "json_object"}).to_string()))
        }
        Some(schema @ Value::Object(_)) => Ok(Some(
            json!({"type": "json_schema", "json_schema": {"name": "response", "schema": schema}})
                .to_string(),
        )),
        Some(other) => Err(ApiError::invalid(
            format!("invalid format: {other}; expected \"json\" or a JSON schema"),
            Some("format"),
        )),
    }
}

fn sampling(o: &Options) -> pb::Sampling {
    let stop = match &o.stop {
        None => Vec::new(),
        Some(StopList::One(s)) => vec![s.clone()],
        Some(StopList::Many(v)) => v.clone(),
    };
    pb::Sampling {
        temperature: o.temperature,
        top_p: o.top_p,
        // Ollama's -1 (no limit) and -2 (fill the context) leave the limit to the router.
        max_tokens: o
            .num_predict
            .filter(|&n| n > 0)
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX)),
        stop,
        seed: o.seed,
        presence_penalty: o.presence_penalty,
        frequency_penalty: o.frequency_penalty,
        top_k: o
            .top_k
            .filter(|&k| k > 0)
            .and_then(|k| u32::try_from(k).ok()),
        min_p: o.min_p,
        repeat_penalty: o.repeat_penalty,
        ..Default::default()
    }
}

/// `num_ctx` as the smallest window wanted (absent or non-positive: no constraint).
pub(crate) fn min_context(options: Option<&Options>) -> Option<u32> {
    options
        .and_then(|o| o.num_ctx)
        .filter(|&n| n > 0)
        .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
}

impl Common {
    /// The router's request with these fields filled (messages and the rest by the caller).
    fn base(&self, request_id: String, api: &str) -> Result<pb::ChatRequest, ApiError> {
        if self.model.trim().is_empty() {
            return Err(ApiError::invalid("model is required", Some("model")));
        }
        let options = self.options.as_ref();
        let logprobs = self.logprobs == Some(true);
        if let Some(n) = self.top_logprobs.filter(|&n| n > MAX_TOP_LOGPROBS) {
            return Err(ApiError::invalid(
                format!("top_logprobs must be between 0 and {MAX_TOP_LOGPROBS}, got {n}"),
                Some("top_logprobs"),
            ));
        }
        Ok(pb::ChatRequest {
            request_id,
            model: self.model.clone(),
            sampling: Some(options.map(sampling).unwrap_or_default()),
            response_format_json: response_format(self.format.as_ref())?,
            stream: self.stream,
            include_usage: true,
            api: api.into(),
            min_context: min_context(options),
            think_json: self
                .think
                .as_ref()
                .filter(|v| !v.is_null())
                .map(Value::to_string),
            keep_alive_json: self
                .keep_alive
                .as_ref()
                .filter(|v| !v.is_null())
                .map(Value::to_string),
            logprobs: logprobs.then_some(true),
            top_logprobs: self.top_logprobs.filter(|&n| logprobs && n > 0),
            ..Default::default()
        })
    }
}

/// Tool-call ids for a conversation: Ollama's messages carry none, OpenAI-compatible backends
/// need each `tool` answer tied to its call. Calls get `call_<message>_<n>`; a `tool` message
/// takes the first unanswered call of the same name (else the first unanswered one).
struct CallIds {
    open: Vec<(String, String)>,
}

impl CallIds {
    fn call(&mut self, given: Option<String>, name: &str, msg: usize, n: usize) -> String {
        let id = given
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| format!("call_{msg}_{n}"));
        self.open.push((id.clone(), name.to_owned()));
        id
    }

    fn answer(&mut self, given: Option<String>, name: Option<&str>) -> Option<String> {
        if let Some(id) = given.filter(|s| !s.is_empty()) {
            self.open.retain(|(open, _)| *open != id);
            return Some(id);
        }
        let at = name
            .and_then(|n| self.open.iter().position(|(_, open)| open == n))
            .or(if self.open.is_empty() { None } else { Some(0) })?;
        Some(self.open.remove(at).0)
    }
}

fn convert_messages(messages: Vec<Message>) -> Result<Vec<pb::Message>, ApiError> {
    let mut ids = CallIds { open: Vec::new() };
    let mut out = Vec::with_capacity(messages.len());
    for (i, m) in messages.into_iter().enumerate() {
        let role = match m.role.as_str() {
            "system" | "user" | "assistant" | "tool" => m.role.clone(),
            "developer" => "system".into(),
            other => {
                return Err(ApiError::invalid(
                    format!("messages[{i}].role: unknown role \"{other}\""),
                    Some("messages"),
                ));
            }
        };
        let text = m.content.unwrap_or_default();
        let parts = content_parts(&text, m.images.as_deref().unwrap_or_default());
        let tool_calls = m
            .tool_calls
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(n, c)| pb::ToolCall {
                id: ids.call(c.id, &c.function.name, i, n),
                r#type: "function".into(),
                arguments: match c.function.arguments {
                    Value::String(s) => s,
                    Value::Null => "{}".into(),
                    v => v.to_string(),
                },
                name: c.function.name,
            })
            .collect();
        let (name, tool_call_id) = if role == "tool" {
            let id = ids.answer(m.tool_call_id, m.tool_name.as_deref());
            (m.tool_name, id)
        } else {
            (None, None)
        };
        out.push(pb::Message {
            role,
            content: Some(text),
            content_parts_json: parts,
            name,
            tool_calls,
            tool_call_id,
            reasoning: m.thinking.filter(|t| !t.is_empty()),
        });
    }
    Ok(out)
}

impl ChatBody {
    /// The router's request.
    pub fn into_router_request(self, request_id: String) -> Result<pb::ChatRequest, ApiError> {
        let mut req = self.common.base(request_id, "ollama.chat")?;
        req.messages = convert_messages(self.messages)?;
        req.tools = self
            .tools
            .unwrap_or_default()
            .into_iter()
            .map(|t| pb::Tool {
                r#type: t.kind.unwrap_or_else(|| "function".into()),
                name: t.function.name,
                description: t.function.description,
                parameters_json: t.function.parameters.map(|p| p.to_string()),
                strict: None,
            })
            .collect();
        Ok(req)
    }
}

impl GenerateBody {
    /// Whether there is nothing to generate (Ollama then only loads the model).
    pub fn is_load_only(&self) -> bool {
        self.prompt.as_deref().unwrap_or_default().is_empty()
            && self.images.as_ref().is_none_or(Vec::is_empty)
    }

    /// The router's request: a chat of the system text and the prompt, or with `raw` (or a
    /// `suffix`) a text completion of the prompt as it is.
    pub fn into_router_request(self, request_id: String) -> Result<pb::ChatRequest, ApiError> {
        let mut req = self.common.base(request_id, "ollama.generate")?;
        let prompt = self.prompt.unwrap_or_default();
        let images = self.images.unwrap_or_default();
        let text_completion = self.raw == Some(true) || self.suffix.is_some();
        if text_completion && !images.is_empty() {
            return Err(ApiError::invalid(
                "images are not supported with raw or suffix",
                Some("images"),
            ));
        }
        if let Some(system) = self.system.filter(|s| !s.is_empty() && !text_completion) {
            req.messages.push(pb::Message {
                role: "system".into(),
                content: Some(system),
                ..Default::default()
            });
        }
        req.messages.push(pb::Message {
            role: "user".into(),
            content_parts_json: content_parts(&prompt, &images),
            content: Some(prompt.clone()),
            ..Default::default()
        });
        if text_completion {
            req.prompt = Some(prompt);
            req.suffix = self.suffix;
        }
        Ok(req)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn chat(v: Value) -> pb::ChatRequest {
        serde_json::from_value::<ChatBody>(v)
            .unwrap()
            .into_router_request("r".into())
            .unwrap()
    }

    #[test]
    fn stream_defaults_to_true() {
        assert!(chat(json!({"model": "m", "messages": []})).stream);
        assert!(chat(json!({"model": "m", "stream": null, "messages": []})).stream);
        assert!(!chat(json!({"model": "m", "stream": false, "messages": []})).stream);
    }

    #[test]
    fn options_map_to_sampling_and_min_context() {
        let r = chat(
            json!({"model": "m", "messages": [{"role": "user", "content": "hi"}],
            "options": {"num_ctx": 8192, "num_predict": 5, "temperature": 0.5, "top_k": 3,
                        "stop": ["x"], "seed": 7, "num_gpu": 1},
            "format": "json", "think": true, "keep_alive": "5m"}),
        );
        let s = r.sampling.unwrap();
        assert_eq!(s.max_tokens, Some(5));
        assert_eq!(s.top_k, Some(3));
        assert_eq!(s.stop, vec!["x"]);
        assert_eq!(r.min_context, Some(8192));
        assert_eq!(r.think_json.as_deref(), Some("true"));
        assert_eq!(r.keep_alive_json.as_deref(), Some("\"5m\""));
        assert_eq!(
            r.response_format_json.as_deref(),
            Some(r#"{"type":"json_object"}"#)
        );
        assert_eq!(r.api, "ollama.chat");
    }

    #[test]
    fn tool_answers_get_their_calls_ids_and_images_become_parts() {
        let r = chat(json!({"model": "m", "messages": [
            {"role": "user", "content": "look", "images": ["iVBORw0KGgo="]},
            {"role": "assistant", "content": "", "tool_calls": [
                {"function": {"name": "a", "arguments": {"x": 1}}},
                {"function": {"name": "b", "arguments": {}}}]},
            {"role": "tool", "tool_name": "b", "content": "2"},
            {"role": "tool", "content": "1"}]}));
        let parts: Value =
            serde_json::from_str(r.messages[0].content_parts_json.as_deref().unwrap()).unwrap();
        assert_eq!(
            parts[1]["image_url"]["url"],
            "data:image/png;base64,iVBORw0KGgo="
        );
        assert_eq!(r.messages[1].tool_calls[0].arguments, r#"{"x":1}"#);
        assert_eq!(r.messages[2].tool_call_id.as_deref(), Some("call_1_1"));
        assert_eq!(r.messages[3].tool_call_id.as_deref(), Some("call_1_0"));
    }

    #[test]
    fn raw_generate_is_a_text_completion() {
        let g: GenerateBody =
            serde_json::from_value(json!({"model": "m", "prompt": "abc", "raw": true})).unwrap();
        let r = g.into_router_request("r".into()).unwrap();
        assert_eq!(r.prompt.as_deref(), Some("abc"));
        let g: GenerateBody =
            serde_json::from_value(json!({"model": "m", "prompt": "abc", "system": "be"})).unwrap();
        let r = g.into_router_request("r".into()).unwrap();
        assert_eq!(r.prompt, None);
        assert_eq!(r.messages.len(), 2);
    }
}
