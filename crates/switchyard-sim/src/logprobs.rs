//! Deterministic token log probabilities, for requests that ask for them.
//!
//! Each streamed piece of an answer is one token. Its log probability is derived from its text
//! (so the same answer always carries the same numbers), and its alternatives are the token
//! itself followed by made-up tokens, each less likely than the last. The entry has the fields
//! both servers write for it (Ollama's `api.Logprob`, llama.cpp's `probs_to_json`): `token`,
//! `logprob`, `bytes`, and `top_logprobs` when alternatives were asked for.

use serde_json::{Map, Value, json};

/// The entry of one generated token, with `top` alternatives (none: no `top_logprobs` field, as
/// Ollama omits the empty list; llama.cpp writes `[]` then, which decoders read alike).
pub(crate) fn entry(piece: &str, top: u32) -> Value {
    let hash = crate::tokens::fnv1a(piece.as_bytes());
    // In (-2.0, -0.001]: a likely token.
    let logprob = -((hash % 2000) as f64 + 1.0) / 1000.0;
    let mut o = Map::new();
    o.insert("token".into(), json!(piece));
    o.insert("logprob".into(), json!(logprob));
    o.insert("bytes".into(), json!(piece.as_bytes()));
    if top > 0 {
        let alternatives: Vec<Value> = (0..top)
            .map(|k| {
                let token = if k == 0 {
                    piece.to_owned()
                } else {
                    format!("{piece}~{k}")
                };
                let lp = logprob - f64::from(k) * 0.75;
                json!({"token": token, "logprob": lp, "bytes": token.as_bytes()})
            })
            .collect();
        o.insert("top_logprobs".into(), Value::Array(alternatives));
    }
    Value::Object(o)
}

/// The entries of several pieces, in order.
pub(crate) fn entries<'a>(pieces: impl IntoIterator<Item = &'a String>, top: u32) -> Vec<Value> {
    pieces.into_iter().map(|p| entry(p, top)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_deterministic_and_ordered() {
        let a = entry(" fox", 3);
        assert_eq!(a, entry(" fox", 3));
        let top = a.get("top_logprobs").and_then(Value::as_array).cloned();
        let top = top.unwrap_or_default();
        assert_eq!(top.len(), 3);
        assert_eq!(
            top.first().and_then(|t| t.get("token")),
            Some(&json!(" fox"))
        );
        let lp = |v: &Value| v.get("logprob").and_then(Value::as_f64).unwrap_or(0.0);
        assert!(top.windows(2).all(|w| lp(&w[0]) > lp(&w[1])));
        assert!(entry(" fox", 0).get("top_logprobs").is_none());
    }
}
