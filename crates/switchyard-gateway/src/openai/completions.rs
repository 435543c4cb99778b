//! The legacy text completion API (`POST /v1/completions`): the request, turned into router
//! requests, and the `text_completion` answer and chunks.
//!
//! Code-completion tools and older clients (LiteLLM's `text_completion`, LangChain's `OpenAI`)
//! call it. A text completion continues the prompt as it is, with no chat template; the router
//! carries it as `ChatRequest.prompt` (with the prompt also as one user message, so counting,
//! planning and fallback work unchanged), and a broken stream is continued by appending what was
//! produced to the prompt.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use switchyard_proto as pb;

use super::request::{MAX_CHOICES, Stop, StreamOptions, check_range};
use super::response::sse;
use crate::error::ApiError;

#[derive(Debug, Deserialize)]
pub struct CompletionRequest {
    pub model: String,
    pub prompt: Prompt,
    #[serde(default)]
    pub suffix: Option<String>,
    #[serde(default)]
    pub echo: Option<bool>,
    #[serde(default)]
    pub max_tokens: Option<u32>,
    #[serde(default)]
    pub n: Option<u32>,
    #[serde(default)]
    pub best_of: Option<u32>,
    #[serde(default)]
    pub stop: Option<Stop>,
    #[serde(default)]
    pub stream: Option<bool>,
    #[serde(default)]
    pub stream_options: Option<StreamOptions>,
    #[serde(default)]
    pub temperature: Option<f64>,
    #[serde(default)]
    pub top_p: Option<f64>,
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
    /// Log probabilities of the output tokens, with this many alternatives each (0-5).
    #[serde(default)]
    pub logprobs: Option<u32>,
    /// Everything else (`logit_bias`, …), passed through to OpenAI-compatible servers.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `prompt`: a string, a list of strings, or token ids (which a gateway that routes by model
/// cannot turn back into text for every tokenizer: refused with a clear 400).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Prompt {
    One(String),
    Many(Vec<String>),
    Tokens(Vec<Value>),
}

/// Most alternatives per token the legacy `logprobs` may ask for.
const MAX_LOGPROBS: u32 = 5;

/// The router requests of one text completion: one per prompt and choice, in OpenAI's order
/// (`index = prompt * n + choice`), with the prompt to echo for each.
#[derive(Debug)]
pub struct TextRequests {
    pub requests: Vec<pb::ChatRequest>,
    pub echoes: Vec<Option<String>>,
    pub stream: bool,
    pub include_usage: bool,
    pub model: String,
}

impl CompletionRequest {
    pub fn into_router_requests(self, request_id: &str) -> Result<TextRequests, ApiError> {
        if self.model.trim().is_empty() {
            return Err(ApiError::invalid("model must not be empty", Some("model")));
        }
        let prompts = match self.prompt {
            Prompt::One(p) => vec![p],
            Prompt::Many(ps) if ps.is_empty() => {
                return Err(ApiError::invalid(
                    "prompt must not be an empty list",
                    Some("prompt"),
                ));
            }
            Prompt::Many(ps) => ps,
            Prompt::Tokens(_) => {
                return Err(ApiError::invalid(
                    "prompt: token ids are not supported (each model behind this gateway has its own tokenizer); send the text",
                    Some("prompt"),
                ));
            }
        };
        let n = self.n.unwrap_or(1);
        if !(1..=MAX_CHOICES).contains(&n) {
            return Err(ApiError::invalid(
                format!("n must be between 1 and {MAX_CHOICES}"),
                Some("n"),
            ));
        }
        if self.best_of.is_some_and(|b| b != n) {
            return Err(ApiError::invalid(
                "best_of is not supported (it needs every candidate's log probabilities); leave it out or equal to n",
                Some("best_of"),
            ));
        }
        let total = prompts.len() * n as usize;
        if total > MAX_CHOICES as usize {
            return Err(ApiError::invalid(
                format!(
                    "prompt: {} prompts x n={n} is {total} answers, more than {MAX_CHOICES} in one request",
                    prompts.len()
                ),
                Some("prompt"),
            ));
        }
        if self.max_tokens == Some(0) {
            return Err(ApiError::invalid(
                "max_tokens must be at least 1",
                Some("max_tokens"),
            ));
        }
        check_range(self.temperature, 0.0, 2.0, "temperature")?;
        check_range(self.top_p, 0.0, 1.0, "top_p")?;
        check_range(self.presence_penalty, -2.0, 2.0, "presence_penalty")?;
        check_range(self.frequency_penalty, -2.0, 2.0, "frequency_penalty")?;
        if let Some(n) = self.logprobs.filter(|n| *n > MAX_LOGPROBS) {
            return Err(ApiError::invalid(
                format!("logprobs must be between 0 and {MAX_LOGPROBS}, got {n}"),
                Some("logprobs"),
            ));
        }
        let stream = self.stream.unwrap_or(false);
        let include_usage = self
            .stream_options
            .as_ref()
            .and_then(|o| o.include_usage)
            .unwrap_or(false);
        let sampling = pb::Sampling {
            temperature: self.temperature,
            top_p: self.top_p,
            max_tokens: self.max_tokens,
            max_completion_tokens: None,
            stop: match self.stop {
                None => Vec::new(),
                Some(Stop::One(s)) => vec![s],
                Some(Stop::Many(v)) => v,
            },
            seed: self.seed,
            presence_penalty: self.presence_penalty,
            frequency_penalty: self.frequency_penalty,
            top_k: self.top_k,
            min_p: self.min_p,
            repeat_penalty: self.repeat_penalty,
        };
        let extra_json = if self.extra.is_empty() {
            String::new()
        } else {
            Value::Object(self.extra).to_string()
        };
        let echo = self.echo.unwrap_or(false);
        let mut requests = Vec::with_capacity(total);
        let mut echoes = Vec::with_capacity(total);
        for prompt in &prompts {
            for _ in 0..n {
                let id = if total == 1 {
                    request_id.to_owned()
                } else {
                    format!("{request_id}-{}", requests.len())
                };
                requests.push(pb::ChatRequest {
                    request_id: id,
                    model: self.model.clone(),
                    messages: vec![pb::Message {
                        role: "user".into(),
                        content: Some(prompt.clone()),
                        ..Default::default()
                    }],
                    sampling: Some(sampling.clone()),
                    stream,
                    include_usage: true,
                    user: self.user.clone(),
                    extra_json: extra_json.clone(),
                    prompt: Some(prompt.clone()),
                    suffix: self.suffix.clone(),
                    logprobs: self.logprobs.map(|_| true),
                    top_logprobs: self.logprobs,
                    api: "openai.completions".into(),
                    ..Default::default()
                });
                echoes.push(echo.then(|| prompt.clone()));
            }
        }
        Ok(TextRequests {
            requests,
            echoes,
            stream,
            include_usage,
            model: self.model,
        })
    }
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
struct Choice<'a> {
    text: &'a str,
    index: u32,
    logprobs: Option<Legacy>,
    finish_reason: Option<&'a str>,
}

