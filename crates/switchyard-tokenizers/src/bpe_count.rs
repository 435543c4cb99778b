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
//! lookup: first in the calling thread's small table (`piece_memo`, in the L2 cache), then in the
//! whole-word set (`word_set`) and the shared caches. Pieces the small table does not know are
//! looked up in batches (`resolve_misses`), so their cache misses overlap.
//!
//! Tests check that it gives `encode`'s length on the reference corpus of every byte-level
//! vocabulary; any regex error falls back to `encode`.

use fancy_regex::Regex;
use quick_cache::sync::Cache;
use rustc_hash::{FxBuildHasher, FxHashMap, FxHashSet};

use crate::bpe::{byte_to_char, split_merge};
use crate::bpe_merge::{MergeScratch, count_merged};
use crate::error::TokenizerError;
use crate::piece_memo::{PieceMemo, new_owner};
use crate::pretok::PreTokenizer;
use crate::scan::Scanner;
use crate::vocab::Vocab;
use crate::word_set::WordSet;

/// Short pieces the memo did not know, resolved together (see `resolve_misses`).
const MISS_BATCH: usize = 32;
/// Short pieces remembered with their counts (~1.5 MiB).
const WORD_CACHE_ENTRIES: usize = 32_768;
/// Bytes of long pieces remembered (each weighs its length plus [`LONG_PIECE_OVERHEAD`]).
const LONG_CACHE_BYTES: u64 = 2 << 20;
/// What a long piece's entry costs beyond its bytes (box, count, the cache's bookkeeping).
const LONG_PIECE_OVERHEAD: u64 = 48;
/// Longer pieces are merged every time (they are rare: base64 or minified blobs).
const MAX_CACHED_PIECE: usize = 1024;

/// Weighs a long piece by its length, so the long-piece cache is bounded in bytes.
#[derive(Clone, Copy)]
struct PieceBytes;

impl quick_cache::Weighter<Box<[u8]>, u32> for PieceBytes {
    fn weight(&self, key: &Box<[u8]>, _: &u32) -> u64 {
        key.len() as u64 + LONG_PIECE_OVERHEAD
    }
}

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
    whole_short: WordSet,
    whole_long: FxHashSet<Box<[u8]>>,
    /// Counts of pieces seen, the same two ways.
    words_short: Cache<u128, u32, quick_cache::UnitWeighter, FxBuildHasher>,
    words_long: Cache<Box<[u8]>, u32, PieceBytes, FxBuildHasher>,
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

fn long_piece_cache() -> Cache<Box<[u8]>, u32, PieceBytes, FxBuildHasher> {
    Cache::with(
        (LONG_CACHE_BYTES / 64) as usize,
        LONG_CACHE_BYTES,
        PieceBytes,
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
        let (mut short_words, mut whole_long) = (Vec::new(), FxHashSet::default());
        if pre.ignore_merges {
            for bytes in ids.keys().filter_map(|t| token_bytes(t, &char_to_byte)) {
                match short_key(&bytes) {
                    Some(k) => short_words.push(k),
                    None => {
                        whole_long.insert(bytes);
                    }
                }
            }
        }
        let whole_short = WordSet::new(short_words);
        Ok(BpeCounter {
            regexes,
            ignore_merges: pre.ignore_merges,
            byte_ids,
            merges,
            whole_short,
            whole_long,
            words_short: word_cache(),
            words_long: long_piece_cache(),
            owner: new_owner(),
        })
    }

    /// Tokens in `text` (no special tokens inside), or `None` if a regex gave up (backtracking
    /// limit): the caller then counts with `encode`.
    pub fn count(&self, text: &str) -> Option<usize> {
        let mut total = 0usize;
        let mut scratch = MergeScratch::default();
        let mut ok = true;
        let mut misses = Vec::with_capacity(MISS_BATCH);
        PieceMemo::with(self.owner, |memo| {
            let mut count = |piece: &str| {
                total += self.count_piece(piece, text, memo, &mut misses, &mut scratch);
            };
            // The common pre-tokenizers (one or two scanners) without a `dyn` call per piece.
            match self.regexes.as_slice() {
                [Splitter::Scan(words)] => words.pieces(text, count),
                [Splitter::Scan(first), Splitter::Scan(words)] => {
                    first.pieces(text, |part| words.pieces(part, &mut count));
                }
                _ => self.pieces(text, 0, &mut count, &mut ok),
            }
            total += self.resolve_misses(&mut misses, memo, &mut scratch);
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

    /// Tokens in `piece`, a slice of `text`, so far: a short piece the memo does not know joins
    /// `misses` and is counted when they are resolved.
    #[inline]
    fn count_piece(
        &self,
        piece: &str,
        text: &str,
        memo: &mut PieceMemo,
        misses: &mut Vec<u128>,
        scratch: &mut MergeScratch,
    ) -> usize {
        let bytes = piece.as_bytes();
        if let [b] = bytes {
            // A byte without a token (some vocabularies lack a few) gives none, as in `encode`.
            return usize::from(self.byte_ids[usize::from(*b)].is_some());
        }
        let Some(k) = short_key_in(piece, text) else {
            return self.count_long(bytes, scratch);
        };
        if let Some(n) = memo.get(k) {
            return n;
        }
        misses.push(k);
        if misses.len() < MISS_BATCH {
            return 0;
        }
        self.resolve_misses(misses, memo, scratch)
    }

    /// Tokens in the short pieces `misses` (then emptied), remembered in `memo`. Their whole-word
    /// lookups go first, one after the other with nothing depending on them, so that the CPU
    /// waits for their cache misses together rather than one piece at a time.
    fn resolve_misses(
        &self,
        misses: &mut Vec<u128>,
        memo: &mut PieceMemo,
        scratch: &mut MergeScratch,
    ) -> usize {
        let mut whole = [false; MISS_BATCH];
        if self.ignore_merges {
            for (w, &k) in whole.iter_mut().zip(misses.iter()) {
                *w = self.whole_short.contains(k);
            }
        }
        let mut total = 0;
        for (&w, &k) in whole.iter().zip(misses.iter()) {
            let n = if w { 1 } else { self.count_short(k, scratch) };
            memo.put(k, n);
            total += n;
        }
        misses.clear();
        total
    }

    /// Tokens in the short piece `key` (not a whole word) by the shared cache or the merges.
    fn count_short(&self, key: u128, scratch: &mut MergeScratch) -> usize {
        if let Some(n) = self.words_short.get(&key) {
            return n as usize;
        }
        let packed = key.to_le_bytes();
        let bytes = packed.get(..usize::from(packed[15])).unwrap_or_default();
        let n = self.merge(bytes, scratch);
        self.words_short
            .insert(key, u32::try_from(n).unwrap_or(u32::MAX));
        n
    }

    /// Tokens in a piece of more than 15 bytes.
    fn count_long(&self, bytes: &[u8], scratch: &mut MergeScratch) -> usize {
        if self.ignore_merges && self.whole_long.contains(bytes) {
            return 1;
        }
        let cacheable = bytes.len() <= MAX_CACHED_PIECE;
        if cacheable && let Some(n) = self.words_long.get(bytes) {
            return n as usize;
        }
        let n = self.merge(bytes, scratch);
        if cacheable {
            self.words_long
                .insert(bytes.into(), u32::try_from(n).unwrap_or(u32::MAX));
        }
        n
    }

    /// Applies the merges to `bytes`' byte tokens; returns how many symbols are left.
    fn merge(&self, bytes: &[u8], scratch: &mut MergeScratch) -> usize {
        count_merged(&self.byte_ids, &self.merges, bytes, scratch)
    }
}
