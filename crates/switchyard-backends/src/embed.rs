//! One embeddings attempt against one deployment: Ollama's native `/api/embed`, or an
//! OpenAI-compatible server's `/v1/embeddings`.
//!
//! Embeddings answer in one piece, so there is no event stream: the body is read whole (within
//! the deployment's total timeout) and decoded into one vector per input. Errors are classified
//! like a chat attempt's ([`BackendError`]), so the router's fallback policy applies unchanged:
//! Ollama's `truncate:false` answer ("the input length exceeds the context length") is an
//! overflow, a refused connection moves on, the caller's own 400 ends the request.

use bytes::Bytes;
use futures::StreamExt;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderName, HeaderValue};
use http::{Request, Uri};
use http_body_util::{BodyExt, Full};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use switchyard_core::FailureClass;
use switchyard_core::config::{Deployment, Provider};
use switchyard_proto as pb;
use switchyard_proto::embed_input::Input;
use tokio::time::Instant;

use crate::{BackendError, Backends};

/// Largest embeddings answer read (thousands of long vectors fit).
const MAX_ANSWER: usize = 64 * 1024 * 1024;

static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// What one embeddings attempt sends.
pub struct EmbedCall<'a> {
    pub deployment: &'a Deployment,
    pub inputs: &'a [pb::EmbedInput],
    /// Vector length wanted (`None`: the model's own).
    pub dimensions: Option<u32>,
    pub user: Option<&'a str>,
    pub traceparent: Option<&'a str>,
    /// Ollama's `keep_alive` from the request (verbatim JSON), sent to Ollama instead of the
    /// deployment's own; OpenAI-compatible servers ignore it.
    pub keep_alive_json: Option<&'a str>,
}

/// A successful attempt: one vector per input, in input order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Embedded {
    pub vectors: Vec<Vec<f32>>,
    /// Tokens the backend reports it evaluated (all inputs together).
    pub prompt_tokens: Option<u32>,
}

/// Whether `provider` takes inputs given as token ids (Ollama's `/api/embed` takes text only).
pub fn takes_token_ids(provider: Provider) -> bool {
    provider == Provider::OpenAi
}

impl Backends {
    /// Runs one embeddings attempt.
    pub async fn embed(&self, call: EmbedCall<'_>) -> Result<Embedded, BackendError> {
        let started = Instant::now();
        let d = call.deployment;
        let (path, body) = match d.provider {
            Provider::Ollama => ("/api/embed", ollama_body(&call)?),
            Provider::OpenAi => ("/v1/embeddings", openai_body(&call)),
        };
        let (client, auth) = self.client_of(d).ok_or_else(|| {
            BackendError::new(
                FailureClass::Protocol,
                format!("no client for {}", d.api_base),
            )
        })?;
        let url = format!("{}{path}", d.api_base);
        let uri: Uri = url.parse().map_err(|e| {
            BackendError::new(FailureClass::Connect, format!("invalid URL {url}: {e}"))
        })?;
        let mut rb =
            Request::post(uri).header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if d.api_key.is_some() {
            let v = auth.cloned().ok_or_else(|| {
                BackendError::new(
                    FailureClass::Protocol,
                    "the deployment's api_key cannot be sent in an HTTP header",
                )
            })?;
            rb = rb.header(AUTHORIZATION, v);
        }
        if let Some(tp) = call.traceparent
            && let Ok(v) = HeaderValue::from_str(tp)
        {
            rb = rb.header(TRACEPARENT.clone(), v);
        }
        let req = rb.body(Full::new(Bytes::from(body))).map_err(|e| {
            BackendError::new(
                FailureClass::Protocol,
                format!("cannot build the request: {e}"),
            )
        })?;
        let deadline = started + d.timeouts.total;
        let resp = match tokio::time::timeout_at(deadline, client.request(req)).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => return Err(BackendError::from_transport(&e)),
            Err(_) => {
                return Err(BackendError::new(
                    FailureClass::Timeout,
                    format!("no answer within {:?}", d.timeouts.total),
                ));
            }
        };
        let status = resp.status();
        let body = read_whole(resp.into_body(), deadline).await?;
        if !status.is_success() {
            return Err(BackendError::from_response(
                status.as_u16(),
                &String::from_utf8_lossy(&body),
            ));
        }
        let out = match d.provider {
            Provider::Ollama => ollama_answer(&body)?,
            Provider::OpenAi => openai_answer(&body)?,
        };
        if out.vectors.len() != call.inputs.len() {
            return Err(BackendError::new(
                FailureClass::Protocol,
                format!(
                    "the server returned {} vector(s) for {} input(s)",
                    out.vectors.len(),
                    call.inputs.len()
                ),
            ));
        }
        Ok(out)
    }
}