/// A text completion's `logprobs`: four arrays, one position per token.
#[derive(Serialize)]
struct Legacy {
    tokens: Vec<Value>,
    token_logprobs: Vec<Value>,
    top_logprobs: Vec<Map<String, Value>>,
    text_offset: Vec<usize>,
}

/// Chat-shaped entries (`Delta.logprobs_json` items) in the legacy shape; `offset` is where the
/// first token starts in the choice's text (in characters). The chosen token is always among
/// its position's alternatives, as OpenAI gives up to `logprobs + 1`.
fn legacy(entries: &[Value], mut offset: usize) -> Legacy {
    let mut out = Legacy {
        tokens: Vec::with_capacity(entries.len()),
        token_logprobs: Vec::with_capacity(entries.len()),
        top_logprobs: Vec::with_capacity(entries.len()),
        text_offset: Vec::with_capacity(entries.len()),
    };
    for e in entries {
        let token = e.get("token").cloned().unwrap_or(Value::Null);
        let logprob = e.get("logprob").cloned().unwrap_or(Value::Null);
        let mut top = Map::new();
        for alt in e
            .get("top_logprobs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let (Some(t), Some(lp)) =
                (alt.get("token").and_then(Value::as_str), alt.get("logprob"))
            {
                top.insert(t.to_owned(), lp.clone());
            }
        }
        if let Some(t) = token.as_str() {
            top.entry(t.to_owned()).or_insert_with(|| logprob.clone());
        }
        out.text_offset.push(offset);
        offset += token.as_str().map_or(0, |t| t.chars().count());
        out.tokens.push(token);
        out.token_logprobs.push(logprob);
        out.top_logprobs.push(top);
    }
    out
}

/// One choice of a whole text completion: its text (the echoed prompt first), why it stopped,
/// and its tokens' log probabilities when asked for, starting at character `offset` of `text`.
pub struct TextChoice {
    pub text: String,
    pub finish: String,
    pub logprobs: Option<Vec<Value>>,
    pub offset: usize,
}

#[derive(Serialize)]
struct TextCompletion<'a> {
    id: &'a str,
    object: &'static str,
    created: i64,
    model: &'a str,
    choices: Vec<Choice<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Usage>,
    system_fingerprint: Option<()>,
}

/// Writes `text_completion` answers and chunks for one request.
pub struct TextWriter {
    id: String,
    created: i64,
    model: String,
}

impl TextWriter {
    pub fn new(route: &pb::RouteInfo, model: &str) -> Self {
        TextWriter {
            id: route
                .response_id
                .replacen("chatcmpl-", "cmpl-", 1)
                .to_string(),
            created: route.created,
            model: model.to_owned(),
        }
    }

