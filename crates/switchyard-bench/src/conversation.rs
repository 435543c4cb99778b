//! The bodies of the exact-tokenizer scenarios: real prose (the repository's README and
//! ARCHITECTURE, repeated) cut to an exact token count, as a first turn (one user message) or as a
//! later turn of a conversation that resends its history (earlier user and assistant messages,
//! then the new user message).
//!
//! The new user message starts with [`UNIQUE_MARKER`], which the load generator replaces with a
//! number of its own on every request (`switchyard-loadgen run --unique`): a count cache keyed by a
//! message's text then never sees a new message twice, while the resent history is the same text on
//! every request, as it is in a real conversation.

use serde_json::{Value, json};

/// Replaced on every request by a number no other request of the run carries.
pub const UNIQUE_MARKER: &str = "@@switchyard-bench-unique@@";

/// Counts the tokens of a text (the reference tokenizer of the scenario).
pub type Count<'a> = &'a dyn Fn(&str) -> usize;

/// `corpus` repeated (paragraph break between copies) until it holds at least `tokens` tokens.
pub fn repeat_to(corpus: &str, tokens: usize, count: Count<'_>) -> String {
    let corpus = corpus.trim();
    if corpus.is_empty() {
        return String::new();
    }
    let per_copy = count(corpus).max(1);
    let copies = tokens / per_copy + 2;
    let mut out = String::with_capacity(copies * (corpus.len() + 2));
    for i in 0..copies {
        if i > 0 {
            out.push_str("\n\n");
        }
        out.push_str(corpus);
    }
    out
}

/// The longest prefix of `text` that ends before a whitespace and counts at most `tokens` tokens
/// (found by bisection: counts grow with the prefix). Returns its byte length.
pub fn prefix_len(text: &str, tokens: usize, count: Count<'_>) -> usize {
    let boundary = |mut i: usize| {
        while i > 0 && !text.is_char_boundary(i) {
            i -= 1;
        }
        i
    };
    // Prose is under 8 bytes a token: bisect within that much when it already holds too many.
    let guess = boundary(text.len().min(tokens.saturating_mul(8).saturating_add(64)));
    let (mut lo, mut hi) = (0usize, guess);
    if count(&text[..guess]) <= tokens {
        if guess == text.len() || count(text) <= tokens {
            return text.len();
        }
        (lo, hi) = (guess, text.len());
    }
    while hi - lo > 1 {
        let mid = boundary(lo + (hi - lo) / 2);
        if mid <= lo {
            break;
        }
        if count(&text[..mid]) <= tokens {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    // Back to the last whitespace, so no word is cut in half.
    text[..lo]
        .rfind(char::is_whitespace)
        .map_or(lo, |ws| ws.max(1))
}

/// Consecutive chunks of `text` of `sizes[i]` tokens each (by `count`), whitespace-trimmed.
pub fn chunks(text: &str, sizes: &[usize], count: Count<'_>) -> Vec<String> {
    let mut rest = text;
    let mut out = Vec::with_capacity(sizes.len());
    for &n in sizes {
        let cut = prefix_len(rest, n, count);
        out.push(rest[..cut].trim().to_string());
        rest = rest[cut..].trim_start();
    }
    out
}

/// The messages of turn `turn` (1 = first) of a conversation whose whole prompt is about
/// `tokens` tokens of `corpus`: the new user message carries a tenth of them at turn 10 (1/turn in
/// general) and starts with [`UNIQUE_MARKER`]; the resent history (alternating user and assistant
/// messages, each labelled so no two are the same text) carries the rest.
pub fn messages(corpus: &str, tokens: usize, turn: usize, count: Count<'_>) -> Vec<Value> {
    let turn = turn.max(1);
    let history_msgs = 2 * (turn - 1);
    let new_tokens = tokens / turn;
    let per_history = (tokens - new_tokens).checked_div(history_msgs).unwrap_or(0);
    let mut sizes = vec![per_history; history_msgs];
    sizes.push(new_tokens);
    let text = repeat_to(corpus, tokens + 64, count);
    let parts = chunks(&text, &sizes, count);
    let mut out = vec![json!({"role": "system", "content": "You are a concise assistant."})];
    for (i, part) in parts.iter().enumerate() {
        if i < history_msgs {
            let role = if i % 2 == 0 { "user" } else { "assistant" };
            out.push(json!({"role": role, "content": format!("({role} {}) {part}", i / 2 + 1)}));
        } else {
            out.push(
                json!({"role": "user", "content": format!("Request {UNIQUE_MARKER}. {part}")}),
            );
        }
    }
    out
}

/// An OpenAI `/v1/chat/completions` body for [`messages`].
pub fn chat_body(
    model: &str,
    corpus: &str,
    tokens: usize,
    turn: usize,
    stream: bool,
    count: Count<'_>,
) -> Value {
    json!({
        "model": model,
        "messages": messages(corpus, tokens, turn, count),
        "stream": stream,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn words(s: &str) -> usize {
        s.split_whitespace().count()
    }

    const CORPUS: &str = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu";

    #[test]
    fn a_first_turn_is_one_unique_user_message_of_the_size_asked() {
        let m = messages(CORPUS, 100, 1, &words);
        assert_eq!(m.len(), 2);
        let text = m[1]["content"].as_str().unwrap();
        assert!(text.starts_with(&format!("Request {UNIQUE_MARKER}. ")));
        let n = words(text) - 2;
        assert!((98..=100).contains(&n), "{n}");
    }

    #[test]
    fn a_tenth_turn_resends_eighteen_distinct_messages_and_one_new_tenth() {
        let m = messages(CORPUS, 1000, 10, &words);
        assert_eq!(m.len(), 20);
        let contents: Vec<&str> = m.iter().map(|x| x["content"].as_str().unwrap()).collect();
        let distinct: std::collections::BTreeSet<&&str> = contents.iter().collect();
        assert_eq!(distinct.len(), 20);
        assert_eq!(m[2]["role"], "assistant");
        assert_eq!(m[19]["role"], "user");
        assert!(contents[19].contains(UNIQUE_MARKER));
        assert!(!contents[..19].iter().any(|c| c.contains(UNIQUE_MARKER)));
        let total: usize = contents[1..].iter().map(|c| words(c)).sum();
        assert!((980..=1060).contains(&total), "{total}");
        let last = words(contents[19]);
        assert!((95..=105).contains(&last), "{last}");
    }

    #[test]
    fn prefixes_stop_at_whitespace_and_at_char_boundaries() {
        let t = "héllo wörld ünïcode ñ";
        let n = prefix_len(t, 2, &words);
        assert_eq!(&t[..n], "héllo wörld");
        assert_eq!(prefix_len(t, 10, &words), t.len());
    }
}
