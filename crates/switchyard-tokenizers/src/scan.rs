//! Hand-written scanners for the common pre-tokenizer regexes, so counting does not run them on
//! `fancy-regex`'s backtracking VM.
//!
//! The Llama 3 and GPT-2 regexes hold a look-ahead (`\s+(?!\S)`), so `fancy-regex` runs the whole
//! alternation on its VM: at 32k tokens that was most of an exact count's time. The patterns are
//! simple enough to follow by hand: each alternative below is the regex's, in its order, with the
//! leftmost-first and backtracking outcome worked out. The character classes (`\p{L}`, `\p{N}`,
//! `\s`) are taken from `regex-syntax`, the same Unicode tables `fancy-regex` uses.
//!
//! A scanner gives the pieces `find_iter` gives, gaps included (text no alternative matched is a
//! piece of its own, as `Split` with `Isolated` keeps it). Tests compare the two on every string
//! of small adversarial alphabets, random text and the reference corpus.

use regex_syntax::hir::{Class, HirKind};

use crate::error::TokenizerError;

/// Character class of a scanner: letter, number, white space or anything else.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Other,
    Letter,
    Number,
    Space,
}

/// `\p{L}`, `\p{N}` and `\s` as `regex-syntax` defines them.
#[derive(Debug)]
struct Classes {
    ascii: [Kind; 128],
    /// Non-ASCII ranges (inclusive, sorted, disjoint) of the three named kinds.
    ranges: Vec<(u32, u32, Kind)>,
}

impl Classes {
    fn new() -> Result<Self, TokenizerError> {
        let mut ranges = Vec::new();
        for (pattern, kind) in [
            (r"\p{L}", Kind::Letter),
            (r"\p{N}", Kind::Number),
            (r"\s", Kind::Space),
        ] {
            let hir = regex_syntax::Parser::new()
                .parse(pattern)
                .map_err(|e| TokenizerError::Hf(format!("class {pattern}: {e}")))?;
            let HirKind::Class(Class::Unicode(class)) = hir.kind() else {
                return Err(TokenizerError::Hf(format!(
                    "class {pattern}: not a Unicode class"
                )));
            };
            ranges.extend(
                class
                    .ranges()
                    .iter()
                    .map(|r| (u32::from(r.start()), u32::from(r.end()), kind)),
            );
        }
        ranges.sort_unstable_by_key(|r| r.0);
        if ranges.windows(2).any(|w| w[0].1 >= w[1].0) {
            return Err(TokenizerError::Hf("overlapping character classes".into()));
        }
        let mut ascii = [Kind::Other; 128];
        for (c, slot) in ascii.iter_mut().enumerate() {
            *slot = Self::search(&ranges, c as u32);
        }
        ranges.retain(|r| r.1 >= 128);
        Ok(Classes { ascii, ranges })
    }

    fn search(ranges: &[(u32, u32, Kind)], c: u32) -> Kind {
        let i = ranges.partition_point(|r| r.1 < c);
        match ranges.get(i) {
            Some(&(start, _, kind)) if start <= c => kind,
            _ => Kind::Other,
        }
    }

    /// The char starting at byte `i` of `s` (which must be a char boundary), its length in
    /// bytes and its kind; `None` at the end.
    #[inline]
    fn at(&self, s: &str, i: usize) -> Option<(char, usize, Kind)> {
        let b = *s.as_bytes().get(i)?;
        if b < 0x80 {
            return Some((char::from(b), 1, self.ascii[usize::from(b)]));
        }
        let c = s.get(i..)?.chars().next()?;
        Some((c, c.len_utf8(), Self::search(&self.ranges, u32::from(c))))
    }

    #[inline]
    fn kind_at(&self, s: &str, i: usize) -> Option<Kind> {
        self.at(s, i).map(|(_, _, k)| k)
    }

    /// End of the run of `kind` chars starting at `i`: ASCII bytes by the table alone, other
    /// chars decoded one by one.
    #[inline]
    fn run_end(&self, s: &str, mut i: usize, kind: Kind) -> usize {
        let b = s.as_bytes();
        if kind == Kind::Letter {
            // Eight bytes at a time while they are all ASCII letters.
            while let Some(word) = b.get(i..i.wrapping_add(8)).and_then(|w| w.try_into().ok()) {
                let n = ascii_letters(u64::from_le_bytes(word));
                i += n;
                if n < 8 {
                    break;
                }
            }
        }
        loop {
            while let Some(&x) = b.get(i) {
                if x >= 0x80 || self.ascii[usize::from(x)] != kind {
                    break;
                }
                i += 1;
            }
            // An ASCII char here is of another kind; a non-ASCII one may continue the run.
            match self.at(s, i) {
                Some((_, n, k)) if n > 1 && k == kind => i += n,
                _ => return i,
            }
        }
    }
}

