//! Splits prompt text on special-token strings the way llama.cpp's `tokenizer_st_partition` does with
//! `parse_special=true`: special tokens are taken longest first, and each one claims its leftmost
//! non-overlapping occurrences in the text the longer ones left over. One Aho-Corasick pass finds all
//! candidate occurrences, so text without special tokens costs a single scan. Tokens flagged
//! `lstrip`/`rstrip` (llama.cpp sets these for a few models, e.g. Phi-3) also swallow the ASCII
//! whitespace next to them.

use aho_corasick::{AhoCorasick, MatchKind};

use crate::error::TokenizerError;

/// A piece of prompt text: raw text to tokenize, or a special token matched verbatim.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Piece<'a> {
    Text(&'a str),
    Special(u32),
}

/// One special token to match.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SpecialToken<'a> {
    pub id: u32,
    pub text: &'a str,
    pub lstrip: bool,
    pub rstrip: bool,
}

pub(crate) struct SpecialSplitter {
    /// `None` when the vocabulary has no special tokens.
    automaton: Option<AhoCorasick>,
    /// Pattern index → (token id, lstrip, rstrip), in llama.cpp's priority order (longest first).
    tokens: Vec<(u32, bool, bool)>,
}

/// A claimed occurrence: `lo..hi` is the token plus any whitespace it strips.
#[derive(Clone, Copy)]
struct Claim {
    lo: usize,
    hi: usize,
    id: u32,
}

/// C `isspace` in the "C" locale, which llama.cpp uses for lstrip/rstrip.
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

impl SpecialSplitter {
    /// Builds the matcher; tokens with empty text are ignored.
    pub fn new<'a>(
        specials: impl IntoIterator<Item = SpecialToken<'a>>,
    ) -> Result<Self, TokenizerError> {
        let mut list: Vec<SpecialToken<'a>> = specials
            .into_iter()
            .filter(|s| !s.text.is_empty())
            .collect();
        // llama.cpp sorts by text length, longest first; ties keep id order here.
        list.sort_by(|a, b| b.text.len().cmp(&a.text.len()).then(a.id.cmp(&b.id)));
        if list.is_empty() {
            return Ok(SpecialSplitter {
                automaton: None,
                tokens: Vec::new(),
            });
        }
        let automaton = AhoCorasick::builder()
            .match_kind(MatchKind::Standard)
            .build(list.iter().map(|s| s.text))
            .map_err(|e| TokenizerError::Invalid(format!("special tokens: {e}")))?;
        Ok(SpecialSplitter {
            automaton: Some(automaton),
            tokens: list.iter().map(|s| (s.id, s.lstrip, s.rstrip)).collect(),
        })
    }

    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Appends the pieces of `text` to `out` in order.
    pub fn split<'a>(&self, text: &'a str, out: &mut Vec<Piece<'a>>) {
        if text.is_empty() {
            return;
        }
        let Some(ac) = &self.automaton else {
            out.push(Piece::Text(text));
            return;
        };
        // (priority, start, end) of every occurrence, overlapping ones included.
        let mut found: Vec<(usize, usize, usize)> = ac
            .find_overlapping_iter(text)
            .map(|m| (m.pattern().as_usize(), m.start(), m.end()))
            .collect();
        if found.is_empty() {
            out.push(Piece::Text(text));
            return;
        }
        found.sort_unstable();
        let bytes = text.as_bytes();
        // Claimed spans, kept sorted; they never overlap.
        let mut claimed: Vec<Claim> = Vec::new();
        let mut current = usize::MAX;
        let mut last_end = 0;
        for (prio, start, end) in found {
            if prio != current {
                current = prio;
                last_end = 0;
            }
            if start < last_end {
                continue; // overlaps the previous occurrence of the same token
            }
            let pos = claimed.partition_point(|c| c.lo < start);
            let floor = if pos > 0 { claimed[pos - 1].hi } else { 0 };
            let ceil = claimed.get(pos).map_or(text.len(), |c| c.lo);
            if start < floor || end > ceil {
                continue; // not inside a stretch of raw text any more
            }
            let (id, lstrip, rstrip) = self.tokens[prio];
            let mut lo = start;
            if lstrip {
                while lo > floor && is_c_space(bytes[lo - 1]) {
                    lo -= 1;
                }
            }
            let mut hi = end;
            if rstrip {
                while hi < ceil && is_c_space(bytes[hi]) {
                    hi += 1;
                }
            }
            claimed.insert(pos, Claim { lo, hi, id });
            last_end = end;
        }
        let mut at = 0;
        for c in claimed {
            if c.lo > at {
                out.push(Piece::Text(&text[at..c.lo]));
            }
            out.push(Piece::Special(c.id));
            at = c.hi;
        }
        if at < text.len() {
            out.push(Piece::Text(&text[at..]));
        }
    }
}
