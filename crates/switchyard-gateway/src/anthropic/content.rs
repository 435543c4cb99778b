//! Anthropic messages and content blocks turned into the router's chat messages.
//!
//! The conventions (the same as other Anthropic-to-chat translators): `tool_use` blocks become
//! the assistant message's tool calls; each `tool_result` block becomes a `tool` message, placed
//! before the rest of its user message (Anthropic requires results to come first); images become
//! OpenAI-style `image_url` content parts (a `data:` URL for base64 sources); `thinking` blocks
//! of earlier assistant turns become the message's reasoning.

use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};
use switchyard_proto as pb;

use crate::error::ApiError;

/// Content that is a plain string or an array of blocks (`content`, `system`, a tool result's
/// `content`). A bad block is named by its path inside the array.
#[derive(Debug)]
pub enum OneOrBlocks<T> {
    Text(String),
    Blocks(Vec<T>),
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for OneOrBlocks<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::String(s) => Ok(OneOrBlocks::Text(s)),
            v @ Value::Array(_) => serde_path_to_error::deserialize(v)
                .map(OneOrBlocks::Blocks)
                .map_err(|e| D::Error::custom(format!("{}: {}", e.path(), e.inner()))),
            _ => Err(D::Error::custom(
                "expected a string or an array of content blocks",
            )),
        }
    }
}

/// `system`: a string or text blocks.
pub type TextBlocks = OneOrBlocks<TextBlock>;

#[derive(Debug, Deserialize)]
pub struct TextBlock {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub text: String,
}

impl TextBlocks {
    /// The text, blocks joined by a newline; a block other than text is a 400 naming `field`.
    pub fn joined(self, field: &str) -> Result<String, ApiError> {
        match self {
            OneOrBlocks::Text(t) => Ok(t),
            OneOrBlocks::Blocks(blocks) => {
                let mut out = Vec::with_capacity(blocks.len());
                for (j, b) in blocks.into_iter().enumerate() {
                    if b.kind != "text" {
                        return Err(ApiError::invalid(
                            format!("{field}[{j}].type: only text blocks are accepted here"),
                            Some(field),
                        ));
                    }
                    out.push(b.text);
                }
                Ok(out.join("\n"))
            }
        }
    }
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Assistant,
}

#[derive(Debug, Deserialize)]
pub struct InputMessage {
    pub role: Role,
    pub content: OneOrBlocks<Block>,
}

/// A content block. `cache_control`, `citations` and other annotations are ignored.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Block {
    Text {
        text: String,
    },
    Image {
        source: ImageSource,
    },
    ToolUse {
        id: String,
        name: String,
        #[serde(default)]
        input: Value,
    },
    ToolResult {
        tool_use_id: String,
        #[serde(default)]
        content: Option<OneOrBlocks<Block>>,
        #[serde(default)]
        is_error: Option<bool>,
    },
    Thinking {
        thinking: String,
    },
    RedactedThinking {},
    Document {
        source: DocumentSource,
    },
    #[serde(other)]
    Unsupported,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ImageSource {
    Base64 {
        media_type: String,
        data: String,
    },
    Url {
        url: String,
    },
    #[serde(other)]
    Unsupported,
}

/// A document's source: plain text only (PDFs and files need Anthropic's own processing).
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DocumentSource {
    Text {
        data: String,
    },
    #[serde(other)]
    Unsupported,
}

const SUPPORTED: &str =
    "text, image, tool_use, tool_result, thinking, redacted_thinking, document with a text source";

fn unsupported(i: usize, j: usize, what: &str) -> ApiError {
    ApiError::invalid(
        format!(
            "messages[{i}].content[{j}]: {what} is not supported by this gateway (supported: {SUPPORTED})"
        ),
        Some("messages"),
    )
}

/// Text and images of one message, as the joined text and, with images, OpenAI content parts.
#[derive(Default)]
struct Parts {
    texts: Vec<String>,
    parts: Vec<Value>,
    images: bool,
}

impl Parts {
    fn text(&mut self, t: String) {
        self.parts.push(json!({"type": "text", "text": t}));
        self.texts.push(t);
    }