/// How many of the eight bytes of `word` (little-endian) are ASCII letters before the first one
/// that is not, without a branch per byte.
#[inline]
fn ascii_letters(word: u64) -> usize {
    const LOW7: u64 = 0x7F7F_7F7F_7F7F_7F7F;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // Lower case (`A`..`Z` become `a`..`z`; nothing else lands in `a`..`z`); each byte stays
    // below 0x80, so the additions below never carry into the next byte.
    let folded = (word & LOW7) | 0x2020_2020_2020_2020;
    let at_least_a = folded + 0x1F1F_1F1F_1F1F_1F1F; // high bit: byte >= 'a'
    let past_z = folded + 0x0505_0505_0505_0505; // high bit: byte > 'z'
    let letters = at_least_a & !past_z & !word & HIGH;
    ((!letters & HIGH).trailing_zeros() / 8) as usize
}

/// Which regex a scanner stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    /// Llama 3's regex, `\p{N}{1,max_digits}` (Qwen2's is the same with one digit).
    Llama3 { max_digits: usize },
    /// The GPT-2 regex (without `|\s+`: gaps are kept as pieces all the same).
    Gpt2,
    /// `\p{N}`: each number char a piece of its own.
    EachNumber,
}

/// A pre-tokenizer regex followed by hand.
#[derive(Debug)]
pub(crate) struct Scanner {
    shape: Shape,
    classes: Classes,
}

impl Scanner {
    /// The scanner for `pattern`, when there is one (see `pretok`).
    pub fn for_pattern(pattern: &str) -> Result<Option<Self>, TokenizerError> {
        let shape = match pattern {
            crate::pretok::LLAMA3 => Shape::Llama3 { max_digits: 3 },
            crate::pretok::QWEN2 => Shape::Llama3 { max_digits: 1 },
            crate::pretok::GPT2 => Shape::Gpt2,
            crate::pretok::EACH_NUMBER => Shape::EachNumber,
            _ => return Ok(None),
        };
        Ok(Some(Scanner {
            shape,
            classes: Classes::new()?,
        }))
    }

    /// Calls `f` with each piece of `text`, in order; the pieces cover `text`.
    #[inline]
    pub fn pieces<'t>(&self, text: &'t str, mut f: impl FnMut(&'t str)) {
        let mut i = 0;
        while i < text.len() {
            let end = self.piece_end(text, i);
            f(&text[i..end]);
            i = end;
        }
    }

    /// End of the piece starting at byte `i` (`i < text.len()`, a char boundary); always past `i`.
    #[inline]
    fn piece_end(&self, s: &str, i: usize) -> usize {
        if let Some(end) = self.ascii_word_end(s, i) {
            return end;
        }
        let Some((c, n, kind)) = self.classes.at(s, i) else {
            return s.len();
        };
        let end = match self.shape {
            Shape::Llama3 { max_digits } => self.llama3(s, i, c, n, kind, max_digits),
            Shape::Gpt2 => self.gpt2(s, i, c, n, kind),
            Shape::EachNumber => {
                if kind == Kind::Number {
                    i + n
                } else {
                    let mut j = i + n;
                    while let Some((_, m, k)) = self.classes.at(s, j) {
                        if k == Kind::Number {
                            break;
                        }
                        j += m;
                    }
                    j
                }
            }
        };
        // Never stall, whatever the text.
        end.max(i + n)
    }

    /// The most common pieces of prose, found from ASCII bytes alone: a word (a letter run) with
    /// what the pattern lets precede it (Llama 3: one char that is not a line break, number or
    /// apostrophe; GPT-2: one space). `None`: not one of these, ask the full scanner.
    #[inline]
    fn ascii_word_end(&self, s: &str, i: usize) -> Option<usize> {
        let b = s.as_bytes();
        let first = *b.get(i)?;
        let ascii = &self.classes.ascii;
        let kind = *ascii.get(usize::from(first))?;
        let letter_at = |j: usize| {
            b.get(j)
                .and_then(|&x| ascii.get(usize::from(x)))
                .is_some_and(|&k| k == Kind::Letter)
        };
        let word_from = match self.shape {
            _ if kind == Kind::Letter => i,
            Shape::Llama3 { .. }
                if kind != Kind::Number
                    && !matches!(first, b'\'' | b'\r' | b'\n')
                    && letter_at(i + 1) =>
            {
                i + 1
            }
            Shape::Gpt2 if first == b' ' && letter_at(i + 1) => i + 1,
            _ => return None,
        };
        // A letter run from a letter: Llama 3's `\p{L}+` alternatives and GPT-2's ` ?\p{L}+`
        // come before anything else that could start here.
        (self.shape != Shape::EachNumber).then(|| self.classes.run_end(s, word_from, Kind::Letter))
    }

