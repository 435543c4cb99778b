//! The Messages API's typed SSE events, written from the router's events.
//!
//! Anthropic streams a message as `message_start`, then content blocks one after another (each
//! `content_block_start`, `content_block_delta`s, `content_block_stop`), then `message_delta`
//! (stop reason and usage) and `message_stop`; `ping` may come at any point. The router's deltas
//! carry text, reasoning and tool-call fragments in any mix, so [`Blocks`] opens a new block
//! whenever the kind of content changes and closes the open one first. A tool call's arguments
//! are its block's `input_json_delta`s.

use bytes::Bytes;
use serde::Serialize;
use serde_json::{Value, json};
use switchyard_proto as pb;

use super::response::{Meta, stop_reason, tool_id};

/// One SSE event: `event: NAME` and its JSON.
pub(crate) fn event(out: &mut Vec<u8>, name: &str, data: &impl Serialize) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    // Our event types and `Value`s always serialize; a failure would leave an empty object.
    if serde_json::to_writer(&mut *out, data).is_err() {
        out.extend_from_slice(b"{}");
    }
    out.extend_from_slice(b"\n\n");
}

/// A `content_block_delta` event's body (typed: it is the stream's most frequent event).
#[derive(Serialize)]
struct BlockDelta<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    index: usize,
    delta: DeltaBody<'a>,
}

