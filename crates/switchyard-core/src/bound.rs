//! A cheap range for a text's exact token count, so the exact tokenizer runs only when the range
//! leaves a routing decision open.
//!
//! Counting exactly costs about a microsecond per token; one pass over the bytes costs about a
//! nanosecond per byte. The range comes from that pass:
//!
//! - **Upper**: every token is at least one byte (byte-level BPE; SentencePiece with byte
//!   fallback adds at most one dummy-prefix piece), so digits, symbols, whitespace and non-ASCII
//!   bytes cost at most one token each, a single space before a word rides with the word, and a
//!   run of ASCII letters costs at most [`letters_upper`] of it. Never above `bytes + 1`.
//! - **Lower**: words are never merged into one token across a space or a symbol by the
//!   vocabularies tested, so at least [`LOWER_PER_WORD`] token per ASCII word that does not touch
//!   other letters (a word glued to non-ASCII letters can share a pre-token with them) nor `_` or
//!   `|` (the names of special tokens such as `<|eot_id|>`, one token each).
//!
//! The letter price and the word share are not theorems about every vocabulary: they are checked
//! by test (`crates/switchyard-router/tests/count_bound.rs`) for every text of the tokenizer
//! reference corpus and adversarial text (code, CJK, emoji, whitespace runs, base64, random and
//! long words) under every vocabulary of the reference set (Llama 3, SmolLM2, Mistral v1/v3 and
//! the extra families).

/// Tokens every isolated ASCII word is at least worth.
pub const LOWER_PER_WORD: f64 = 1.0;

/// Longest letter run priced as a word.
const WORD_MAX: usize = 16;

/// Most tokens a run of ASCII letters (with the space before it) can cost: a run shaped like a
/// word (see [`word_like`]) one plus one per three letters; anything else (random
/// letters, base64, identifiers glued together) one per letter.
pub fn letters_upper(run: &[u8]) -> u32 {
    let n = run.len() as u32;
    if word_like(run) { 1 + n / 3 } else { n }
}

/// Whether a letter run is shaped like a word of a natural language: at most [`WORD_MAX`]
/// letters, lower case or capitalised, a vowel at least every third letter and no four
/// consonants in a row.
pub fn word_like(run: &[u8]) -> bool {
    let n = run.len();
    if n == 0 || n > WORD_MAX {
        return false;
    }
    if !run[1..].iter().all(u8::is_ascii_lowercase) {
        return false;
    }
    if n <= 2 {
        return true;
    }
    let mut consonants = 0;
    let mut vowels = 0;
    for b in run {
        if matches!(
            b.to_ascii_lowercase(),
            b'a' | b'e' | b'i' | b'o' | b'u' | b'y'
        ) {
            vowels += 1;
            consonants = 0;
        } else {
            consonants += 1;
            if consonants > 3 {
                return false;
            }
        }
    }
    vowels * 3 >= n
}

// Byte classes of the one pass: below `LOWER_VOWEL` a byte is priced alone, from there on it is a
// letter of a run.
const SYMBOL: u8 = 0;
const SPACE: u8 = 1;
const DIGIT: u8 = 2;
const HIGH: u8 = 3;
const LOWER_VOWEL: u8 = 4;
const LOWER_CONSONANT: u8 = 5;
const UPPER_VOWEL: u8 = 6;
const UPPER_CONSONANT: u8 = 7;

/// Twice the point estimate's price of a byte of each class below `LOWER_VOWEL`.
const TWICE: [u8; 4] = [2, 0, 1, 1];

static CLASS: [u8; 256] = {
    let mut t = [SYMBOL; 256];
    let mut b = 0usize;
    while b < 256 {
        let c = b as u8;
        t[b] = if c >= 0x80 {
            HIGH
        } else if c == b' ' {
            SPACE
        } else if c.is_ascii_digit() {
            DIGIT
        } else if c.is_ascii_lowercase() {
            if matches!(c, b'a' | b'e' | b'i' | b'o' | b'u' | b'y') {
                LOWER_VOWEL
            } else {
                LOWER_CONSONANT
            }
        } else if c.is_ascii_uppercase() {
            if matches!(c, b'A' | b'E' | b'I' | b'O' | b'U' | b'Y') {
                UPPER_VOWEL
            } else {
                UPPER_CONSONANT
            }
        } else {
            SYMBOL
        };
        b += 1;
    }
    t
};

/// A range `[lower, upper]` that holds a text's exact token count.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CountRange {
    pub lower: u32,
    pub upper: u32,
    /// A point estimate inside the range (shaped like the heuristic counter's: a token per word
    /// and per six letters beyond the first, per symbol, per two non-ASCII bytes), for what is
    /// reported before the backend answers; routing decides on the range.
    pub estimate: u32,
}

