//! The Responses API's answer: the `response` object, and the typed SSE events the SDKs read
//! while it is built (`response.created`, `response.output_item.added`,
//! `response.output_text.delta`, `response.function_call_arguments.delta`, …,
//! `response.completed`).
//!
//! One [`ResponseBuilder`] follows the router's events for one request. Streamed, each call
//! returns the frames to write; unstreamed, only [`ResponseBuilder::response`] is used. Frames
//! are `event: TYPE\ndata: JSON\n\n` with an increasing `sequence_number`, and no `[DONE]`
//! (as OpenAI and Ollama send them).

use bytes::Bytes;
use serde_json::{Map, Value, json};
use switchyard_proto as pb;

use super::responses_request::Echo;

/// One output item in the making.
enum Item {
    Message {
        id: String,
        text: String,
    },
    FunctionCall {
        id: String,
        call_id: String,
        name: String,
        arguments: String,
        /// The router's tool-call index, which later argument deltas name.
        index: u32,
    },
}

impl Item {
    fn json(&self, status: &str) -> Value {
        match self {
            Item::Message { id, text } => json!({
                "type": "message", "id": id, "role": "assistant", "status": status,
                "content": if status == "in_progress" {
                    json!([])
                } else {
                    json!([{"type": "output_text", "text": text, "annotations": [], "logprobs": []}])
                },
            }),
            Item::FunctionCall {
                id,
                call_id,
                name,
                arguments,
                ..
            } => json!({
                "type": "function_call", "id": id, "call_id": call_id, "name": name,
                "arguments": if status == "in_progress" { "" } else { arguments.as_str() },
                "status": status,
            }),
        }
    }
}

/// Builds one response from the router's events.
pub struct ResponseBuilder {
    id: String,
    created_at: i64,
    echo: Echo,
    items: Vec<Item>,
    /// Index in `items` of the assistant message receiving text, once there is one.
    message: Option<usize>,
    finish: String,
    usage: pb::Usage,
    sequence: u64,
    /// Builds item ids from the response id.
    next_item: u32,
}

impl ResponseBuilder {
    pub fn new(request_id: &str, created_at: i64, echo: Echo) -> Self {
        ResponseBuilder {
            id: format!("resp_{request_id}"),
            created_at,
            echo,
            items: Vec::new(),
            message: None,
            finish: "stop".into(),
            usage: pb::Usage::default(),
            sequence: 0,
            next_item: 0,
        }
    }

    fn item_id(&mut self, prefix: &str) -> String {
        self.next_item += 1;
        format!("{prefix}_{}_{}", &self.id[5..], self.next_item)
    }

