//! Joining a continuation to the partial answer the client already has, so the seam reads as
//! one text: one space between words, none inside a word, no paragraph break doubled or lost.
//!
//! The partial answer is sent to the next backend without its trailing whitespace: a prompt that
//! ends in a space derails a BPE model (llama-cpp-python with SmolLM2 answers "village " with
//! "\nA young girl…", but "village" with " surrounded by…"), because words carry their leading
//! space in the vocabulary. So the continuation normally brings its own whitespace (" surrounded",
//! or nothing mid-word: "vill" + "a nestled"), and the whitespace the client already has must not
//! be repeated. A backend that starts a new word without its space (a server that begins a new
//! turn, or one that strips the first token's space) gets one added where punctuation shows a
//! sentence or clause has ended.

/// What is sent to the next backend as the answer so far.
pub(crate) fn prefix_to_send(received: &str) -> &str {
    received.trim_end()
}

/// Rewrites the opening of a continuation: `received` is the text the client has, `opening` the
/// continuation's text up to and including its first non-whitespace character (or all of it, when
/// it ended before one). Returns what the client must be sent instead of `opening`.
pub(crate) fn join(received: &str, opening: &str) -> String {
    let core = received.trim_end();
    let had = &received[core.len()..];
    let rest = opening.trim_start();
    let lead = &opening[..opening.len() - rest.len()];
    if !had.is_empty() {
        // The client has whitespace already: keep only the line breaks (and what follows the
        // last of them, an indentation) that it does not have yet.
        let owed = had.matches('\n').count();
        if !lead.contains('\n') {
            return rest.to_owned();
        }
        let mut cut = 0;
        for (n, (i, _)) in lead.match_indices('\n').enumerate() {
            if n >= owed {
                break;
            }
            cut = i + 1;
        }
        let mut kept = &lead[cut..];
        if !kept.contains('\n') {
            // Only an indentation is left: the client may have (part of) it already.
            let indent = had.rsplit('\n').next().unwrap_or("");
            kept = kept.strip_prefix(indent).unwrap_or("");
        }
        return format!("{kept}{rest}");
    }
    if !lead.is_empty() {
        return opening.to_owned(); // a new word or line, with its own whitespace
    }
    if lost_space(core, rest) {
        return format!(" {rest}");
    }
    opening.to_owned()
}

/// Whether `before` + `after` (no whitespace between) lacks a space a reader expects: a sentence
/// or clause ended after a lowercase word ("wonders." + "Jack") and a capitalised word begins.
/// Abbreviations ("U." + "S.") and decimals ("3." + "14") keep their text as it is.
fn lost_space(before: &str, after: &str) -> bool {
    let mut tail = before.chars().rev();
    let (Some(p), Some(w)) = (tail.next(), tail.next()) else {
        return false;
    };
    let Some(first) = after.chars().next() else {
        return false;
    };
    matches!(p, '.' | '!' | '?' | ',' | ';' | ':') && w.is_lowercase() && first.is_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the client reads when `received` is continued by `opening`.
    fn seen(received: &str, opening: &str) -> String {
        format!("{received}{}", join(received, opening))
    }

    #[test]
    fn the_prefix_sent_has_no_trailing_whitespace() {
        assert_eq!(prefix_to_send("in a small village "), "in a small village");
        assert_eq!(prefix_to_send("Chapter 1\n\n"), "Chapter 1");
        assert_eq!(prefix_to_send("mid-wo"), "mid-wo");
    }

    #[test]
    fn a_new_word_keeps_exactly_one_space() {
        // The continuation brings the space (what llama.cpp's tokenizers send).
        assert_eq!(
            seen("in a small village", " surrounded"),
            "in a small village surrounded"
        );
        // The client already has the space: the continuation's is not repeated.
        assert_eq!(
            seen("in a small village ", " surrounded"),
            "in a small village surrounded"
        );
        assert_eq!(
            seen("in a small village ", "surrounded"),
            "in a small village surrounded"
        );
        assert_eq!(
            seen("in a small village ", "  surrounded"),
            "in a small village surrounded"
        );
        assert_eq!(seen("a\t", " b"), "a\tb");
    }

    #[test]
    fn mid_word_gets_no_space() {
        assert_eq!(seen("in a small vill", "a"), "in a small villa");
        assert_eq!(seen("Java", "Script"), "JavaScript");
        assert_eq!(seen("get", "Value()"), "getValue()");
        assert_eq!(seen("don", "'t"), "don't");
    }

    #[test]
    fn punctuation_joins_as_written() {
        assert_eq!(seen("wonders", "."), "wonders.");
        assert_eq!(seen("wonders", ", and"), "wonders, and");
        assert_eq!(seen("3.", "14"), "3.14");
        assert_eq!(seen("the U.", "S."), "the U.S.");
        assert_eq!(seen("e.g.", " the"), "e.g. the");
        assert_eq!(seen("(see", ")"), "(see)");
        assert_eq!(seen("\"Hello,", "\" she said"), "\"Hello,\" she said");
    }

    #[test]
    fn a_space_lost_after_a_sentence_is_restored() {
        assert_eq!(
            seen("had seen many wonders.", "Jack's life"),
            "had seen many wonders. Jack's life"
        );
        assert_eq!(seen("Once upon a time,", "Jack"), "Once upon a time, Jack");
        assert_eq!(seen("Really?", "Yes"), "Really? Yes");
        // Already spaced: untouched.
        assert_eq!(seen("wonders.", " Jack"), "wonders. Jack");
        // Lowercase after a period stays joined (a file name, a URL).
        assert_eq!(seen("see example.", "com"), "see example.com");
    }

    #[test]
    fn line_breaks_are_neither_doubled_nor_lost() {
        assert_eq!(seen("Chapter 1\n\n", "\n\nIt was"), "Chapter 1\n\nIt was");
        assert_eq!(seen("Chapter 1\n\n", " It was"), "Chapter 1\n\nIt was");
        assert_eq!(seen("Chapter 1\n\n", "It was"), "Chapter 1\n\nIt was");
        assert_eq!(seen("Chapter 1\n", "\n\nIt was"), "Chapter 1\n\nIt was");
        assert_eq!(seen("Chapter 1", "\n\nIt was"), "Chapter 1\n\nIt was");
        assert_eq!(seen("the end. ", "\n\nNext"), "the end. \n\nNext");
        assert_eq!(seen("- one\n", "\n- two"), "- one\n- two");
    }

    #[test]
    fn indentation_after_a_break_is_kept() {
        assert_eq!(
            seen("def f():\n", "\n    return 1"),
            "def f():\n    return 1"
        );
        assert_eq!(
            seen("def f():\n    ", "\n    return 1"),
            "def f():\n    return 1"
        );
        assert_eq!(seen("def f():", "\n    return 1"), "def f():\n    return 1");
    }

    #[test]
    fn whitespace_only_openings() {
        // The continuation ended before any word: nothing doubled.
        assert_eq!(seen("done ", " "), "done ");
        assert_eq!(seen("done", " "), "done ");
        assert_eq!(seen("done\n", "\n"), "done\n");
        assert_eq!(seen("done", ""), "done");
    }

    #[test]
    fn non_ascii_text() {
        assert_eq!(seen("café ", " crème"), "café crème");
        assert_eq!(seen("naïve.", "Élise"), "naïve. Élise");
        assert_eq!(seen("東京", "タワー"), "東京タワー");
        assert_eq!(seen("Grüß", "e"), "Grüße");
    }
}
