//! Counting byte-level BPE tokens without building token ids, strings or offsets.
//!
//! The router only needs how many tokens a prompt has. Hugging Face's `encode` builds a full
//! `Encoding` (a `String` and offsets per token, normalised-string alignments per pre-token), and a
//! profile of a 27k-token prompt spent more time in `malloc`, `free` and `memcpy` than in the
//! regex and merges themselves. This counter runs the same three steps with no per-token
//! allocation: the pre-tokenizer regexes (applied in sequence, each match and each gap kept as a
//! piece, as `Split` with `Isolated` does; the common patterns by the hand-written scanners of
//! `scan`, the others by the same `fancy-regex` patterns), then per piece its
//! bytes' byte-level tokens, then the merges by rank (lowest rank first, leftmost on ties, as the
//! `tokenizers` BPE model applies them). With `ignore_merges`, a piece that is a whole vocabulary
//! entry is one token. Pieces already seen are remembered (bounded), so common words cost one
//! lookup.
//!
//! Tests check that it gives `encode`'s length on the reference corpus of every byte-level
//! vocabulary; any regex error falls back to `encode`.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use fancy_regex::Regex;
use quick_cache::sync::Cache;
use rustc_hash::{FxBuildHasher, FxHashMap, FxHashSet};

use crate::bpe::{byte_to_char, split_merge};
use crate::error::TokenizerError;
use crate::piece_memo::{PieceMemo, new_owner};
use crate::pretok::PreTokenizer;
use crate::scan::Scanner;
use crate::vocab::Vocab;

/// Pieces remembered with their counts, per cache (short and long pieces; each a few dozen bytes
/// at most: ~1.5 MiB each).
const WORD_CACHE_ENTRIES: usize = 32_768;
/// Longer pieces are merged every time (they are rare, and would crowd the cache).
const MAX_CACHED_PIECE: usize = 48;

/// One pre-tokenizer step: a hand-written scanner where there is one, else the regex.
enum Splitter {
    Scan(Scanner),
    Regex(Box<Regex>),
}

/// Counts byte-level BPE tokens of text without special tokens.
pub(crate) struct BpeCounter {
    regexes: Vec<Splitter>,
    ignore_merges: bool,
    /// Raw byte → its byte-level token.
    byte_ids: [Option<u32>; 256],
    /// (left, right) → (rank, merged token).
    merges: FxHashMap<(u32, u32), (u32, u32)>,
    /// Raw bytes of each vocabulary entry (for `ignore_merges`): up to 15 bytes packed
    /// ([`short_key`]), longer ones as they are.
    whole_short: FxHashSet<u128>,
    whole_long: FxHashSet<Box<[u8]>>,
    /// Counts of pieces seen, the same two ways.
    words_short: Cache<u128, u32, quick_cache::UnitWeighter, FxBuildHasher>,
    words_long: Cache<Box<[u8]>, u32, quick_cache::UnitWeighter, FxBuildHasher>,
    /// This counter's name in the per-thread piece memo (`piece_memo`).
    owner: u64,
}

/// A piece of at most 15 bytes as one integer (its bytes, then its length in the top byte), so
/// that hashing and comparing it takes a few instructions and no `memcmp`.
#[inline]
fn short_key(bytes: &[u8]) -> Option<u128> {
    let len = bytes.len();
    if len > 15 {
        return None;
    }
    let mut buf = [0u8; 16];
    buf[..len].copy_from_slice(bytes);
    buf[15] = len as u8;
    Some(u128::from_le_bytes(buf))
}

/// [`short_key`] of `piece`, a slice of `text`, read as one 16-byte load when `text` goes on
/// far enough (no copy of a variable length).
#[inline]
fn short_key_in(piece: &str, text: &str) -> Option<u128> {
    let len = piece.len();
    if len > 15 {
        return None;
    }
    let start = (piece.as_ptr() as usize).wrapping_sub(text.as_ptr() as usize);
    match text
        .as_bytes()
        .get(start..start.wrapping_add(16))
        .and_then(|w| <[u8; 16]>::try_from(w).ok())
    {
        Some(window) => {
            let mask = (1u128 << (8 * len)) - 1;
            Some((u128::from_le_bytes(window) & mask) | ((len as u128) << 120))
        }
        None => short_key(piece.as_bytes()),
    }
}

