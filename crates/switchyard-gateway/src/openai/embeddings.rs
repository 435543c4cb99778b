//! OpenAI's embeddings wire types: the `POST /v1/embeddings` request we accept and the list we
//! answer with.
//!
//! `input` comes in four shapes (a string, strings, token ids, lists of token ids) and is read by
//! hand so a wrong one gets an error naming `input[i]` rather than serde's "did not match any
//! variant". Vectors are written as float arrays, or as `encoding_format: "base64"` asks — the
//! default of both official SDKs — as base64 of the little-endian `f32` bytes.

use serde::Deserialize;
use serde_json::{Value, json};
use switchyard_proto as pb;
use switchyard_proto::embed_input::Input;

use crate::error::ApiError;

/// Most inputs one request may carry (OpenAI's own limit).
pub const MAX_INPUTS: usize = 2048;

/// The request body.
#[derive(Debug, Deserialize)]
pub struct EmbeddingRequest {
    pub model: String,
    pub input: Value,
    #[serde(default)]
    pub encoding_format: Option<String>,
    #[serde(default)]
    pub dimensions: Option<u32>,
    #[serde(default)]
    pub user: Option<String>,
}

/// How vectors are written in the answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Float,
    Base64,
}

impl EmbeddingRequest {
    /// Checks the request and builds the router's; also says how to write the vectors.
    pub fn into_router_request(
        self,
        request_id: String,
    ) -> Result<(pb::EmbedRequest, Encoding), ApiError> {
        let encoding = match self.encoding_format.as_deref() {
            None | Some("float") => Encoding::Float,
            Some("base64") => Encoding::Base64,
            Some(other) => {
                return Err(ApiError::invalid(
                    format!("encoding_format: \"{other}\" is not one of: float, base64"),
                    Some("encoding_format"),
                ));
            }
        };
        if self.dimensions == Some(0) {
            return Err(ApiError::invalid(
                "dimensions: must be at least 1",
                Some("dimensions"),
            ));
        }
        let inputs = inputs(self.input)?;
        Ok((
            pb::EmbedRequest {
                request_id,
                model: self.model,
                inputs,
                dimensions: self.dimensions.unwrap_or(0),
                user: self.user,
                api: "openai.embeddings".into(),
                ..Default::default()
            },
            encoding,
        ))
    }
}

fn bad_input(message: impl Into<String>) -> ApiError {
    ApiError::invalid(message, Some("input"))
}

/// Token-id input as text. The ids clients send come from tiktoken's `cl100k_base` (LangChain's
/// `OpenAIEmbeddings` counts and splits with it by default, whatever the model), not from the
/// model behind the gateway, so they are decoded with it and every backend gets the text, as
/// LiteLLM does.
fn token_text(items: &[Value], at: &str) -> Result<pb::EmbedInput, ApiError> {
    let ids = token_ids(items, at)?.ids;
    let bpe = tiktoken_rs::cl100k_base_singleton();
    let text = bpe.decode(&ids).map_err(|e| {
        bad_input(format!(
            "{at}: these token ids are not text in cl100k_base (the tokenizer OpenAI clients count with): {e}"
        ))
    })?;
    text_input(text, at)
}

fn token_ids(items: &[Value], at: &str) -> Result<pb::TokenIds, ApiError> {
    let ids = items
        .iter()
        .enumerate()
        .map(|(j, v)| {
            v.as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| {
                    bad_input(format!("{at}[{j}]: expected a token id (an integer ≥ 0)"))
                })
        })
        .collect::<Result<Vec<u32>, ApiError>>()?;
    if ids.is_empty() {
        return Err(bad_input(format!("{at}: a token list must not be empty")));
    }
    Ok(pb::TokenIds { ids })
}

fn text_input(s: String, at: &str) -> Result<pb::EmbedInput, ApiError> {
    if s.is_empty() {
        return Err(bad_input(format!("{at}: must not be an empty string")));
    }
    Ok(pb::EmbedInput {
        input: Some(Input::Text(s)),
    })
}

