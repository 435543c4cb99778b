//! The whole (unstreamed) Messages API answer, and what it shares with the stream: the message
//! id, the stop reason mapped from the router's finish reason, tool inputs as objects.

use serde_json::{Map, Value, json};
use switchyard_proto as pb;

use crate::openai::response::Answer;

/// What every answer to one request repeats.
#[derive(Debug, Clone)]
pub(crate) struct Meta {
    /// `msg_…`.
    pub id: String,
    /// The model as the client named it.
    pub model: String,
    /// Whether reasoning is returned as `thinking` blocks (the request enabled thinking).
    pub thinking: bool,
}

impl Meta {
    pub fn new(request_id: &str, model: String, thinking: bool) -> Self {
        Meta {
            id: format!("msg_{request_id}"),
            model,
            thinking,
        }
    }
}

/// Anthropic's `stop_reason` for the router's (OpenAI) finish reason. Backends do not say which
/// stop sequence ended an answer, so a stop sequence is reported as `end_turn`.
pub(crate) fn stop_reason(finish: &str, called_tools: bool) -> &'static str {
    match finish {
        "length" => "max_tokens",
        "tool_calls" | "function_call" => "tool_use",
        "content_filter" => "refusal",
        _ if called_tools => "tool_use",
        _ => "end_turn",
    }
}

/// A tool call's `arguments` (a JSON string) as the `input` object Anthropic clients expect.
/// Arguments that are not a JSON object are kept under `arguments` rather than lost.
pub(crate) fn tool_input(arguments: &str) -> Value {
    if arguments.trim().is_empty() {
        return Value::Object(Map::new());
    }
    match serde_json::from_str::<Value>(arguments) {
        Ok(v @ Value::Object(_)) => v,
        Ok(other) => json!({ "arguments": other }),
        Err(_) => json!({ "arguments": arguments }),
    }
}

/// A tool call's id, or one made up for a backend that gave none.
pub(crate) fn tool_id(id: Option<&str>, meta: &Meta, index: u32) -> String {
    match id {
        Some(id) if !id.is_empty() => id.to_owned(),
        _ => format!("toolu_{}_{index}", meta.id.trim_start_matches("msg_")),
    }
}

/// One tool call put together from its deltas.
struct Call {
    index: u32,
    id: Option<String>,
    name: String,
    arguments: String,
}

fn merge_calls(deltas: &[pb::ToolCallDelta]) -> Vec<Call> {
    let mut calls: Vec<Call> = Vec::new();
    for d in deltas {
        let call = match calls.iter_mut().position(|c| c.index == d.index) {
            Some(i) => &mut calls[i],
            None => {
                calls.push(Call {
                    index: d.index,
                    id: None,
                    name: String::new(),
                    arguments: String::new(),
                });
                let last = calls.len() - 1;
                &mut calls[last]
            }
        };
        if call.id.is_none() {
            call.id.clone_from(&d.id);
        }
        if let Some(n) = &d.name {
            call.name.push_str(n);
        }
        call.arguments.push_str(&d.arguments);
    }
    calls
}

/// The `usage` object of an answer.
pub(crate) fn usage_json(u: &pb::Usage) -> Value {
    json!({"input_tokens": u.prompt_tokens, "output_tokens": u.completion_tokens})
}

/// The whole `message` object for a collected answer.
pub(crate) fn message_json(meta: &Meta, answer: &Answer, usage: &pb::Usage) -> Value {
    let d = &answer.delta;
    let mut content = Vec::new();
    if let Some(r) = d
        .reasoning
        .as_deref()
        .filter(|r| meta.thinking && !r.is_empty())
    {
        content.push(json!({"type": "thinking", "thinking": r, "signature": ""}));
    }
    if !d.content.is_empty() {
        content.push(json!({"type": "text", "text": d.content}));
    }
    let calls = merge_calls(&d.tool_calls);
    for c in &calls {
        content.push(json!({
            "type": "tool_use",
            "id": tool_id(c.id.as_deref(), meta, c.index),
            "name": c.name,
            "input": tool_input(&c.arguments),
        }));
    }
    json!({
        "id": meta.id,
        "type": "message",
        "role": "assistant",
        "model": meta.model,
        "content": content,
        "stop_reason": stop_reason(&answer.finish, !calls.is_empty()),
        "stop_sequence": null,
        "usage": usage_json(usage),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn whole_message_with_text_and_a_tool_call() {
        let meta = Meta::new("abc", "local-small".into(), false);
        let mut answer = Answer::default();
        answer.push(pb::Delta {
            content: "Checking.".into(),
            reasoning: Some("hidden".into()),
            tool_calls: vec![pb::ToolCallDelta {
                index: 0,
                id: Some("call_1".into()),
                name: Some("get_weather".into()),
                arguments: "{\"city\":".into(),
            }],
            ..Default::default()
        });
        answer.push(pb::Delta {
            tool_calls: vec![pb::ToolCallDelta {
                index: 0,
                arguments: "\"Paris\"}".into(),
                ..Default::default()
            }],
            ..Default::default()
        });
        answer.finish = "tool_calls".into();
        let usage = pb::Usage {
            prompt_tokens: 10,
            completion_tokens: 5,
            estimated: false,
        };
        let v = message_json(&meta, &answer, &usage);
        assert_eq!(v["id"], "msg_abc");
        assert_eq!(
            v["content"][0],
            json!({"type": "text", "text": "Checking."})
        );
        assert_eq!(
            v["content"][1],
            json!({"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}})
        );
        assert_eq!(
            v["content"].as_array().unwrap().len(),
            2,
            "no thinking unless asked"
        );
        assert_eq!(v["stop_reason"], "tool_use");
        assert_eq!(v["usage"], json!({"input_tokens": 10, "output_tokens": 5}));
    }

    #[test]
    fn stop_reasons_and_inputs() {
        assert_eq!(stop_reason("stop", false), "end_turn");
        assert_eq!(stop_reason("length", true), "max_tokens");
        assert_eq!(stop_reason("stop", true), "tool_use");
        assert_eq!(tool_input(""), json!({}));
        assert_eq!(tool_input("[1]"), json!({"arguments": [1]}));
        assert_eq!(tool_input("{oops"), json!({"arguments": "{oops"}));
    }
}
