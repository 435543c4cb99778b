//! Ollama's `/api/show` `model_info` is the GGUF key/value map as JSON; this turns it back into
//! [`GgufMetadata`] so the GGUF path builds the tokenizer. Without `"verbose": true` Ollama sends
//! every array as `null`, which cannot describe a vocabulary: that is reported, not guessed around.

use serde_json::Value;

use crate::error::TokenizerError;
use crate::gguf::{GgufMetadata, GgufValue};

const ARRAY_KEYS: &[&str] = &[
    "tokenizer.ggml.tokens",
    "tokenizer.ggml.token_type",
    "tokenizer.ggml.scores",
    "tokenizer.ggml.merges",
];

/// Accepts the whole `/api/show` response or just its `model_info` object.
pub(crate) fn metadata_from_show(show: &Value) -> Result<GgufMetadata, TokenizerError> {
    let info = match show.get("model_info") {
        Some(info) => info,
        None => show,
    };
    let Value::Object(map) = info else {
        return Err(TokenizerError::WrongType {
            key: "model_info".into(),
            expected: "object",
        });
    };
    for key in ARRAY_KEYS {
        if matches!(map.get(*key), Some(Value::Null)) {
            return Err(TokenizerError::NeedsVerbose((*key).to_owned()));
        }
    }
    let mut meta = GgufMetadata {
        version: 3,
        ..GgufMetadata::default()
    };
    for (key, value) in map {
        if let Some(v) = to_gguf(value) {
            meta.kv.insert(key.clone(), v);
        }
    }
    Ok(meta)
}

fn to_gguf(value: &Value) -> Option<GgufValue> {
    Some(match value {
        Value::Null | Value::Object(_) => return None,
        Value::Bool(b) => GgufValue::Bool(*b),
        Value::String(s) => GgufValue::String(s.clone()),
        Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => GgufValue::U64(u),
            (None, Some(i), _) => GgufValue::I64(i),
            (None, None, Some(f)) => GgufValue::F64(f),
            _ => return None,
        },
        Value::Array(items) => GgufValue::Array(items.iter().filter_map(to_gguf).collect()),
    })
}