/// `input` in any of its four shapes, as the router's inputs.
fn inputs(input: Value) -> Result<Vec<pb::EmbedInput>, ApiError> {
    let items = match input {
        Value::String(s) => return Ok(vec![text_input(s, "input")?]),
        Value::Array(items) => items,
        _ => {
            return Err(bad_input(
                "input: expected a string, an array of strings, an array of token ids or an array of token-id arrays",
            ));
        }
    };
    if items.is_empty() {
        return Err(bad_input("input: must not be empty"));
    }
    if items.len() > MAX_INPUTS {
        return Err(bad_input(format!(
            "input: {} inputs is more than the {MAX_INPUTS} one request may carry",
            items.len()
        )));
    }
    if items.iter().all(Value::is_number) {
        return Ok(vec![token_text(&items, "input")?]);
    }
    items
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            let at = format!("input[{i}]");
            match v {
                Value::String(s) => text_input(s, &at),
                Value::Array(ids) => token_text(&ids, &at),
                _ => Err(bad_input(format!(
                    "{at}: expected a string or an array of token ids"
                ))),
            }
        })
        .collect()
}

/// The answer: one `embedding` object per vector, in input order.
pub fn response_json(
    model: &str,
    vectors: &[pb::Embedding],
    encoding: Encoding,
    prompt_tokens: u32,
) -> Value {
    let data: Vec<Value> = vectors
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let embedding = match encoding {
                Encoding::Float => json!(v.values),
                Encoding::Base64 => Value::String(base64_f32(&v.values)),
            };
            json!({"object": "embedding", "index": i, "embedding": embedding})
        })
        .collect();
    json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    })
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 (with padding) of the little-endian bytes of `values`.
pub fn base64_f32(values: &[f32]) -> String {
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * k)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn req(input: Value) -> Result<Vec<pb::EmbedInput>, ApiError> {
        inputs(input)
    }

    #[test]
    fn every_input_shape_is_read() {
        let t = |s: &str| pb::EmbedInput {
            input: Some(Input::Text(s.into())),
        };
        assert_eq!(req(json!("a")).unwrap(), vec![t("a")]);
        assert_eq!(req(json!(["a", "b"])).unwrap(), vec![t("a"), t("b")]);
        // cl100k_base ids, as tiktoken gives them: 15339 = "hello", 1917 = " world".
        assert_eq!(req(json!([15339, 1917])).unwrap(), vec![t("hello world")]);
        assert_eq!(
            req(json!([[15339], [1917]])).unwrap(),
            vec![t("hello"), t(" world")]
        );
        assert!(req(json!([[999_999_999]])).is_err());
        assert_eq!(req(json!([])).unwrap_err().param.as_deref(), Some("input"));
        assert!(
            req(json!(["a", 5]))
                .unwrap_err()
                .message
                .contains("input[1]")
        );
        assert!(
            req(json!([[-1]]))
                .unwrap_err()
                .message
                .contains("input[0][0]")
        );
        assert!(req(json!("")).is_err());
        assert!(req(json!({"text": "a"})).is_err());
    }

    #[test]
    fn base64_is_the_little_endian_f32_bytes() {
        // 1.0f32 = 00 00 80 3f; -2.0 = 00 00 00 c0.
        assert_eq!(base64_f32(&[1.0]), "AACAPw==");
        assert_eq!(base64_f32(&[1.0, -2.0]), "AACAPwAAAMA=");
        assert_eq!(base64_f32(&[]), "");
        assert_eq!(base64_f32(&[0.0, 0.0, 0.0]), "AAAAAAAAAAAAAAAA");
    }

    #[test]
    fn encoding_format_is_checked() {
        let r = |f: Value| {
            serde_json::from_value::<EmbeddingRequest>(
                json!({"model": "m", "input": "x", "encoding_format": f}),
            )
            .unwrap()
            .into_router_request("id".into())
        };
        assert_eq!(r(Value::Null).unwrap().1, Encoding::Float);
        assert_eq!(r(json!("float")).unwrap().1, Encoding::Float);
        assert_eq!(r(json!("base64")).unwrap().1, Encoding::Base64);
        assert_eq!(
            r(json!("int8")).unwrap_err().param.as_deref(),
            Some("encoding_format")
        );
    }
}