fn word_cache<K: Eq + std::hash::Hash + Clone>()
-> Cache<K, u32, quick_cache::UnitWeighter, FxBuildHasher> {
    Cache::with(
        WORD_CACHE_ENTRIES,
        WORD_CACHE_ENTRIES as u64,
        quick_cache::UnitWeighter,
        FxBuildHasher,
        quick_cache::sync::DefaultLifecycle::default(),
    )
}

/// The raw bytes a byte-level token string stands for (`None` when a char is not byte-level).
fn token_bytes(token: &str, char_to_byte: &FxHashMap<char, u8>) -> Option<Box<[u8]>> {
    token
        .chars()
        .map(|c| char_to_byte.get(&c).copied())
        .collect()
}

impl BpeCounter {
    pub fn new(vocab: &Vocab, pre: &PreTokenizer) -> Result<Self, TokenizerError> {
        let regexes = pre
            .regexes
            .iter()
            .map(|re| {
                if let Some(scanner) = Scanner::for_pattern(re)? {
                    return Ok(Splitter::Scan(scanner));
                }
                Regex::new(re)
                    .map(|r| Splitter::Regex(Box::new(r)))
                    .map_err(|e| TokenizerError::Hf(format!("pre-tokenizer regex {re:?}: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let ids = vocab.token_to_id();
        let char_to_byte: FxHashMap<char, u8> = (0..=255u8).map(|b| (byte_to_char(b), b)).collect();
        let mut byte_ids = [None; 256];
        for (b, slot) in byte_ids.iter_mut().enumerate() {
            *slot = ids.get(byte_to_char(b as u8).to_string().as_str()).copied();
        }
        let mut merges = FxHashMap::default();
        let mut joined = String::new();
        let mut rank = 0u32;
        for line in &vocab.merges {
            let Some((a, b)) = split_merge(line) else {
                continue;
            };
            joined.clear();
            joined.push_str(a);
            joined.push_str(b);
            // As `Bpe::new`: merges of non-tokens are dropped, a repeated pair keeps its first rank.
            if let (Some(&ia), Some(&ib), Some(&ij)) = (ids.get(a), ids.get(b), ids.get(&*joined))
                && let std::collections::hash_map::Entry::Vacant(e) = merges.entry((ia, ib))
            {
                e.insert((rank, ij));
                rank += 1;
            }
        }
        let (mut whole_short, mut whole_long) = (FxHashSet::default(), FxHashSet::default());
        if pre.ignore_merges {
            for bytes in ids.keys().filter_map(|t| token_bytes(t, &char_to_byte)) {
                match short_key(&bytes) {
                    Some(k) => whole_short.insert(k),
                    None => whole_long.insert(bytes),
                };
            }
        }
        Ok(BpeCounter {
            regexes,
            ignore_merges: pre.ignore_merges,
            byte_ids,
            merges,
            whole_short,
            whole_long,
            words_short: word_cache(),
            words_long: word_cache(),
            owner: new_owner(),
        })
    }

    /// Tokens in `text` (no special tokens inside), or `None` if a regex gave up (backtracking
    /// limit): the caller then counts with `encode`.
    pub fn count(&self, text: &str) -> Option<usize> {
        let mut total = 0usize;
        let mut symbols = Vec::new();
        let mut ok = true;
        PieceMemo::with(|memo| {
            let mut count =
                |piece: &str| total += self.count_piece(piece, text, memo, &mut symbols);
            // The common pre-tokenizers (one or two scanners) without a `dyn` call per piece.
            match self.regexes.as_slice() {
                [Splitter::Scan(words)] => words.pieces(text, count),
                [Splitter::Scan(first), Splitter::Scan(words)] => {
                    first.pieces(text, |part| words.pieces(part, &mut count));
                }
                _ => self.pieces(text, 0, &mut count, &mut ok),
            }
        });
        ok.then_some(total)
    }

    /// Calls `f` with every piece of `text` after regexes `level..`.
    fn pieces(&self, text: &str, level: usize, f: &mut dyn FnMut(&str), ok: &mut bool) {
        let re = match self.regexes.get(level) {
            None => {
                if !text.is_empty() {
                    f(text);
                }
                return;
            }
            Some(Splitter::Scan(scanner)) => {
                scanner.pieces(text, |piece| self.pieces(piece, level + 1, f, ok));
                return;
            }
            Some(Splitter::Regex(re)) => re,
        };
        let mut last = 0;
        for m in re.find_iter(text) {
            let Ok(m) = m else {
                *ok = false;
                return;
            };
            if m.start() > last {
                self.pieces(&text[last..m.start()], level + 1, f, ok);
            }
            if m.end() > m.start() {
                self.pieces(m.as_str(), level + 1, f, ok);
            }
            last = m.end();
        }
        if last < text.len() {
            self.pieces(&text[last..], level + 1, f, ok);
        }
    }

    /// Tokens in `piece`, a slice of `text`.
    #[inline]
    fn count_piece(
        &self,
        piece: &str,
        text: &str,
        memo: &mut PieceMemo,
        symbols: &mut Vec<u32>,
    ) -> usize {
        let bytes = piece.as_bytes();
        if let [b] = bytes {
            // A byte without a token (some vocabularies lack a few) gives none, as in `encode`.
            return usize::from(self.byte_ids[usize::from(*b)].is_some());
        }
        let short = short_key_in(piece, text);
        if let Some(k) = short {
            if let Some(n) = memo.get(self.owner, k) {
                return n as usize;
            }
            let n = self.count_uncached(bytes, short, symbols);
            memo.put(self.owner, k, u32::try_from(n).unwrap_or(u32::MAX));
            return n;
        }
        self.count_uncached(bytes, short, symbols)
    }

    /// A piece's count from the whole-word set, the shared piece caches or the merges.
    fn count_uncached(&self, bytes: &[u8], short: Option<u128>, symbols: &mut Vec<u32>) -> usize {
        if self.ignore_merges {
            let whole = match short {
                Some(k) => self.whole_short.contains(&k),
                None => self.whole_long.contains(bytes),
            };
            if whole {
                return 1;
            }
        }
        if let Some(k) = short {
            if let Some(n) = self.words_short.get(&k) {
                return n as usize;
            }
            let n = self.merge(bytes, symbols);
            self.words_short
                .insert(k, u32::try_from(n).unwrap_or(u32::MAX));
            return n;
        }
        let cacheable = bytes.len() <= MAX_CACHED_PIECE;
        if cacheable && let Some(n) = self.words_long.get(bytes) {
            return n as usize;
        }
        let n = self.merge(bytes, symbols);
        if cacheable {
            self.words_long
                .insert(bytes.into(), u32::try_from(n).unwrap_or(u32::MAX));
        }
        n
    }

    /// Applies the merges to `bytes`' byte tokens; returns how many symbols are left.
    fn merge(&self, bytes: &[u8], symbols: &mut Vec<u32>) -> usize {
        symbols.clear();
        symbols.extend(bytes.iter().filter_map(|&b| self.byte_ids[b as usize]));
        let len = symbols.len();
        if len < 2 {
            return len;
        }
        // A linked list over `symbols`: prev/next indices, removed symbols marked.
        let mut next: Vec<usize> = (1..=len).collect();
        let mut prev: Vec<usize> = (0..len).map(|i| i.wrapping_sub(1)).collect();
        let mut alive = vec![true; len];
        let mut heap: BinaryHeap<Reverse<(u32, usize, u32)>> = BinaryHeap::new();
        for i in 0..len - 1 {
            if let Some(&(rank, id)) = self.merges.get(&(symbols[i], symbols[i + 1])) {
                heap.push(Reverse((rank, i, id)));
            }
        }
        let mut count = len;
        while let Some(Reverse((_, pos, id))) = heap.pop() {
            let right = next[pos];
            // Stale: the left symbol was merged away, or the pair changed since it was pushed.
            if !alive[pos] || right >= len {
                continue;
            }
            if self
                .merges
                .get(&(symbols[pos], symbols[right]))
                .map(|m| m.1)
                != Some(id)
            {
                continue;
            }
            symbols[pos] = id;
            alive[right] = false;
            next[pos] = next[right];
            if next[pos] < len {
                prev[next[pos]] = pos;
            }
            count -= 1;
            let p = prev[pos];
            if p < len
                && let Some(&(rank, nid)) = self.merges.get(&(symbols[p], symbols[pos]))
            {
                heap.push(Reverse((rank, p, nid)));
            }
            let n = next[pos];
            if n < len
                && let Some(&(rank, nid)) = self.merges.get(&(symbols[pos], symbols[n]))
            {
                heap.push(Reverse((rank, pos, nid)));
            }
        }
        count
    }
}
