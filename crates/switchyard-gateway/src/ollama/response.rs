//! Ollama's answer shapes for `/api/chat` and `/api/generate`: NDJSON lines while streaming (one
//! JSON object per line, `done: false`), and the final object with `done: true`, `done_reason`,
//! the token counts and the durations in nanoseconds, which is also the whole answer when
//! `stream` is false.
//!
//! Tool calls arrive from the router as OpenAI-style fragments (arguments as pieces of a JSON
//! string); Ollama clients expect each call whole with its arguments as an object, so calls are
//! gathered and written once, before the final line, as Ollama itself does.

use std::time::{Instant, SystemTime};

use bytes::Bytes;
use serde_json::{Map, Value, json};
use switchyard_proto as pb;

/// Which of the two generating routes a writer speaks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `/api/chat`: text under `message.content`.
    Chat,
    /// `/api/generate`: text under `response`.
    Generate,
}

/// Now as RFC 3339 (Ollama's `created_at`).
pub(crate) fn now_rfc3339() -> String {
    humantime::format_rfc3339_nanos(SystemTime::now()).to_string()
}

/// One NDJSON line.
pub(crate) fn line(v: &Value) -> Bytes {
    let mut out = serde_json::to_vec(v).unwrap_or_default();
    out.push(b'\n');
    Bytes::from(out)
}

/// An error line inside a stream, as Ollama writes one.
pub(crate) fn error_line(message: &str) -> Bytes {
    line(&json!({ "error": message }))
}

/// The log probabilities of a delta as Ollama writes them. The router carries OpenAI's entries,
/// `{token, logprob, bytes, top_logprobs: [{token, logprob, bytes}]}`, which is Ollama's shape too.
fn logprobs(json: &str) -> Option<Value> {
    serde_json::from_str::<Value>(json)
        .ok()
        .filter(Value::is_array)
}

/// Ollama's `done_reason` for the router's finish reason.
fn done_reason(finish: &str) -> &str {
    match finish {
        "" | "tool_calls" | "function_call" => "stop",
        other => other,
    }
}

/// A tool call being gathered from its fragments.
#[derive(Debug, Default)]
struct Call {
    index: u32,
    id: Option<String>,
    name: String,
    arguments: String,
}

/// Gathers tool-call fragments by index.
#[derive(Debug, Default)]
pub(crate) struct Calls(Vec<Call>);

