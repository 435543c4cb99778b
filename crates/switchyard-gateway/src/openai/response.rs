//! The OpenAI response shapes: a whole `chat.completion`, or `chat.completion.chunk` SSE events.
//!
//! Streams follow what OpenAI's SDKs parse: one `id` and `created` for the whole stream, a first
//! chunk carrying the role, content deltas, one finish chunk with an empty delta, a usage chunk
//! with `choices: []` when `stream_options.include_usage` is set, then `data: [DONE]`.

use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;
use switchyard_proto as pb;

/// A choice's `logprobs`: the tokens' entries as the router carried them (`Delta.logprobs_json`).
#[derive(Serialize)]
struct Logprobs<'a> {
    content: &'a [Value],
    refusal: Option<()>,
}

/// The entries of one delta's `logprobs_json` (none when absent or unreadable).
fn entries(json: Option<&str>) -> Vec<Value> {
    json.and_then(|j| serde_json::from_str(j).ok())
        .unwrap_or_default()
}

#[derive(Serialize)]
struct Usage {
    prompt_tokens: u32,
    completion_tokens: u32,
    total_tokens: u32,
}

impl From<&pb::Usage> for Usage {
    fn from(u: &pb::Usage) -> Self {
        Usage {
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
            total_tokens: u.prompt_tokens.saturating_add(u.completion_tokens),
        }
    }
}

#[derive(Serialize)]
struct FunctionOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    arguments: &'a str,
}

#[derive(Serialize)]
struct ToolCallOut<'a> {
    index: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    function: FunctionOut<'a>,
}

fn tool_calls(calls: &[pb::ToolCallDelta]) -> Vec<ToolCallOut<'_>> {
    calls
        .iter()
        .map(|c| ToolCallOut {
            index: c.index,
            id: c.id.as_deref(),
            kind: c.id.as_ref().map(|_| "function"),
            function: FunctionOut {
                name: c.name.as_deref(),
                arguments: &c.arguments,
            },
        })
        .collect()
}

#[derive(Serialize)]
struct Message<'a> {
    role: &'static str,
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_content: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<ToolCallOut<'a>>,
}

#[derive(Serialize)]
struct Choice<'a> {
    index: u32,
    message: Message<'a>,
    finish_reason: &'a str,
    logprobs: Option<Logprobs<'a>>,
}

#[derive(Serialize)]
struct Completion<'a> {
    id: &'a str,
    object: &'static str,
    created: i64,
    model: &'a str,
    choices: Vec<Choice<'a>>,
    usage: Usage,
    system_fingerprint: Option<()>,
}

/// One choice of a whole answer: everything its deltas carried, and why it stopped.
#[derive(Debug, Default)]
pub struct Answer {
    pub delta: pb::Delta,
    pub finish: String,
    /// Log probability entries of every delta, in order (`None` when none carried any).
    pub logprobs: Option<Vec<Value>>,
}

impl Answer {
    /// Adds one delta of the answer.
    pub fn push(&mut self, d: pb::Delta) {
        self.delta.content.push_str(&d.content);
        if let Some(r) = d.reasoning {
            self.delta
                .reasoning
                .get_or_insert_with(String::new)
                .push_str(&r);
        }
        self.delta.tool_calls.extend(d.tool_calls);
        if d.logprobs_json.is_some() {
            self.logprobs
                .get_or_insert_with(Vec::new)
                .extend(entries(d.logprobs_json.as_deref()));
        }
    }
}

/// The body of a non-streaming response with one choice per answer (`n`).
pub fn completion_json(
    route: &pb::RouteInfo,
    model: &str,
    answers: &[Answer],
    usage: &pb::Usage,
) -> Result<Vec<u8>, serde_json::Error> {
    let choices = answers
        .iter()
        .zip(0u32..)
        .map(|(a, index)| {
            let delta = &a.delta;
            let content = if delta.content.is_empty() && !delta.tool_calls.is_empty() {
                None
            } else {
                Some(delta.content.as_str())
            };
            Choice {
                index,
                message: Message {
                    role: "assistant",
                    content,
                    reasoning_content: delta.reasoning.as_deref(),
                    tool_calls: tool_calls(&delta.tool_calls),
                },
                finish_reason: if a.finish.is_empty() {
                    "stop"
                } else {
                    &a.finish
                },
                logprobs: a.logprobs.as_deref().map(|content| Logprobs {
                    content,
                    refusal: None,
                }),
            }
        })
        .collect();
    serde_json::to_vec(&Completion {
        id: &route.response_id,
        object: "chat.completion",
        created: route.created,
        model,
        choices,
        usage: usage.into(),
        system_fingerprint: None,
    })
}

