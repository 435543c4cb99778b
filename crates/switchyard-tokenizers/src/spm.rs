//! SentencePiece-style BPE (`tokenizer.ggml.model = "llama"`: Mistral, Llama 2), written to give the
//! same ids as llama.cpp's `llm_tokenizer_spm`: spaces become `▁`, a space is prefixed to text at the
//! start or after a special token, adjacent symbols are merged highest score first (leftmost on ties)
//! while the merged text is a vocabulary entry, and leftovers fall back to `<0xXX>` byte tokens.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use rustc_hash::FxHashMap;

use crate::special::Piece;
use crate::vocab::Vocab;

pub(crate) struct Spm {
    token_to_id: FxHashMap<Box<str>, u32>,
    scores: Vec<f32>,
    /// Byte → `<0xXX>` token (or the single-byte token), as llama.cpp's `byte_to_token`.
    byte_tokens: [Option<u32>; 256],
    unk: Option<u32>,
    add_space_prefix: bool,
}

#[derive(Clone, Copy)]
struct Symbol {
    start: usize,
    len: usize,
    prev: Option<usize>,
    next: Option<usize>,
}

struct Bigram {
    score: f32,
    left: usize,
    right: usize,
    size: usize,
}

impl PartialEq for Bigram {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Bigram {}
impl PartialOrd for Bigram {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Bigram {
    /// Highest score first; among equal scores the leftmost pair (llama.cpp's comparator, whose
    /// float `<` also treats -0.0 and 0.0 as equal).
    fn cmp(&self, other: &Self) -> Ordering {
        let by_score = if self.score < other.score {
            Ordering::Less
        } else if self.score > other.score {
            Ordering::Greater
        } else {
            Ordering::Equal
        };
        by_score.then_with(|| other.left.cmp(&self.left))
    }
}

impl Spm {
    pub fn new(vocab: &Vocab) -> Self {
        let mut token_to_id =
            FxHashMap::with_capacity_and_hasher(vocab.tokens.len(), Default::default());
        for (i, t) in vocab.tokens.iter().enumerate() {
            token_to_id.insert(Box::<str>::from(t.as_str()), i as u32);
        }
        let mut byte_tokens = [None; 256];
        for (b, slot) in byte_tokens.iter_mut().enumerate() {
            let hex = format!("<0x{b:02X}>");
            *slot = token_to_id.get(hex.as_str()).copied().or_else(|| {
                let byte = [b as u8];
                std::str::from_utf8(&byte)
                    .ok()
                    .and_then(|s| token_to_id.get(s).copied())
            });
        }
        Spm {
            token_to_id,
            scores: vocab.scores.clone(),
            byte_tokens,
            unk: vocab.unk,
            add_space_prefix: vocab.add_space_prefix.unwrap_or(true),
        }
    }

    /// Encodes pre-split pieces, appending ids to `out`.
    pub fn encode_pieces(&self, pieces: &[Piece<'_>], out: &mut Vec<u32>) {
        let mut prev_special = true; // the first fragment gets a space prefix too
        let mut buf = String::new();
        for piece in pieces {
            match *piece {
                Piece::Special(id) => {
                    out.push(id);
                    prev_special = true;
                }
                Piece::Text(text) => {
                    buf.clear();
                    if self.add_space_prefix && prev_special {
                        buf.push('▁');
                    }
                    for ch in text.chars() {
                        buf.push(if ch == ' ' { '▁' } else { ch });
                    }
                    self.encode_fragment(&buf, out);
                    prev_special = false;
                }
            }
        }
    }

    /// Byte-token fallback for one byte string (used for unknown symbols).
    pub fn push_bytes(&self, bytes: &[u8], out: &mut Vec<u32>) {
        for &b in bytes {
            if let Some(id) = self.byte_tokens[b as usize].or(self.unk) {
                out.push(id);
            }
        }
    }

    fn lookup(&self, text: &str) -> Option<u32> {
        self.token_to_id.get(text).copied()
    }

    fn encode_fragment(&self, text: &str, out: &mut Vec<u32>) {
        let mut symbols: Vec<Symbol> = Vec::with_capacity(text.len());
        for (i, (start, ch)) in text.char_indices().enumerate() {
            symbols.push(Symbol {
                start,
                len: ch.len_utf8(),
                prev: i.checked_sub(1),
                next: Some(i + 1),
            });
        }
        let Some(last) = symbols.last_mut() else {
            return;
        };
        last.next = None;

        let mut queue = BinaryHeap::with_capacity(symbols.len());
        for i in 1..symbols.len() {
            self.try_add(text, &symbols, i - 1, i, &mut queue);
        }
        while let Some(bigram) = queue.pop() {
            let (l, r) = (symbols[bigram.left], symbols[bigram.right]);
            if l.len == 0 || r.len == 0 || l.len + r.len != bigram.size {
                continue; // stale: one side was merged since
            }
            symbols[bigram.left].len += r.len;
            symbols[bigram.left].next = r.next;
            symbols[bigram.right].len = 0;
            if let Some(n) = r.next {
                symbols[n].prev = Some(bigram.left);
            }
            if let Some(p) = l.prev {
                self.try_add(text, &symbols, p, bigram.left, &mut queue);
            }
            if let Some(n) = r.next {
                self.try_add(text, &symbols, bigram.left, n, &mut queue);
            }
        }

        let mut at = Some(0);
        while let Some(i) = at {
            let s = symbols[i];
            let piece = &text[s.start..s.start + s.len];
            match self.lookup(piece) {
                Some(id) => out.push(id),
                None => self.push_bytes(piece.as_bytes(), out),
            }
            at = s.next;
        }
    }

    fn try_add(
        &self,
        text: &str,
        symbols: &[Symbol],
        left: usize,
        right: usize,
        queue: &mut BinaryHeap<Bigram>,
    ) {
        let (l, r) = (symbols[left], symbols[right]);
        let size = l.len + r.len;
        if let Some(id) = self.lookup(&text[l.start..l.start + size])
            && let Some(&score) = self.scores.get(id as usize)
        {
            queue.push(Bigram {
                score,
                left,
                right,
                size,
            });
        }
    }
}