/// Reads a body whole by `deadline`.
async fn read_whole(
    body: hyper::body::Incoming,
    deadline: Instant,
) -> Result<Vec<u8>, BackendError> {
    let mut data = body.into_data_stream();
    let mut whole = Vec::new();
    loop {
        match tokio::time::timeout_at(deadline, data.next()).await {
            Ok(Some(Ok(chunk))) => {
                whole.extend_from_slice(&chunk);
                if whole.len() > MAX_ANSWER {
                    return Err(BackendError::new(
                        FailureClass::Protocol,
                        "an embeddings answer exceeded 64 MiB",
                    ));
                }
            }
            Ok(Some(Err(e))) => {
                let mut err = BackendError::from_body(&e);
                err.class = FailureClass::StreamBroken;
                return Err(err);
            }
            Ok(None) => return Ok(whole),
            Err(_) => {
                return Err(BackendError::new(
                    FailureClass::Timeout,
                    "the answer did not arrive within the total timeout",
                ));
            }
        }
    }
}

fn texts<'a>(call: &EmbedCall<'a>) -> Result<Vec<&'a str>, BackendError> {
    call.inputs
        .iter()
        .map(|i| match &i.input {
            Some(Input::Text(t)) => Ok(t.as_str()),
            Some(Input::Tokens(_)) => Err(BackendError::new(
                FailureClass::Client,
                "Ollama's /api/embed takes text, not token ids",
            )),
            None => Ok(""),
        })
        .collect()
}

/// `/api/embed`: the inputs, `truncate:false` (an over-long input is an error to fall back on,
/// not a silently shortened vector), and `num_ctx` pinned to the window like every chat request.
pub(crate) fn ollama_body(call: &EmbedCall<'_>) -> Result<Vec<u8>, BackendError> {
    let d = call.deployment;
    let mut options: Map<String, Value> = d.options.clone();
    if let Some(w) = d.context_window {
        options.insert("num_ctx".into(), w.into());
    }
    let mut body = json!({
        "model": d.model,
        "input": texts(call)?,
        "truncate": d.silent_truncation,
        "options": options,
    });
    if let Some(o) = body.as_object_mut() {
        let asked = crate::ollama::request_json(call.keep_alive_json);
        if let Some(k) = asked.or_else(|| d.keep_alive.clone()) {
            o.insert("keep_alive".into(), k);
        }
        if let Some(n) = call.dimensions {
            o.insert("dimensions".into(), n.into());
        }
    }
    Ok(body.to_string().into_bytes())
}

/// `/v1/embeddings` with float vectors asked for (what every compatible server returns).
pub(crate) fn openai_body(call: &EmbedCall<'_>) -> Vec<u8> {
    let input: Vec<Value> = call
        .inputs
        .iter()
        .map(|i| match &i.input {
            Some(Input::Text(t)) => Value::from(t.as_str()),
            Some(Input::Tokens(t)) => Value::from(t.ids.clone()),
            None => Value::from(""),
        })
        .collect();
    let mut body = json!({
        "model": call.deployment.model,
        "input": input,
        "encoding_format": "float",
    });
    if let Some(o) = body.as_object_mut() {
        if let Some(n) = call.dimensions {
            o.insert("dimensions".into(), n.into());
        }
        if let Some(u) = call.user {
            o.insert("user".into(), u.into());
        }
    }
    body.to_string().into_bytes()
}

fn unreadable(what: &str, e: &serde_json::Error) -> BackendError {
    BackendError::new(
        FailureClass::Protocol,
        format!("unreadable {what} answer: {e}"),
    )
}