#[derive(Serialize)]
#[serde(tag = "type")]
enum DeltaBody<'a> {
    #[serde(rename = "text_delta")]
    Text { text: &'a str },
    #[serde(rename = "thinking_delta")]
    Thinking { thinking: &'a str },
    #[serde(rename = "input_json_delta")]
    InputJson { partial_json: &'a str },
}

/// The `ping` event.
pub(crate) fn ping() -> Bytes {
    Bytes::from_static(b"event: ping\ndata: {\"type\":\"ping\"}\n\n")
}

/// An `error` event with Anthropic's error body.
pub(crate) fn error(body: &Value) -> Bytes {
    let mut out = Vec::new();
    event(&mut out, "error", body);
    Bytes::from(out)
}

/// The block being written.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Open {
    Text,
    Thinking,
    /// A tool call, by the router's tool-call index.
    Tool(u32),
}

/// The stream's state: which block is open and what the answer ended with.
pub(crate) struct Blocks {
    meta: Meta,
    open: Option<(Open, usize)>,
    /// Blocks started so far (the next block's index).
    started: usize,
    /// Tool-call index to block index, for fragments that arrive after their block closed.
    tools: Vec<(u32, usize)>,
    finish: String,
    usage: pb::Usage,
}

impl Blocks {
    pub fn new(meta: Meta) -> Self {
        Blocks {
            meta,
            open: None,
            started: 0,
            tools: Vec::new(),
            finish: String::new(),
            usage: pb::Usage::default(),
        }
    }

    /// `message_start`, with the prompt tokens the route predicted (0 before a route is known;
    /// the final `message_delta` carries the backend's count either way).
    pub fn start(&self, input_tokens: u32) -> Bytes {
        let mut out = Vec::with_capacity(512);
        let message = json!({
            "id": self.meta.id,
            "type": "message",
            "role": "assistant",
            "model": self.meta.model,
            "content": [],
            "stop_reason": null,
            "stop_sequence": null,
            "usage": {"input_tokens": input_tokens, "output_tokens": 0},
        });
        event(
            &mut out,
            "message_start",
            &json!({"type": "message_start", "message": message}),
        );
        Bytes::from(out)
    }

    fn close(&mut self, out: &mut Vec<u8>) {
        if let Some((_, index)) = self.open.take() {
            event(
                out,
                "content_block_stop",
                &json!({"type": "content_block_stop", "index": index}),
            );
        }
    }

    /// Makes `kind` the open block (starting it with `block`), returning its index.
    fn ensure(&mut self, out: &mut Vec<u8>, kind: Open, block: impl FnOnce() -> Value) -> usize {
        if let Some((k, index)) = self.open
            && k == kind
        {
            return index;
        }
        self.close(out);
        let index = self.started;
        self.started += 1;
        event(
            out,
            "content_block_start",
            &json!({"type": "content_block_start", "index": index, "content_block": block()}),
        );
        self.open = Some((kind, index));
        index
    }

    fn block_delta(out: &mut Vec<u8>, index: usize, delta: DeltaBody<'_>) {
        let body = BlockDelta {
            kind: "content_block_delta",
            index,
            delta,
        };
        event(out, "content_block_delta", &body);
    }

    /// The events of one router delta (empty when it carries nothing to show).
    pub fn delta(&mut self, d: &pb::Delta) -> Option<Bytes> {
        let mut out = Vec::new();
        if let Some(r) = d
            .reasoning
            .as_deref()
            .filter(|r| self.meta.thinking && !r.is_empty())
        {
            let i = self.ensure(
                &mut out,
                Open::Thinking,
                || json!({"type": "thinking", "thinking": "", "signature": ""}),
            );
            Self::block_delta(&mut out, i, DeltaBody::Thinking { thinking: r });
        }
        if !d.content.is_empty() {
            let i = self.ensure(&mut out, Open::Text, || json!({"type": "text", "text": ""}));
            Self::block_delta(&mut out, i, DeltaBody::Text { text: &d.content });
        }
        for c in &d.tool_calls {
            let known = self.tools.iter().find(|(t, _)| *t == c.index).map(|x| x.1);
            let index = match known {
                // A late fragment of a closed block still names its own block.
                Some(i) => i,
                None => {
                    let id = tool_id(c.id.as_deref(), &self.meta, c.index);
                    let name = c.name.clone().unwrap_or_default();
                    let i = self.ensure(
                        &mut out,
                        Open::Tool(c.index),
                        || json!({"type": "tool_use", "id": id, "name": name, "input": {}}),
                    );
                    self.tools.push((c.index, i));
                    i
                }
            };
            if !c.arguments.is_empty() {
                Self::block_delta(
                    &mut out,
                    index,
                    DeltaBody::InputJson {
                        partial_json: &c.arguments,
                    },
                );
            }
        }
        (!out.is_empty()).then(|| Bytes::from(out))
    }

    pub fn finish(&mut self, reason: &str) {
        self.finish = reason.to_owned();
    }

    pub fn usage(&mut self, u: &pb::Usage) {
        self.usage = *u;
    }

    /// The end of the message: the open block closed, `message_delta`, `message_stop`.
    pub fn end(&mut self) -> Bytes {
        let mut out = Vec::new();
        self.close(&mut out);
        let delta = json!({
            "type": "message_delta",
            "delta": {
                "stop_reason": stop_reason(&self.finish, !self.tools.is_empty()),
                "stop_sequence": null,
            },
            "usage": {
                "input_tokens": self.usage.prompt_tokens,
                "output_tokens": self.usage.completion_tokens,
            },
        });
        event(&mut out, "message_delta", &delta);
        event(&mut out, "message_stop", &json!({"type": "message_stop"}));
        Bytes::from(out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn events(b: &[Bytes]) -> Vec<(String, Value)> {
        let text: String = b
            .iter()
            .map(|x| String::from_utf8_lossy(x).into_owned())
            .collect();
        text.split("\n\n")
            .filter(|f| !f.is_empty())
            .map(|f| {
                let (name, data) = f.split_once('\n').unwrap();
                (
                    name.trim_start_matches("event: ").to_owned(),
                    serde_json::from_str(data.trim_start_matches("data: ")).unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn text_then_tool_call_makes_two_blocks() {
        let mut b = Blocks::new(Meta::new("r1", "m".into(), false));
        let mut out = vec![b.start(12)];
        for d in [
            pb::Delta {
                content: "Hi".into(),
                reasoning: Some("not shown".into()),
                ..Default::default()
            },
            pb::Delta {
                content: " there".into(),
                ..Default::default()
            },
            pb::Delta {
                tool_calls: vec![pb::ToolCallDelta {
                    index: 0,
                    id: Some("call_9".into()),
                    name: Some("f".into()),
                    arguments: "{\"a\":".into(),
                }],
                ..Default::default()
            },
            pb::Delta {
                tool_calls: vec![pb::ToolCallDelta {
                    index: 0,
                    arguments: "1}".into(),
                    ..Default::default()
                }],
                ..Default::default()
            },
        ] {
            out.extend(b.delta(&d));
        }
        b.finish("tool_calls");
        b.usage(&pb::Usage {
            prompt_tokens: 12,
            completion_tokens: 7,
            estimated: false,
        });
        out.push(b.end());
        let ev = events(&out);
        let names: Vec<&str> = ev.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "message_start",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop"
            ]
        );
        assert_eq!(ev[0].1["message"]["usage"]["input_tokens"], 12);
        assert_eq!(ev[5].1["content_block"]["id"], "call_9");
        assert_eq!(ev[5].1["index"], 1);
        assert_eq!(ev[7].1["delta"]["partial_json"], "1}");
        assert_eq!(ev[9].1["delta"]["stop_reason"], "tool_use");
        assert_eq!(ev[9].1["usage"]["output_tokens"], 7);
    }

    #[test]
    fn thinking_blocks_when_asked() {
        let mut b = Blocks::new(Meta::new("r1", "m".into(), true));
        let out = b
            .delta(&pb::Delta {
                reasoning: Some("hmm".into()),
                content: "ok".into(),
                ..Default::default()
            })
            .unwrap();
        let ev = events(&[out]);
        assert_eq!(ev[0].1["content_block"]["type"], "thinking");
        assert_eq!(ev[1].1["delta"]["thinking"], "hmm");
        assert_eq!(ev[3].1["content_block"]["type"], "text");
    }
}