    /// `(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|
    /// \p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
    fn llama3(&self, s: &str, i: usize, c: char, n: usize, kind: Kind, max_digits: usize) -> usize {
        let b = s.as_bytes();
        let byte = |j: usize| b.get(j).copied().unwrap_or(0);
        if c == '\'' {
            match byte(i + 1) {
                b's' | b'S' | b't' | b'T' | b'm' | b'M' | b'd' | b'D' => return i + 2,
                b'r' | b'R' | b'v' | b'V' if matches!(byte(i + 2), b'e' | b'E') => return i + 3,
                b'l' | b'L' if matches!(byte(i + 2), b'l' | b'L') => return i + 3,
                _ => {}
            }
        }
        let cl = &self.classes;
        if kind == Kind::Letter {
            return cl.run_end(s, i, Kind::Letter);
        }
        if c != '\r'
            && c != '\n'
            && kind != Kind::Number
            && cl.kind_at(s, i + n) == Some(Kind::Letter)
        {
            return cl.run_end(s, i + n, Kind::Letter);
        }
        if kind == Kind::Number {
            let mut j = i;
            for _ in 0..max_digits {
                match cl.at(s, j) {
                    Some((_, m, Kind::Number)) => j += m,
                    _ => break,
                }
            }
            return j;
        }
        // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
        let symbols_from = if kind == Kind::Other {
            Some(i)
        } else if c == ' ' && cl.kind_at(s, i + 1) == Some(Kind::Other) {
            Some(i + 1)
        } else {
            None
        };
        if let Some(from) = symbols_from {
            let mut j = cl.run_end(s, from, Kind::Other);
            while matches!(byte(j), b'\r' | b'\n') {
                j += 1;
            }
            return j;
        }
        // White space from here on.
        self.space_run(s, i, true)
    }

