//! The simulator's own deterministic tokenizer ("sim tokens") and prompt rendering.
//!
//! Rules: a maximal run of ASCII letters is 1 token (absorbing one preceding space); each ASCII
//! digit is 1; each other non-whitespace ASCII char is 1; each non-ASCII char is 2; each maximal
//! whitespace run that is not absorbed is 1. A request's total is multiplied by the model's
//! `token_scale` (rounded up). Rendered prompts use Llama-3-style markers whose sim-token count is
//! exactly `Σcontent + 5 per message + 5` (backends.md §7), so `/apply-template` + `/tokenize`
//! agree with the count the server uses.

/// Counts sim tokens of plain text.
pub(crate) fn count(text: &str) -> u32 {
    let mut n: u32 = 0;
    let mut it = text.chars().peekable();
    while let Some(c) = it.next() {
        if c.is_ascii_alphabetic() {
            while it.peek().is_some_and(char::is_ascii_alphabetic) {
                it.next();
            }
            n = n.saturating_add(1);
        } else if c.is_ascii_whitespace() {
            let mut run: u32 = 1;
            let mut last = c;
            while let Some(&w) = it.peek().filter(|w| w.is_ascii_whitespace()) {
                run += 1;
                last = w;
                it.next();
            }
            if last == ' ' && it.peek().is_some_and(char::is_ascii_alphabetic) {
                run -= 1;
            }
            if run > 0 {
                n = n.saturating_add(1);
            }
        } else if c.is_ascii() {
            n = n.saturating_add(1);
        } else {
            n = n.saturating_add(2);
        }
    }
    n
}

/// Applies a model's token scale to a request total (rounded up).
pub(crate) fn scale(n: u32, token_scale: f32) -> u32 {
    if !token_scale.is_finite() || token_scale <= 0.0 || (token_scale - 1.0).abs() < f32::EPSILON {
        return n;
    }
    // Use the decimal the user wrote (1.1, not 1.100000023841858) so 100 × 1.1 = 110.
    let s: f64 = token_scale
        .to_string()
        .parse()
        .unwrap_or(f64::from(token_scale));
    let v = (f64::from(n) * s - 1e-6).ceil();
    if v >= f64::from(u32::MAX) {
        u32::MAX
    } else if v <= 0.0 {
        0
    } else {
        // In range: checked above.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let out = v as u32;
        out
    }
}

/// Per-message template overhead (header markers, role, blank line, end marker).
pub(crate) const PER_MESSAGE: u32 = 5;
/// Per-prompt overhead (BOS plus the assistant generation header).
pub(crate) const PER_PROMPT: u32 = 5;

const BOS: &str = "<|begin_of_text|>";
const START: &str = "<|start_header_id|>";
const END: &str = "<|end_header_id|>";
const EOT: &str = "<|eot_id|>";
const SPECIALS: [&str; 4] = [BOS, START, END, EOT];

/// Renders a chat in the Llama-3 layout (what `/apply-template` returns).
pub(crate) fn render_chat<'a>(
    messages: impl IntoIterator<Item = (&'a str, &'a str)>,
    tools_json: Option<&str>,
) -> String {
    let mut out = String::from(BOS);
    if let Some(t) = tools_json {
        out.push_str(t);
    }
    for (role, content) in messages {
        out.push_str(START);
        out.push_str(role);
        out.push_str(END);
        out.push_str("\n\n");
        out.push_str(content);
        out.push_str(EOT);
    }
    out.push_str(START);
    out.push_str("assistant");
    out.push_str(END);
    out.push_str("\n\n");
    out
}

/// Counts sim tokens of text that may contain the template markers: each marker is 1 token, the
/// blank line after a header is 1 token, and the text between markers is counted on its own.
pub(crate) fn count_rendered(text: &str) -> u32 {
    let mut n: u32 = 0;
    let mut rest = text;
    loop {
        let next = SPECIALS
            .iter()
            .filter_map(|s| rest.find(s).map(|i| (i, *s)))
            .min_by_key(|(i, _)| *i);
        match next {
            None => return n.saturating_add(count(rest)),
            Some((i, special)) => {
                let (before, after) = rest.split_at(i);
                n = n.saturating_add(count(before)).saturating_add(1);
                rest = after.get(special.len()..).unwrap_or("");
                if special == END
                    && let Some(r) = rest.strip_prefix("\n\n")
                {
                    n = n.saturating_add(1);
                    rest = r;
                }
            }
        }
    }
}

/// FNV-1a 64-bit hash: stable across runs and platforms.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// `n` fake token ids derived from `text` (for `/tokenize` and the deprecated `context` field).
pub(crate) fn fake_ids(text: &str, n: u32) -> Vec<u32> {
    let base = fnv1a(text.as_bytes());
    (0..u64::from(n))
        .map(|i| {
            let h = fnv1a(&(base ^ i.wrapping_mul(0x9e37_79b9_7f4a_7c15)).to_le_bytes());
            u32::try_from(h % 128_000).unwrap_or(0)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_follow_the_rules() {
        assert_eq!(count(""), 0);
        assert_eq!(count("hello"), 1);
        assert_eq!(count("hello world"), 2);
        assert_eq!(count("hello  world"), 3);
        assert_eq!(count("a1b2"), 4);
        assert_eq!(count("hi, there!"), 4);
        assert_eq!(count("é"), 2);
        assert_eq!(count(" x"), 1);
        assert_eq!(count("\n x"), 2);
        assert_eq!(count("x \n"), 2);
    }

    #[test]
    fn rendered_count_matches_formula() {
        let msgs = [
            ("system", "be brief"),
            ("user", "\n hi 42 é"),
            ("assistant", " ok"),
        ];
        let direct: u32 = msgs
            .iter()
            .map(|(_, c)| count(c) + PER_MESSAGE)
            .sum::<u32>()
            + PER_PROMPT;
        assert_eq!(count_rendered(&render_chat(msgs, None)), direct);
        let tools = r#"[{"type":"function"}]"#;
        assert_eq!(
            count_rendered(&render_chat(msgs, Some(tools))),
            direct + count(tools)
        );
    }

    #[test]
    fn scale_rounds_up_exactly() {
        assert_eq!(scale(100, 1.0), 100);
        assert_eq!(scale(100, 1.1), 110);
        assert_eq!(scale(101, 1.1), 112);
        assert_eq!(scale(10, 1.5), 15);
    }
}
