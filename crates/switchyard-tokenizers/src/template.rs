//! A hint at the chat-template family from GGUF metadata, for routing when the model name says
//! nothing: the Jinja template when present, else tell-tale special tokens in the vocabulary.

use crate::gguf::{GgufMetadata, GgufValue};

/// `"llama3"`, `"mistral"` or `"chatml"` when the metadata shows it, else `None`.
pub fn template_family_hint(meta: &GgufMetadata) -> Option<&'static str> {
    if let Some(t) = meta.get_str("tokenizer.chat_template") {
        return family_of(|needle| t.contains(needle));
    }
    let tokens = meta.get("tokenizer.ggml.tokens")?.as_array()?;
    // Special tokens sit at the start (Mistral, SmolLM2) or the end (Llama 3, Qwen) of the vocabulary.
    let edge = tokens
        .iter()
        .take(2048)
        .chain(tokens.iter().rev().take(2048));
    let edge: Vec<&str> = edge.filter_map(GgufValue::as_str).collect();
    family_of(|needle| edge.contains(&needle))
}

fn family_of(has: impl Fn(&str) -> bool) -> Option<&'static str> {
    if has("<|start_header_id|>") {
        Some("llama3")
    } else if has("[INST]") {
        Some("mistral")
    } else if has("<|im_start|>") {
        Some("chatml")
    } else {
        None
    }
}
