//! The request bodies of the benchmark: an OpenAI chat request with a small or a ~2k-token
//! prompt, the same text for every target so only the path through the gateway differs, and the
//! same prompt for the other endpoints (Responses, embeddings, legacy text completions, Ollama's
//! `/api/chat` and Anthropic's `/v1/messages`).

use serde_json::{Value, json};

const SENTENCES: [&str; 8] = [
    "The quick brown fox jumps over the lazy dog near the old river bank.",
    "Every request is routed to the smallest model whose context window fits.",
    "A gateway should add little time and never lose a usage record.",
    "Streams continue on the next model when a backend stops in the middle.",
    "Small models answer short prompts while larger ones take long documents.",
    "The router counts tokens before sending so no attempt fails first.",
    "Health probes mark dead hosts and routing skips them at once.",
    "Benchmarks compare the direct path with the path through each proxy.",
];

/// A prompt of roughly `tokens` tokens of plain English (each sentence above is 12–14 tokens for
/// Llama-3-style tokenizers; Switchyard's heuristic counter errs a little high on it).
pub fn text(tokens: u32) -> String {
    if tokens <= 16 {
        return "Reply with a short friendly greeting.".to_string();
    }
    let mut out = String::new();
    let mut n = 0u32;
    let mut i = 0usize;
    while n < tokens {
        let s = SENTENCES[i % SENTENCES.len()];
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(s);
        n += s.split_whitespace().count() as u32 + 2;
        i += 1;
    }
    out
}

/// An OpenAI `/v1/chat/completions` body.
pub fn chat_body(model: &str, prompt_tokens: u32, stream: bool) -> Value {
    json!({
        "model": model,
        "messages": [
            {"role": "system", "content": "You are a concise assistant."},
            {"role": "user", "content": text(prompt_tokens)},
        ],
        "stream": stream,
    })
}

/// An OpenAI `/v1/responses` body: the chat body's system text as `instructions`.
pub fn responses_body(model: &str, prompt_tokens: u32, stream: bool) -> Value {
    json!({
        "model": model,
        "instructions": "You are a concise assistant.",
        "input": text(prompt_tokens),
        "stream": stream,
    })
}

/// An OpenAI `/v1/embeddings` body with one input string.
pub fn embeddings_body(model: &str, prompt_tokens: u32) -> Value {
    json!({"model": model, "input": text(prompt_tokens)})
}

/// An OpenAI `/v1/completions` body (legacy text completion).
pub fn completions_body(model: &str, prompt_tokens: u32, stream: bool) -> Value {
    json!({"model": model, "prompt": text(prompt_tokens), "stream": stream})
}

/// An Ollama `/api/chat` body (Ollama streams unless told not to, so `stream` is always sent).
pub fn ollama_chat_body(model: &str, prompt_tokens: u32, stream: bool) -> Value {
    chat_body(model, prompt_tokens, stream)
}

/// An Anthropic `/v1/messages` body: the system text apart, `max_tokens` required.
pub fn messages_body(model: &str, prompt_tokens: u32, stream: bool) -> Value {
    json!({
        "model": model,
        "system": "You are a concise assistant.",
        "messages": [{"role": "user", "content": text(prompt_tokens)}],
        "max_tokens": 256,
        "stream": stream,
    })
}

/// The body for `endpoint`: `chat`, `responses`, `embeddings` (never streamed), `completions`,
/// `ollama-chat` or `messages`.
pub fn body(
    endpoint: &str,
    model: &str,
    prompt_tokens: u32,
    stream: bool,
) -> anyhow::Result<Value> {
    Ok(match endpoint {
        "chat" => chat_body(model, prompt_tokens, stream),
        "responses" => responses_body(model, prompt_tokens, stream),
        "embeddings" if !stream => embeddings_body(model, prompt_tokens),
        "completions" => completions_body(model, prompt_tokens, stream),
        "ollama-chat" => ollama_chat_body(model, prompt_tokens, stream),
        "messages" => messages_body(model, prompt_tokens, stream),
        "embeddings" => anyhow::bail!("embeddings do not stream"),
        other => anyhow::bail!(
            "unknown endpoint {other:?}: expected chat, responses, embeddings, completions, ollama-chat or messages"
        ),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn sizes() {
        assert!(text(10).len() < 64);
        let long = text(2000);
        let words = long.split_whitespace().count();
        assert!((1500..2000).contains(&words), "{words}");
        let b = chat_body("local-small", 10, true);
        assert_eq!(b["stream"], true);
        assert_eq!(b["messages"][1]["role"], "user");
        assert_eq!(body("responses", "m", 10, true).unwrap()["stream"], true);
        assert!(body("embeddings", "m", 10, false).unwrap()["input"].is_string());
        assert!(body("embeddings", "m", 10, true).is_err());
        assert!(body("completions", "m", 10, false).unwrap()["prompt"].is_string());
        assert_eq!(body("messages", "m", 10, false).unwrap()["max_tokens"], 256);
        assert_eq!(
            body("ollama-chat", "m", 10, false).unwrap()["stream"],
            false
        );
        assert!(body("nope", "m", 10, false).is_err());
    }
}