impl CountRange {
    /// The range of one text, in one pass over its bytes.
    pub fn of(text: &str) -> Self {
        let bytes = text.as_bytes();
        let len = bytes.len();
        // Every byte that is not a letter costs at most one token; letters are priced by run.
        let mut letters: u64 = 0;
        let mut letter_upper: u64 = 0;
        let mut rides: u64 = 0;
        let mut words: u64 = 0;
        // Twice the point estimate (halves for non-ASCII bytes and digits).
        let mut twice: u64 = 0;
        let mut i = 0;
        while i < len {
            let mut c = CLASS[usize::from(bytes[i])];
            if c < LOWER_VOWEL {
                twice += u64::from(TWICE[usize::from(c)]);
                i += 1;
                continue;
            }
            let start = i;
            let mut rest_lower = true;
            let (mut vowels, mut consonants, mut clustered) = (0usize, 0u32, false);
            loop {
                let upper_case = c >= UPPER_VOWEL;
                rest_lower &= i == start || !upper_case;
                if c == LOWER_VOWEL || c == UPPER_VOWEL {
                    vowels += 1;
                    consonants = 0;
                } else {
                    consonants += 1;
                    clustered |= consonants > 3;
                }
                i += 1;
                if i >= len {
                    break;
                }
                c = CLASS[usize::from(bytes[i])];
                if c < LOWER_VOWEL {
                    break;
                }
            }
            let n = i - start;
            letters += n as u64;
            let word = n <= WORD_MAX && rest_lower && (n <= 2 || (!clustered && vowels * 3 >= n));
            letter_upper += if word { 1 + n as u64 / 3 } else { n as u64 };
            twice += 2 * (1 + (n as u64 - 1) / 6);
            // A single space before the word rides with it (it was counted as one already).
            if start > 0 && bytes[start - 1] == b' ' && (start < 2 || bytes[start - 2] != b' ') {
                rides += 1;
            }
            // Glued to non-ASCII letters (one pre-token with them), or inside a special token's
            // name (`<|eot_id|>` is one token): not a word of its own.
            let glue = |b: u8| b >= 0x80 || b == b'_' || b == b'|';
            let glued_before = start > 0 && glue(bytes[start - 1]);
            let glued_after = i < len && glue(bytes[i]);
            if !glued_before && !glued_after {
                words += 1;
            }
        }
        let upper = (1 + (len as u64 - letters) + letter_upper - rides).min(len as u64 + 1);
        let lower = (words as f64 * LOWER_PER_WORD).floor() as u64;
        let estimate = twice.div_ceil(2).clamp(lower, upper);
        let to32 = |x: u64| u32::try_from(x).unwrap_or(u32::MAX);
        CountRange {
            lower: to32(lower),
            upper: to32(upper),
            estimate: to32(estimate),
        }
    }

    /// Adds another text's range.
    pub fn add(&mut self, o: CountRange) {
        self.lower = self.lower.saturating_add(o.lower);
        self.upper = self.upper.saturating_add(o.upper);
        self.estimate = self.estimate.saturating_add(o.estimate);
    }

    /// Whether the count is known exactly.
    pub fn is_exact(&self) -> bool {
        self.lower == self.upper
    }

    /// An exact count.
    pub fn exact(n: u32) -> Self {
        CountRange {
            lower: n,
            upper: n,
            estimate: n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_of_simple_texts() {
        assert_eq!(
            CountRange::of(""),
            CountRange {
                lower: 0,
                upper: 1,
                estimate: 0
            }
        );
        // "hello there": two words, the space rides with the second.
        let r = CountRange::of("hello there");
        assert_eq!((r.lower, r.estimate), (2, 2));
        assert_eq!(r.upper, 1 + 2 + 2);
        // Never above bytes + 1.
        assert_eq!(CountRange::of("12345").upper, 6);
        // The one pass prices runs as `letters_upper` does.
        for run in [
            "a",
            "Be",
            "USA",
            "Hello",
            "there",
            "xyzzy",
            "QxQx",
            "internationalization",
        ] {
            let r = CountRange::of(run);
            assert_eq!(r.upper, 1 + letters_upper(run.as_bytes()), "{run}");
        }
        // Four consonants in a row: priced per letter.
        assert!(word_like(b"three"));
        assert!(!word_like(b"strengths"));
        assert_eq!(CountRange::of("strengths").upper, 1 + 9);
        assert!(CountRange::of("你好").upper <= 7);
        // Words glued to non-ASCII letters are not counted as words.
        assert_eq!(CountRange::of("caféteria").lower, 0);
    }
}