#[derive(Serialize, Default)]
struct DeltaOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_content: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<ToolCallOut<'a>>,
}

#[derive(Serialize)]
struct ChunkChoice<'a> {
    index: u32,
    delta: DeltaOut<'a>,
    finish_reason: Option<&'a str>,
    logprobs: Option<Logprobs<'a>>,
}

#[derive(Serialize)]
struct Chunk<'a> {
    id: &'a str,
    object: &'static str,
    created: i64,
    model: &'a str,
    choices: Vec<ChunkChoice<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Usage>,
}

/// Writes SSE events for one stream.
pub struct ChunkWriter {
    id: String,
    created: i64,
    model: String,
}

/// One SSE `data:` frame.
pub(crate) fn sse(json: Vec<u8>) -> Bytes {
    let mut out = Vec::with_capacity(json.len() + 8);
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(&json);
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

impl ChunkWriter {
    pub fn new(route: &pb::RouteInfo, model: &str) -> Self {
        ChunkWriter {
            id: route.response_id.clone(),
            created: route.created,
            model: model.to_string(),
        }
    }

    fn chunk(
        &self,
        index: u32,
        delta: DeltaOut<'_>,
        logprobs: Option<&[Value]>,
        finish: Option<&str>,
        usage: Option<Usage>,
        no_choices: bool,
    ) -> Bytes {
        let choices = if no_choices {
            Vec::new()
        } else {
            vec![ChunkChoice {
                index,
                delta,
                finish_reason: finish,
                logprobs: logprobs.map(|content| Logprobs {
                    content,
                    refusal: None,
                }),
            }]
        };
        let c = Chunk {
            id: &self.id,
            object: "chat.completion.chunk",
            created: self.created,
            model: &self.model,
            choices,
            usage,
        };
        sse(serde_json::to_vec(&c).unwrap_or_default())
    }

    /// The first chunk: the assistant role with empty content.
    pub fn role(&self) -> Bytes {
        self.role_at(0)
    }

    /// The first chunk of choice `index`.
    pub fn role_at(&self, index: u32) -> Bytes {
        self.chunk(
            index,
            DeltaOut {
                role: Some("assistant"),
                content: Some(""),
                ..DeltaOut::default()
            },
            None,
            None,
            None,
            false,
        )
    }

    pub fn delta(&self, d: &pb::Delta) -> Bytes {
        self.delta_at(0, d)
    }

    /// A delta of choice `index`.
    pub fn delta_at(&self, index: u32, d: &pb::Delta) -> Bytes {
        let logprobs = d.logprobs_json.as_deref().map(|j| entries(Some(j)));
        self.chunk(
            index,
            DeltaOut {
                role: None,
                content: if d.content.is_empty() {
                    None
                } else {
                    Some(&d.content)
                },
                reasoning_content: d.reasoning.as_deref(),
                tool_calls: tool_calls(&d.tool_calls),
            },
            logprobs.as_deref(),
            None,
            None,
            false,
        )
    }

    pub fn finish(&self, reason: &str) -> Bytes {
        self.finish_at(0, reason)
    }

    /// The finish chunk of choice `index`.
    pub fn finish_at(&self, index: u32, reason: &str) -> Bytes {
        self.chunk(index, DeltaOut::default(), None, Some(reason), None, false)
    }

    pub fn usage(&self, u: &pb::Usage) -> Bytes {
        self.chunk(0, DeltaOut::default(), None, None, Some(u.into()), true)
    }

    pub fn error(body: &serde_json::Value) -> Bytes {
        sse(serde_json::to_vec(body).unwrap_or_default())
    }

    pub fn done() -> Bytes {
        Bytes::from_static(b"data: [DONE]\n\n")
    }
}