    fn image(&mut self, url: String) {
        self.parts
            .push(json!({"type": "image_url", "image_url": {"url": url}}));
        self.images = true;
    }

    fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    fn into_message(self, role: &str) -> pb::Message {
        pb::Message {
            role: role.into(),
            content: Some(self.texts.join("\n")),
            content_parts_json: self.images.then(|| Value::Array(self.parts).to_string()),
            ..Default::default()
        }
    }
}

fn image_url(source: ImageSource, i: usize, j: usize) -> Result<String, ApiError> {
    match source {
        ImageSource::Base64 { media_type, data } => Ok(format!("data:{media_type};base64,{data}")),
        ImageSource::Url { url } => Ok(url),
        ImageSource::Unsupported => Err(unsupported(
            i,
            j,
            "an image source other than base64 or url",
        )),
    }
}

/// Appends the chat messages of Anthropic message `i` to `out`.
pub(crate) fn convert(
    m: InputMessage,
    i: usize,
    out: &mut Vec<pb::Message>,
) -> Result<(), ApiError> {
    match (m.role, m.content) {
        (Role::User, OneOrBlocks::Text(t)) => out.push(pb::Message {
            role: "user".into(),
            content: Some(t),
            ..Default::default()
        }),
        (Role::Assistant, OneOrBlocks::Text(t)) => out.push(pb::Message {
            role: "assistant".into(),
            content: Some(t),
            ..Default::default()
        }),
        (Role::User, OneOrBlocks::Blocks(blocks)) => user(blocks, i, out)?,
        (Role::Assistant, OneOrBlocks::Blocks(blocks)) => out.push(assistant(blocks, i)?),
    }
    Ok(())
}

fn user(blocks: Vec<Block>, i: usize, out: &mut Vec<pb::Message>) -> Result<(), ApiError> {
    let mut rest = Parts::default();
    let mut results = 0usize;
    for (j, b) in blocks.into_iter().enumerate() {
        match b {
            Block::Text { text } => rest.text(text),
            Block::Image { source } => rest.image(image_url(source, i, j)?),
            Block::Document {
                source: DocumentSource::Text { data },
            } => rest.text(data),
            Block::ToolResult {
                tool_use_id,
                content,
                is_error,
            } => {
                results += 1;
                let mut text = match content {
                    None => String::new(),
                    Some(OneOrBlocks::Text(t)) => t,
                    Some(OneOrBlocks::Blocks(inner)) => {
                        let mut texts = Vec::new();
                        for b in inner {
                            match b {
                                Block::Text { text } => texts.push(text),
                                Block::Document {
                                    source: DocumentSource::Text { data },
                                } => texts.push(data),
                                // A tool message carries text only: its images join the user
                                // message that follows the results.
                                Block::Image { source } => rest.image(image_url(source, i, j)?),
                                _ => {
                                    return Err(unsupported(
                                        i,
                                        j,
                                        "a tool_result content block other than text or image",
                                    ));
                                }
                            }
                        }
                        texts.join("\n")
                    }
                };
                if is_error == Some(true) {
                    // Chat tool messages have no error flag: the model reads it from the text.
                    text = format!("Error: {text}");
                }
                out.push(pb::Message {
                    role: "tool".into(),
                    content: Some(text),
                    tool_call_id: Some(tool_use_id),
                    ..Default::default()
                });
            }
            // Thinking is the assistant's; in a user turn it has nothing to say to the model.
            Block::Thinking { .. } | Block::RedactedThinking {} => {}
            Block::ToolUse { .. } => {
                return Err(ApiError::invalid(
                    format!(
                        "messages[{i}].content[{j}]: tool_use blocks belong to assistant messages"
                    ),
                    Some("messages"),
                ));
            }
            Block::Document { .. } => {
                return Err(unsupported(i, j, "a document source other than text"));
            }
            Block::Unsupported => return Err(unsupported(i, j, "this content block type")),
        }
    }
    if !rest.is_empty() || results == 0 {
        out.push(rest.into_message("user"));
    }
    Ok(())
}

