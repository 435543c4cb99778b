//! Token log probabilities, read from whichever shape a server sends and carried in OpenAI's
//! chat shape (`choices[].logprobs.content` items) in `pb::Delta.logprobs_json`.
//!
//! Servers differ: llama.cpp's server and Ollama's `/v1` send chat's `{content: [...]}` for chat
//! and text completions alike; llama-cpp-python and vLLM send the legacy 4-array shape
//! (`{tokens, token_logprobs, top_logprobs: [{token: logprob}], text_offset}`) for text
//! completions; Ollama's native API sends a `logprobs` array of the same items as chat's
//! `content` on each chunk. One decoder reads them all, `null` and absent alike.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::nullable::or_default;

/// What OpenAI writes for a token whose probability is unknown (the first echoed token).
const UNKNOWN_LOGPROB: f64 = -9999.0;

/// One output token and its most likely alternatives (OpenAI `ChatCompletionTokenLogprob`,
/// Ollama `api.Logprob`).
#[derive(Debug, Deserialize, Serialize)]
pub(crate) struct TokenLogprob {
    #[serde(default, deserialize_with = "or_default")]
    token: String,
    #[serde(default, deserialize_with = "or_default")]
    logprob: f64,
    #[serde(default)]
    bytes: Option<Vec<u32>>,
    #[serde(default, deserialize_with = "or_default")]
    top_logprobs: Vec<TopLogprob>,
}

/// One alternative at a position.
#[derive(Debug, Deserialize, Serialize)]
struct TopLogprob {
    #[serde(default, deserialize_with = "or_default")]
    token: String,
    #[serde(default, deserialize_with = "or_default")]
    logprob: f64,
    #[serde(default)]
    bytes: Option<Vec<u32>>,
}

/// A choice's `logprobs` object in either OpenAI shape: chat's `content`, or text completion's
/// legacy arrays.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ChoiceLogprobs {
    #[serde(default, deserialize_with = "or_default")]
    content: Vec<TokenLogprob>,
    #[serde(default, deserialize_with = "or_default")]
    tokens: Vec<String>,
    #[serde(default, deserialize_with = "or_default")]
    token_logprobs: Vec<Option<f64>>,
    #[serde(default, deserialize_with = "or_default")]
    top_logprobs: Vec<Option<BTreeMap<String, f64>>>,
}

impl ChoiceLogprobs {
    /// The entries as `logprobs_json`, or `None` when there are none.
    pub(crate) fn into_json(self) -> Option<String> {
        if !self.content.is_empty() {
            return to_json(&self.content);
        }
        let entries: Vec<TokenLogprob> = self
            .tokens
            .into_iter()
            .enumerate()
            .map(|(i, token)| {
                let logprob = self
                    .token_logprobs
                    .get(i)
                    .copied()
                    .flatten()
                    .unwrap_or(UNKNOWN_LOGPROB);
                let mut top: Vec<TopLogprob> = self
                    .top_logprobs
                    .get(i)
                    .and_then(Option::as_ref)
                    .map(|m| {
                        m.iter()
                            .map(|(t, &lp)| TopLogprob {
                                token: t.clone(),
                                logprob: lp,
                                bytes: None,
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                // The legacy map has no order; OpenAI lists the most likely first.
                top.sort_by(|a, b| b.logprob.total_cmp(&a.logprob));
                TokenLogprob {
                    token,
                    logprob,
                    bytes: None,
                    top_logprobs: top,
                }
            })
            .collect();
        to_json(&entries)
    }
}

/// Ollama's per-chunk `logprobs` array as `logprobs_json`.
pub(crate) fn to_json(entries: &[TokenLogprob]) -> Option<String> {
    if entries.is_empty() {
        return None;
    }
    serde_json::to_string(entries).ok()
}

/// Appends one delta's `logprobs_json` array to the answer's so far (both JSON arrays, as
/// written by this module): used where deltas are folded into one.
pub fn append(acc: &mut Option<String>, more: Option<String>) {
    let Some(more) = more else { return };
    match acc {
        None => *acc = Some(more),
        Some(a) => {
            let tail = more.trim();
            let inner = tail
                .strip_prefix('[')
                .and_then(|t| t.strip_suffix(']'))
                .unwrap_or("")
                .trim();
            if inner.is_empty() {
                return;
            }
            let head = a.trim_end();
            match head.strip_suffix(']') {
                Some(open) if open.trim() == "[" => *a = format!("[{inner}]"),
                Some(open) => *a = format!("{open},{inner}]"),
                None => *a = more,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::{Value, json};

    fn json_of(s: &str) -> Value {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn chat_shape_passes_through_with_nulls_read_as_absent() {
        let c: ChoiceLogprobs = serde_json::from_value(json!({"content": [
            {"token": "Hi", "logprob": -0.5, "bytes": [72, 105], "top_logprobs": [
                {"token": "Hi", "logprob": -0.5, "bytes": [72, 105]},
                {"token": "Hello", "logprob": -1.5, "bytes": null}]},
            {"token": "!", "logprob": -0.1, "bytes": null, "top_logprobs": null}
        ], "refusal": null}))
        .unwrap();
        let v = json_of(&c.into_json().unwrap());
        assert_eq!(v[0]["top_logprobs"][1]["token"], "Hello");
        assert_eq!(v[0]["bytes"], json!([72, 105]));
        assert_eq!(v[1]["top_logprobs"], json!([]));
        assert_eq!(v[1]["bytes"], Value::Null);
    }

    #[test]
    fn legacy_shape_becomes_chat_items_most_likely_first() {
        let c: ChoiceLogprobs = serde_json::from_value(json!({
            "tokens": [" the", " fox"], "token_logprobs": [-0.2, null],
            "top_logprobs": [{" a": -2.0, " the": -0.2}, null], "text_offset": [0, 4]}))
        .unwrap();
        let v = json_of(&c.into_json().unwrap());
        assert_eq!(v[0]["token"], " the");
        assert_eq!(v[0]["top_logprobs"][0]["token"], " the");
        assert_eq!(v[0]["top_logprobs"][1]["logprob"], -2.0);
        assert_eq!(v[1]["logprob"], UNKNOWN_LOGPROB);
        let none: ChoiceLogprobs = serde_json::from_value(json!({"content": null})).unwrap();
        assert_eq!(none.into_json(), None);
    }

    #[test]
    fn append_joins_arrays() {
        let mut acc = None;
        append(&mut acc, None);
        assert_eq!(acc, None);
        append(&mut acc, Some(r#"[{"a":1}]"#.into()));
        append(&mut acc, Some("[]".into()));
        append(&mut acc, Some(r#"[{"b":2},{"c":3}]"#.into()));
        assert_eq!(
            json_of(acc.as_deref().unwrap()).as_array().unwrap().len(),
            3
        );
        let mut empty = Some("[]".to_string());
        append(&mut empty, Some(r#"[{"d":4}]"#.into()));
        assert_eq!(empty.as_deref(), Some(r#"[{"d":4}]"#));
    }
}