    fn frame(&mut self, kind: &str, mut payload: Map<String, Value>) -> Bytes {
        payload.insert("type".into(), Value::String(kind.into()));
        payload.insert("sequence_number".into(), self.sequence.into());
        self.sequence += 1;
        let data = serde_json::to_string(&Value::Object(payload)).unwrap_or_default();
        Bytes::from(format!("event: {kind}\ndata: {data}\n\n"))
    }

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    fn status(&self) -> &'static str {
        if self.finish == "length" {
            "incomplete"
        } else {
            "completed"
        }
    }

    /// The response object: `status` is `in_progress` until the end.
    fn object(&self, status: &str, error: Option<Value>) -> Value {
        let done = status != "in_progress";
        let output: Vec<Value> = if done {
            self.items.iter().map(|i| i.json("completed")).collect()
        } else {
            Vec::new()
        };
        let usage = done.then(|| {
            json!({
                "input_tokens": self.usage.prompt_tokens,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": self.usage.completion_tokens,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": self.usage.prompt_tokens.saturating_add(self.usage.completion_tokens),
            })
        });
        let e = &self.echo;
        json!({
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "error": error,
            "incomplete_details": (status == "incomplete").then(|| json!({"reason": "max_output_tokens"})),
            "instructions": e.instructions,
            "max_output_tokens": e.max_output_tokens,
            "model": e.model,
            "output": output,
            "parallel_tool_calls": e.parallel_tool_calls,
            "previous_response_id": null,
            "store": false,
            "temperature": e.temperature,
            "text": {"format": e.text_format},
            "tool_choice": e.tool_choice,
            "tools": e.tools,
            "top_p": e.top_p,
            "truncation": "disabled",
            "metadata": e.metadata,
            "usage": usage,
        })
    }

    /// The first frames of a stream.
    pub fn start(&mut self) -> Vec<Bytes> {
        let created = self.object("in_progress", None);
        vec![
            self.frame(
                "response.created",
                Self::obj(json!({"response": created.clone()})),
            ),
            self.frame(
                "response.in_progress",
                Self::obj(json!({"response": created})),
            ),
        ]
    }

    /// Takes one delta; returns the frames it produces when streaming.
    pub fn delta(&mut self, d: &pb::Delta) -> Vec<Bytes> {
        let mut out = Vec::new();
        if !d.content.is_empty() {
            let at = match self.message {
                Some(at) => at,
                None => {
                    let id = self.item_id("msg");
                    self.items.push(Item::Message {
                        id,
                        text: String::new(),
                    });
                    let at = self.items.len() - 1;
                    self.message = Some(at);
                    let item = self.items[at].json("in_progress");
                    let item_id = item["id"].clone();
                    out.push(self.frame(
                        "response.output_item.added",
                        Self::obj(json!({"output_index": at, "item": item})),
                    ));
                    out.push(self.frame(
                        "response.content_part.added",
                        Self::obj(json!({"item_id": item_id, "output_index": at, "content_index": 0,
                            "part": {"type": "output_text", "text": "", "annotations": [], "logprobs": []}})),
                    ));
                    at
                }
            };
            let mut item_id = String::new();
            if let Some(Item::Message { id, text }) = self.items.get_mut(at) {
                text.push_str(&d.content);
                item_id.clone_from(id);
            }
            out.push(self.frame(
                "response.output_text.delta",
                Self::obj(
                    json!({"item_id": item_id, "output_index": at, "content_index": 0,
                    "delta": d.content, "logprobs": []}),
                ),
            ));
        }
        for call in &d.tool_calls {
            let found = self.items.iter().position(
                |i| matches!(i, Item::FunctionCall { index, .. } if *index == call.index),
            );
            let at = match found {
                Some(at) => at,
                None => {
                    let id = self.item_id("fc");
                    let call_id = call
                        .id
                        .clone()
                        .filter(|c| !c.is_empty())
                        .unwrap_or_else(|| format!("call_{}", &id[3..]));
                    self.items.push(Item::FunctionCall {
                        id,
                        call_id,
                        name: call.name.clone().unwrap_or_default(),
                        arguments: String::new(),
                        index: call.index,
                    });
                    let at = self.items.len() - 1;
                    let item = self.items[at].json("in_progress");
                    out.push(self.frame(
                        "response.output_item.added",
                        Self::obj(json!({"output_index": at, "item": item})),
                    ));
                    at
                }
            };
            let mut item_id = String::new();
            if let Some(Item::FunctionCall {
                id,
                name,
                arguments,
                ..
            }) = self.items.get_mut(at)
            {
                if name.is_empty()
                    && let Some(n) = &call.name
                {
                    name.clone_from(n);
                }
                arguments.push_str(&call.arguments);
                item_id.clone_from(id);
            }
            if !call.arguments.is_empty() {
                out.push(self.frame(
                    "response.function_call_arguments.delta",
                    Self::obj(
                        json!({"item_id": item_id, "output_index": at, "delta": call.arguments}),
                    ),
                ));
            }
        }
        out
    }

    pub fn finish(&mut self, reason: &str) {
        reason.clone_into(&mut self.finish);
    }

    pub fn usage(&mut self, u: &pb::Usage) {
        self.usage = *u;
    }

    /// The closing frames of a stream: every item's `done` events, then `response.completed`
    /// (or `response.incomplete` when the output limit cut the answer).
    pub fn end(&mut self) -> Vec<Bytes> {
        let mut out = Vec::new();
        let items: Vec<(usize, Value)> = self
            .items
            .iter()
            .enumerate()
            .map(|(at, i)| (at, i.json("completed")))
            .collect();
        for (at, item) in items {
            let item_id = item["id"].clone();
            if item["type"] == "message" {
                let text = item["content"][0]["text"].clone();
                out.push(self.frame(
                    "response.output_text.done",
                    Self::obj(
                        json!({"item_id": item_id, "output_index": at, "content_index": 0,
                        "text": text, "logprobs": []}),
                    ),
                ));
                out.push(self.frame(
                    "response.content_part.done",
                    Self::obj(
                        json!({"item_id": item_id, "output_index": at, "content_index": 0,
                        "part": item["content"][0].clone()}),
                    ),
                ));
            } else {
                out.push(self.frame(
                    "response.function_call_arguments.done",
                    Self::obj(json!({"item_id": item_id, "output_index": at,
                        "name": item["name"].clone(), "arguments": item["arguments"].clone()})),
                ));
            }
            out.push(self.frame(
                "response.output_item.done",
                Self::obj(json!({"output_index": at, "item": item})),
            ));
        }
        let status = self.status();
        let response = self.object(status, None);
        out.push(self.frame(
            &format!("response.{status}"),
            Self::obj(json!({"response": response})),
        ));
        out
    }

    /// A stream that fails after it started: an `error` event, then `response.failed`.
    pub fn fail(&mut self, error: &crate::ApiError) -> Vec<Bytes> {
        let e = json!({"code": error.code, "message": error.message});
        let first = self.frame(
            "error",
            Self::obj(json!({"code": error.code, "message": error.message, "param": error.param})),
        );
        let response = self.object("failed", Some(e));
        vec![
            first,
            self.frame("response.failed", Self::obj(json!({"response": response}))),
        ]
    }

    /// The whole response object, once every event has been taken.
    pub fn response(&self) -> Value {
        self.object(self.status(), None)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn events(frames: &[Bytes]) -> Vec<Value> {
        frames
            .iter()
            .map(|f| {
                let s = std::str::from_utf8(f).unwrap();
                let data = s.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
                serde_json::from_str(data).unwrap()
            })
            .collect()
    }

    #[test]
    fn a_streamed_text_answer_has_the_typed_events_in_order() {
        let mut b = ResponseBuilder::new("abc", 1, Echo::default());
        let mut frames = b.start();
        frames.extend(b.delta(&pb::Delta {
            content: "Hel".into(),
            ..Default::default()
        }));
        frames.extend(b.delta(&pb::Delta {
            content: "lo".into(),
            ..Default::default()
        }));
        b.finish("stop");
        b.usage(&pb::Usage {
            prompt_tokens: 3,
            completion_tokens: 2,
            estimated: false,
        });
        frames.extend(b.end());
        let ev = events(&frames);
        let types: Vec<_> = ev.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(
            types,
            [
                "response.created",
                "response.in_progress",
                "response.output_item.added",
                "response.content_part.added",
                "response.output_text.delta",
                "response.output_text.delta",
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.completed"
            ]
        );
        let seq: Vec<_> = ev
            .iter()
            .map(|e| e["sequence_number"].as_u64().unwrap())
            .collect();
        assert_eq!(seq, (0..10).collect::<Vec<_>>());
        let done = &ev[9]["response"];
        assert_eq!(done["output"][0]["content"][0]["text"], "Hello");
        assert_eq!(done["usage"]["total_tokens"], 5);
        assert!(done["error"].is_null());
    }

    #[test]
    fn tool_calls_become_function_call_items_with_empty_arguments_first() {
        let mut b = ResponseBuilder::new("abc", 1, Echo::default());
        let frames = b.delta(&pb::Delta {
            tool_calls: vec![pb::ToolCallDelta {
                index: 0,
                id: Some("call_9".into()),
                name: Some("get".into()),
                arguments: "{\"a\":".into(),
            }],
            ..Default::default()
        });
        let ev = events(&frames);
        assert_eq!(ev[0]["item"]["arguments"], "");
        assert_eq!(ev[1]["type"], "response.function_call_arguments.delta");
        b.delta(&pb::Delta {
            tool_calls: vec![pb::ToolCallDelta {
                index: 0,
                arguments: "1}".into(),
                ..Default::default()
            }],
            ..Default::default()
        });
        b.finish("tool_calls");
        let r = b.response();
        assert_eq!(r["output"][0]["type"], "function_call");
        assert_eq!(r["output"][0]["call_id"], "call_9");
        assert_eq!(r["output"][0]["arguments"], "{\"a\":1}");
        assert_eq!(r["status"], "completed");
    }

    #[test]
    fn a_length_cut_is_incomplete() {
        let mut b = ResponseBuilder::new("abc", 1, Echo::default());
        b.delta(&pb::Delta {
            content: "x".into(),
            ..Default::default()
        });
        b.finish("length");
        let r = b.response();
        assert_eq!(r["status"], "incomplete");
        assert_eq!(r["incomplete_details"]["reason"], "max_output_tokens");
    }
}