    /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)`
    fn gpt2(&self, s: &str, i: usize, c: char, n: usize, kind: Kind) -> usize {
        let b = s.as_bytes();
        let byte = |j: usize| b.get(j).copied().unwrap_or(0);
        if c == '\'' {
            match (byte(i + 1), byte(i + 2)) {
                (b's' | b't' | b'm' | b'd', _) => return i + 2,
                (b'r' | b'v', b'e') | (b'l', b'l') => return i + 3,
                _ => {}
            }
        }
        let cl = &self.classes;
        if kind != Kind::Space {
            return cl.run_end(s, i, kind);
        }
        if c == ' '
            && let Some(next) = cl.kind_at(s, i + n)
            && next != Kind::Space
        {
            return cl.run_end(s, i + n, next);
        }
        self.space_run(s, i, false)
    }

    /// The piece of a white-space run starting at `i`: with `newlines` (Llama 3's
    /// `\s*[\r\n]+`), up to its last line break if it has one; else all of it at the end of the
    /// text, all but its last char before other text, or its one char (`\s+`, or a gap).
    fn space_run(&self, s: &str, i: usize, newlines: bool) -> usize {
        let mut j = i;
        let mut last_len = 0;
        let mut chars = 0usize;
        let mut after_break = None;
        while let Some((c, m, Kind::Space)) = self.classes.at(s, j) {
            j += m;
            last_len = m;
            chars += 1;
            if c == '\r' || c == '\n' {
                after_break = Some(j);
            }
        }
        if newlines && let Some(end) = after_break {
            return end;
        }
        if j == s.len() || chars < 2 {
            j
        } else {
            j - last_len
        }
    }
}

#[cfg(test)]
#[allow(clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::pretok::{EACH_NUMBER, GPT2, LLAMA3, QWEN2};

    fn scanner(pattern: &str) -> Scanner {
        match Scanner::for_pattern(pattern) {
            Ok(Some(s)) => s,
            other => panic!("no scanner for {pattern}: {other:?}"),
        }
    }

    fn split(sc: &Scanner, text: &str) -> Vec<String> {
        let mut out = Vec::new();
        sc.pieces(text, |p| out.push(p.to_owned()));
        out
    }

    /// What `fancy-regex` gives: every match and every gap between matches, in order.
    fn regex_split(re: &fancy_regex::Regex, text: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut last = 0;
        for m in re.find_iter(text) {
            let m = m.expect("no backtracking limit on these patterns");
            if m.start() > last {
                out.push(text[last..m.start()].to_owned());
            }
            if m.end() > m.start() {
                out.push(m.as_str().to_owned());
            }
            last = m.end();
        }
        if last < text.len() {
            out.push(text[last..].to_owned());
        }
        out
    }

    const PATTERNS: [&str; 4] = [LLAMA3, QWEN2, GPT2, EACH_NUMBER];

    /// Every string of up to `len` chars over `alphabet` gives the regex's pieces.
    fn exhaustive(alphabet: &[char], len: u32) {
        for pattern in PATTERNS {
            let (sc, re) = (
                scanner(pattern),
                fancy_regex::Regex::new(pattern).expect("regex"),
            );
            let mut text = String::new();
            for n in 1..=len {
                for mut code in 0..alphabet.len().pow(n) {
                    text.clear();
                    for _ in 0..n {
                        text.push(alphabet[code % alphabet.len()]);
                        code /= alphabet.len();
                    }
                    assert_eq!(
                        split(&sc, &text),
                        regex_split(&re, &text),
                        "{pattern} on {text:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn llama3_pieces() {
        assert_eq!(
            split(&scanner(LLAMA3), "Hello world's 12345 (x)  \n\n  y!!\n"),
            [
                "Hello", " world", "'s", " ", "123", "45", " (", "x", ")", "  \n\n", " ", " y",
                "!!\n"
            ]
        );
    }

    /// Each class the regexes tell apart (space, tab, line breaks, other white space, ASCII and
    /// non-ASCII letters and numbers, apostrophe, contraction letters, symbols, combining marks).
    #[test]
    fn same_pieces_as_the_regex_on_every_short_string() {
        exhaustive(
            &[
                ' ', '\t', '\n', '\r', 'a', 's', '\'', '1', '.', '\u{3000}', '\u{301}', 'É', '²',
            ],
            4,
        );
        exhaustive(
            &[' ', '\n', 'r', 'e', 'L', '\'', '7', '!', '\u{a0}', '中'],
            5,
        );
    }

    /// Longer random text over a wider alphabet (deterministic generator).
    #[test]
    fn same_pieces_as_the_regex_on_random_text() {
        let alphabet: Vec<char> = " \t\n\r\u{b}\u{c}\u{85}\u{a0}\u{2028}\u{3000}abcxyzSTRVELDM'\"0123456789\
            .,;:!?()[]{}<>_-+=*/\\|@#$%^&~`éßÆдЖ中文日本語한국어ⅫⅦ²½٣\u{301}\u{300}😀🎉\u{200d}\u{fe0f}"
            .chars()
            .collect();
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for pattern in PATTERNS {
            let (sc, re) = (
                scanner(pattern),
                fancy_regex::Regex::new(pattern).expect("regex"),
            );
            for _ in 0..3000 {
                let len = (next() % 60) as usize;
                // Runs of one char now and then (white space, digits, letters).
                let text: String = (0..len)
                    .flat_map(|_| {
                        let c = alphabet[(next() % alphabet.len() as u64) as usize];
                        let times = if next() % 5 == 0 { 1 + next() % 5 } else { 1 };
                        std::iter::repeat_n(c, times as usize)
                    })
                    .collect();
                assert_eq!(
                    split(&sc, &text),
                    regex_split(&re, &text),
                    "{pattern} on {text:?}"
                );
            }
        }
    }

    #[test]
    fn ascii_letters_counts_the_leading_letters() {
        for bytes in [
            *b"abcdefgh",
            *b"Hello, w",
            *b"AZaz@[`{",
            *b"x\xc3\xa9abcde",
            *b"12345678",
        ] {
            let want = bytes.iter().take_while(|b| b.is_ascii_alphabetic()).count();
            assert_eq!(ascii_letters(u64::from_le_bytes(bytes)), want, "{bytes:?}");
        }
        for b in 0..=255u8 {
            let want = usize::from(b.is_ascii_alphabetic());
            assert_eq!(
                ascii_letters(u64::from_le_bytes([b, b'.', 0, 0, 0, 0, 0, 0])),
                want
            );
        }
    }

    #[test]
    fn other_patterns_have_no_scanner() -> Result<(), TokenizerError> {
        assert!(Scanner::for_pattern(r"[0-9][0-9][0-9]")?.is_none());
        Ok(())
    }
}