#[derive(Deserialize)]
struct OllamaAnswer {
    #[serde(default)]
    embeddings: Option<Vec<Vec<f32>>>,
    #[serde(default)]
    prompt_eval_count: Option<u32>,
}

pub(crate) fn ollama_answer(body: &[u8]) -> Result<Embedded, BackendError> {
    let a: OllamaAnswer = serde_json::from_slice(body).map_err(|e| unreadable("/api/embed", &e))?;
    Ok(Embedded {
        vectors: a.embeddings.unwrap_or_default(),
        prompt_tokens: a.prompt_eval_count,
    })
}

#[derive(Deserialize)]
struct OpenAiAnswer {
    #[serde(default)]
    data: Option<Vec<OpenAiItem>>,
    #[serde(default)]
    usage: Option<OpenAiUsage>,
}

#[derive(Deserialize)]
struct OpenAiItem {
    #[serde(default)]
    index: Option<usize>,
    embedding: Vector,
}

/// One input's embedding: a vector, or one vector per token from a server that does not pool
/// (llama-cpp-python with a model that has no pooling type answers `[[…], […], …]`).
#[derive(Deserialize)]
#[serde(untagged)]
enum Vector {
    Pooled(Vec<f32>),
    PerToken(Vec<Vec<f32>>),
}

impl Vector {
    /// The input's vector: per-token vectors are averaged and scaled to unit length, as pooling
    /// servers do.
    fn pooled(self) -> Vec<f32> {
        let tokens = match self {
            Vector::Pooled(v) => return v,
            Vector::PerToken(t) => t,
        };
        let dims = tokens.first().map_or(0, Vec::len);
        let mut mean = vec![0f32; dims];
        for t in &tokens {
            for (m, x) in mean.iter_mut().zip(t) {
                *m += x;
            }
        }
        let n = tokens.len().max(1) as f32;
        mean.iter_mut().for_each(|m| *m /= n);
        let norm = mean.iter().map(|x| x * x).sum::<f32>().sqrt();
        if norm > 0.0 {
            mean.iter_mut().for_each(|m| *m /= norm);
        }
        mean
    }
}

#[derive(Deserialize)]
struct OpenAiUsage {
    #[serde(default)]
    prompt_tokens: Option<u32>,
}

pub(crate) fn openai_answer(body: &[u8]) -> Result<Embedded, BackendError> {
    let a: OpenAiAnswer =
        serde_json::from_slice(body).map_err(|e| unreadable("/v1/embeddings", &e))?;
    let mut items: Vec<(usize, Vec<f32>)> = a
        .data
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(pos, it)| (it.index.unwrap_or(pos), it.embedding.pooled()))
        .collect();
    // A server may list them in any order; `index` says whose each is.
    items.sort_by_key(|(i, _)| *i);
    Ok(Embedded {
        vectors: items.into_iter().map(|(_, v)| v).collect(),
        prompt_tokens: a.usage.and_then(|u| u.prompt_tokens),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn answers_of_both_kinds_are_read() {
        let o = ollama_answer(
            br#"{"model":"m","embeddings":[[0.5,-1],[1,2]],"total_duration":1,"prompt_eval_count":7}"#,
        )
        .unwrap();
        assert_eq!(o.vectors, vec![vec![0.5, -1.0], vec![1.0, 2.0]]);
        assert_eq!(o.prompt_tokens, Some(7));
        let a = openai_answer(
            br#"{"object":"list","data":[{"object":"embedding","index":1,"embedding":[2]},{"object":"embedding","index":0,"embedding":[1]}],"model":"m","usage":null}"#,
        )
        .unwrap();
        assert_eq!(a.vectors, vec![vec![1.0], vec![2.0]]);
        assert_eq!(a.prompt_tokens, None);
        assert!(openai_answer(b"{\"data\":[{\"embedding\":\"AAAA\"}]}").is_err());
        // Per-token vectors (a server that does not pool) are averaged to one unit vector.
        let p = openai_answer(br#"{"data":[{"index":0,"embedding":[[3,0],[3,8]]}]}"#).unwrap();
        assert_eq!(p.vectors, vec![vec![0.6, 0.8]]);
    }
}
