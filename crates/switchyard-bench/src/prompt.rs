//! The request bodies of the benchmark: an OpenAI chat request with a small or a ~2k-token
//! prompt, the same text for every target so only the path through the gateway differs.

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

#[cfg(test)]
mod tests {
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
    }
}