fn assistant(blocks: Vec<Block>, i: usize) -> Result<pb::Message, ApiError> {
    let mut texts: Vec<String> = Vec::new();
    let mut reasoning: Option<String> = None;
    let mut tool_calls = Vec::new();
    for (j, b) in blocks.into_iter().enumerate() {
        match b {
            Block::Text { text } => texts.push(text),
            Block::ToolUse { id, name, input } => tool_calls.push(pb::ToolCall {
                id,
                r#type: "function".into(),
                name,
                arguments: if input.is_null() {
                    "{}".into()
                } else {
                    input.to_string()
                },
            }),
            Block::Thinking { thinking } => reasoning.get_or_insert_default().push_str(&thinking),
            Block::RedactedThinking {} => {}
            Block::Image { .. } | Block::Document { .. } | Block::ToolResult { .. } => {
                return Err(ApiError::invalid(
                    format!(
                        "messages[{i}].content[{j}]: assistant messages take text, tool_use and thinking blocks"
                    ),
                    Some("messages"),
                ));
            }
            Block::Unsupported => return Err(unsupported(i, j, "this content block type")),
        }
    }
    let content = if texts.is_empty() && !tool_calls.is_empty() {
        None
    } else {
        Some(texts.join("\n"))
    };
    Ok(pb::Message {
        role: "assistant".into(),
        content,
        tool_calls,
        reasoning,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn messages(v: Value) -> Result<Vec<pb::Message>, ApiError> {
        let ms: Vec<InputMessage> = serde_json::from_value(v).unwrap();
        let mut out = Vec::new();
        for (i, m) in ms.into_iter().enumerate() {
            convert(m, i, &mut out)?;
        }
        Ok(out)
    }

    #[test]
    fn tool_round_trip_becomes_tool_calls_and_tool_messages() {
        let out = messages(json!([
            {"role": "user", "content": [{"type": "text", "text": "weather?"}]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "hmm", "signature": ""},
                {"type": "text", "text": "Let me look."},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "22C"}]},
                {"type": "tool_result", "tool_use_id": "toolu_2", "content": "boom", "is_error": true},
                {"type": "text", "text": "and tomorrow?"}]},
        ]))
        .unwrap();
        let roles: Vec<&str> = out.iter().map(|m| m.role.as_str()).collect();
        assert_eq!(roles, ["user", "assistant", "tool", "tool", "user"]);
        assert_eq!(out[1].content.as_deref(), Some("Let me look."));
        assert_eq!(out[1].reasoning.as_deref(), Some("hmm"));
        assert_eq!(out[1].tool_calls[0].arguments, r#"{"city":"Paris"}"#);
        assert_eq!(out[2].tool_call_id.as_deref(), Some("toolu_1"));
        assert_eq!(out[2].content.as_deref(), Some("22C"));
        assert_eq!(out[3].content.as_deref(), Some("Error: boom"));
        assert_eq!(out[4].content.as_deref(), Some("and tomorrow?"));
        assert!(out[4].content_parts_json.is_none());
    }

    #[test]
    fn images_become_image_url_parts() {
        let out = messages(json!([{"role": "user", "content": [
            {"type": "text", "text": "what is this?"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}},
            {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}]}]))
        .unwrap();
        let parts: Value =
            serde_json::from_str(out[0].content_parts_json.as_deref().unwrap()).unwrap();
        assert_eq!(parts[1]["image_url"]["url"], "data:image/png;base64,AAAA");
        assert_eq!(parts[2]["image_url"]["url"], "https://example.com/a.png");
        assert_eq!(out[0].content.as_deref(), Some("what is this?"));
    }

    #[test]
    fn unknown_blocks_are_named() {
        let e = messages(json!([{"role": "user", "content": [
            {"type": "text", "text": "x"}, {"type": "server_tool_use", "id": "a"}]}]))
        .unwrap_err();
        assert!(
            e.message.starts_with("messages[0].content[1]"),
            "{}",
            e.message
        );
        let bad: Result<Vec<InputMessage>, _> = serde_json::from_value(json!([
            {"role": "user", "content": [{"type": "image", "source": {"type": "base64"}}]}]));
        let msg = bad.unwrap_err().to_string();
        assert!(msg.contains("[0]"), "{msg}");
    }
}