    fn encode(&self, choices: Vec<Choice<'_>>, usage: Option<Usage>) -> Vec<u8> {
        serde_json::to_vec(&TextCompletion {
            id: &self.id,
            object: "text_completion",
            created: self.created,
            model: &self.model,
            choices,
            usage,
            system_fingerprint: None,
        })
        .unwrap_or_default()
    }

    /// A chunk of text of choice `index`.
    pub fn text_at(&self, index: u32, text: &str) -> Bytes {
        self.text_with_logprobs_at(index, text, None, 0)
    }

    /// A chunk of text of choice `index` with its tokens' log probabilities (chat-shaped
    /// entries, written in the legacy shape from character `offset` of the choice's text).
    pub fn text_with_logprobs_at(
        &self,
        index: u32,
        text: &str,
        entries: Option<&[Value]>,
        offset: usize,
    ) -> Bytes {
        sse(self.encode(
            vec![Choice {
                text,
                index,
                logprobs: entries.map(|e| legacy(e, offset)),
                finish_reason: None,
            }],
            None,
        ))
    }

    /// The last chunk of choice `index`.
    pub fn finish_at(&self, index: u32, reason: &str) -> Bytes {
        sse(self.encode(
            vec![Choice {
                text: "",
                index,
                logprobs: None,
                finish_reason: Some(reason),
            }],
            None,
        ))
    }

    /// The usage chunk (no choices), when `stream_options.include_usage` asked for it.
    pub fn usage(&self, u: &pb::Usage) -> Bytes {
        sse(self.encode(Vec::new(), Some(u.into())))
    }

    /// A whole answer: each choice's text (the echoed prompt first) and finish reason.
    pub fn whole(&self, texts: &[TextChoice], usage: &pb::Usage) -> Vec<u8> {
        let choices = texts
            .iter()
            .zip(0u32..)
            .map(|(c, index)| Choice {
                text: &c.text,
                index,
                logprobs: c.logprobs.as_deref().map(|e| legacy(e, c.offset)),
                finish_reason: Some(if c.finish.is_empty() {
                    "stop"
                } else {
                    &c.finish
                }),
            })
            .collect();
        self.encode(choices, Some(usage.into()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use serde_json::json;

    fn convert(v: Value) -> Result<TextRequests, ApiError> {
        serde_json::from_value::<CompletionRequest>(v)
            .unwrap()
            .into_router_requests("r")
    }

    #[test]
    fn one_request_per_prompt_and_choice_in_openai_order() {
        let t = convert(
            json!({"model": "m", "prompt": ["a", "b"], "n": 2, "echo": true, "suffix": "z"}),
        )
        .unwrap();
        let prompts: Vec<_> = t
            .requests
            .iter()
            .map(|r| r.prompt.clone().unwrap())
            .collect();
        assert_eq!(prompts, ["a", "a", "b", "b"]);
        assert_eq!(t.requests[3].request_id, "r-3");
        assert_eq!(t.requests[0].messages[0].content.as_deref(), Some("a"));
        assert_eq!(t.requests[0].suffix.as_deref(), Some("z"));
        assert_eq!(t.echoes[2].as_deref(), Some("b"));
    }

    #[test]
    fn token_prompts_and_best_of_get_400_naming_the_field() {
        let e = convert(json!({"model": "m", "prompt": [1, 2, 3]})).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("prompt"));
        let e = convert(json!({"model": "m", "prompt": "x", "best_of": 3})).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("best_of"));
        let e = convert(json!({"model": "m", "prompt": []})).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("prompt"));
        let e = convert(json!({"model": "m", "prompt": "x", "logprobs": 6})).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("logprobs"));
    }

    #[test]
    fn logprobs_are_asked_for_and_written_in_the_legacy_shape() {
        let t = convert(json!({"model": "m", "prompt": "x", "logprobs": 2})).unwrap();
        assert_eq!(t.requests[0].logprobs, Some(true));
        assert_eq!(t.requests[0].top_logprobs, Some(2));
        let entries = [
            json!({"token": "ab", "logprob": -0.5, "bytes": null,
                   "top_logprobs": [{"token": "ab", "logprob": -0.5}, {"token": "a", "logprob": -1.0}]}),
            json!({"token": "é", "logprob": -0.25, "top_logprobs": []}),
        ];
        let v = serde_json::to_value(legacy(&entries, 3)).unwrap();
        assert_eq!(v["tokens"], json!(["ab", "é"]));
        assert_eq!(v["token_logprobs"], json!([-0.5, -0.25]));
        assert_eq!(v["top_logprobs"][0], json!({"ab": -0.5, "a": -1.0}));
        assert_eq!(v["top_logprobs"][1], json!({"é": -0.25}));
        assert_eq!(v["text_offset"], json!([3, 5]));
    }
}