impl Calls {
    pub(crate) fn push(&mut self, fragments: &[pb::ToolCallDelta]) {
        for f in fragments {
            let at = match self.0.iter().position(|c| c.index == f.index) {
                Some(at) => at,
                None => {
                    self.0.push(Call {
                        index: f.index,
                        ..Call::default()
                    });
                    self.0.len() - 1
                }
            };
            let c = &mut self.0[at];
            if let Some(id) = &f.id {
                c.id = Some(id.clone());
            }
            if let Some(name) = &f.name {
                c.name.push_str(name);
            }
            c.arguments.push_str(&f.arguments);
        }
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The calls in Ollama's shape: `{"id", "function": {"index", "name", "arguments": {…}}}`.
    fn json(&self) -> Value {
        self.0
            .iter()
            .map(|c| {
                let arguments = if c.arguments.trim().is_empty() {
                    Value::Object(Map::new())
                } else {
                    serde_json::from_str(&c.arguments)
                        .unwrap_or_else(|_| Value::String(c.arguments.clone()))
                };
                let mut call = json!({
                    "function": {"index": c.index, "name": c.name, "arguments": arguments}
                });
                if let Some(id) = &c.id {
                    call["id"] = Value::String(id.clone());
                }
                call
            })
            .collect()
    }
}

/// Writes one answer's lines and remembers what the final object needs.
pub(crate) struct Writer {
    kind: Kind,
    model: String,
    started: Instant,
    first_token: Option<Instant>,
    calls: Calls,
}

fn nanos(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Writer {
    pub(crate) fn new(kind: Kind, model: &str, started: Instant) -> Self {
        Writer {
            kind,
            model: model.to_owned(),
            started,
            first_token: None,
            calls: Calls::default(),
        }
    }

    /// The fields every object starts with.
    fn head(&self, done: bool) -> Map<String, Value> {
        let mut o = Map::with_capacity(12);
        o.insert("model".into(), Value::String(self.model.clone()));
        o.insert("created_at".into(), Value::String(now_rfc3339()));
        o.insert("done".into(), Value::Bool(done));
        o
    }

    /// Puts the text, the thinking and the tool calls where this route carries them.
    fn put_answer(
        &self,
        o: &mut Map<String, Value>,
        content: &str,
        thinking: Option<&str>,
        calls: Option<Value>,
    ) {
        match self.kind {
            Kind::Chat => {
                let mut m = Map::with_capacity(4);
                m.insert("role".into(), "assistant".into());
                m.insert("content".into(), content.into());
                if let Some(t) = thinking {
                    m.insert("thinking".into(), t.into());
                }
                if let Some(c) = calls {
                    m.insert("tool_calls".into(), c);
                }
                o.insert("message".into(), Value::Object(m));
            }
            Kind::Generate => {
                o.insert("response".into(), content.into());
                if let Some(t) = thinking {
                    o.insert("thinking".into(), t.into());
                }
                if let Some(c) = calls {
                    o.insert("tool_calls".into(), c);
                }
            }
        }
    }

    /// Notes that the answer has begun (the router committed to a route).
    pub(crate) fn started_answering(&mut self) {
        self.first_token.get_or_insert_with(Instant::now);
    }

    /// The line for one delta (`None` when it carries only tool-call fragments, gathered for
    /// the end, or nothing).
    pub(crate) fn delta(&mut self, d: &pb::Delta) -> Option<Bytes> {
        self.started_answering();
        self.calls.push(&d.tool_calls);
        let thinking = d.reasoning.as_deref().filter(|t| !t.is_empty());
        if d.content.is_empty() && thinking.is_none() && d.logprobs_json.is_none() {
            return None;
        }
        let mut o = self.head(false);
        self.put_answer(&mut o, &d.content, thinking, None);
        if let Some(entries) = d.logprobs_json.as_deref().and_then(logprobs) {
            o.insert("logprobs".into(), entries);
        }
        Some(line(&Value::Object(o)))
    }

    /// The gathered tool calls as one line of their own (`None` without calls).
    pub(crate) fn tool_calls_line(&self) -> Option<Bytes> {
        if self.calls.is_empty() {
            return None;
        }
        let mut o = self.head(false);
        self.put_answer(&mut o, "", None, Some(self.calls.json()));
        Some(line(&Value::Object(o)))
    }

    /// The counts and durations of the final object.
    fn put_stats(&self, o: &mut Map<String, Value>, finish: &str, usage: &pb::Usage) {
        let end = Instant::now();
        let first = self.first_token.unwrap_or(end);
        o.insert("done_reason".into(), done_reason(finish).into());
        o.insert("total_duration".into(), nanos(end - self.started).into());
        o.insert("load_duration".into(), 0.into());
        o.insert("prompt_eval_count".into(), usage.prompt_tokens.into());
        o.insert(
            "prompt_eval_duration".into(),
            nanos(first.saturating_duration_since(self.started)).into(),
        );
        o.insert("eval_count".into(), usage.completion_tokens.into());
        o.insert(
            "eval_duration".into(),
            nanos(end.saturating_duration_since(first)).into(),
        );
    }

    /// The final line of a stream.
    pub(crate) fn done(&self, finish: &str, usage: &pb::Usage) -> Bytes {
        let mut o = self.head(true);
        self.put_answer(&mut o, "", None, None);
        self.put_stats(&mut o, finish, usage);
        line(&Value::Object(o))
    }

    /// A whole answer as one object (`stream: false`).
    pub(crate) fn whole(
        &mut self,
        answer: &crate::openai::response::Answer,
        usage: &pb::Usage,
    ) -> Value {
        self.calls.push(&answer.delta.tool_calls);
        let calls = (!self.calls.is_empty()).then(|| self.calls.json());
        let mut o = self.head(true);
        let thinking = answer.delta.reasoning.as_deref().filter(|t| !t.is_empty());
        self.put_answer(&mut o, &answer.delta.content, thinking, calls);
        if let Some(entries) = &answer.logprobs {
            o.insert("logprobs".into(), Value::Array(entries.clone()));
        }
        self.put_stats(&mut o, &answer.finish, usage);
        Value::Object(o)
    }

    /// The answer to a request with nothing to generate: Ollama loads (or, with `keep_alive`
    /// 0, unloads) the model and says so.
    pub(crate) fn load_only(&self, unload: bool) -> Value {
        let mut o = self.head(true);
        self.put_answer(&mut o, "", None, None);
        o.insert(
            "done_reason".into(),
            if unload { "unload" } else { "load" }.into(),
        );
        Value::Object(o)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn tool_call_fragments_become_whole_calls_with_object_arguments() {
        let mut w = Writer::new(Kind::Chat, "m", Instant::now());
        let frag = |id: Option<&str>, name: Option<&str>, args: &str| pb::ToolCallDelta {
            index: 0,
            id: id.map(str::to_owned),
            name: name.map(str::to_owned),
            arguments: args.into(),
        };
        assert!(
            w.delta(&pb::Delta {
                tool_calls: vec![frag(Some("c1"), Some("get"), "{\"a\":")],
                ..Default::default()
            })
            .is_none()
        );
        w.delta(&pb::Delta {
            tool_calls: vec![frag(None, None, "1}")],
            ..Default::default()
        });
        let l: Value = serde_json::from_slice(&w.tool_calls_line().unwrap()).unwrap();
        assert_eq!(
            l["message"]["tool_calls"][0],
            json!({"id": "c1", "function": {"index": 0, "name": "get", "arguments": {"a": 1}}})
        );
        let done: Value = serde_json::from_slice(&w.done(
            "tool_calls",
            &pb::Usage {
                prompt_tokens: 3,
                completion_tokens: 4,
                estimated: false,
            },
        ))
        .unwrap();
        assert_eq!(done["done"], true);
        assert_eq!(done["done_reason"], "stop");
        assert_eq!(done["prompt_eval_count"], 3);
        assert_eq!(done["eval_count"], 4);
        assert!(done["total_duration"].as_u64().is_some());
    }

    #[test]
    fn generate_lines_carry_response() {
        let mut w = Writer::new(Kind::Generate, "m", Instant::now());
        let l = w
            .delta(&pb::Delta {
                content: "hi".into(),
                ..Default::default()
            })
            .unwrap();
        assert!(l.ends_with(b"\n"));
        let v: Value = serde_json::from_slice(&l).unwrap();
        assert_eq!(v["response"], "hi");
        assert_eq!(v["done"], false);
    }
}
