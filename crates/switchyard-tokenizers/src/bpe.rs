//! Byte-level BPE (`tokenizer.ggml.model = "gpt2"`: Llama 3, SmolLM2, Qwen) on Hugging Face's
//! `tokenizers` crate: the GGUF vocabulary and merges, the pre-tokenizer regexes llama.cpp uses for
//! this `tokenizer.ggml.pre` (Split, then ByteLevel without its own regex), and no added tokens —
//! special-token text is split off beforehand exactly as llama.cpp does (see `special.rs`).

use rustc_hash::FxHashSet;
use tokenizers::models::bpe::{BPE, Vocab as HfVocab};
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{SplitDelimiterBehavior, Tokenizer as HfTokenizer};

use crate::bpe_count::BpeCounter;
use crate::error::TokenizerError;
use crate::pretok::PreTokenizer;
use crate::vocab::Vocab;

pub(crate) struct Bpe {
    hf: HfTokenizer,
    /// Raw byte → id of its byte-level token, for the (never expected) error fallback.
    byte_tokens: [Option<u32>; 256],
    /// The same tokenization, counted without building ids (see `bpe_count`).
    counter: BpeCounter,
}

/// Splits a GGUF merge line like llama.cpp (`word.find(' ', 1)`): at the first space after the
/// first character. Skipping a whole *char*, not one byte, keeps `"Ġ t"` from splitting inside `Ġ`.
pub fn split_merge(line: &str) -> Option<(&str, &str)> {
    let first = line.chars().next()?;
    let pos = line[first.len_utf8()..].find(' ')? + first.len_utf8();
    Some((&line[..pos], &line[pos + 1..]))
}

/// GPT-2's byte → printable character table used by byte-level vocabularies.
pub fn byte_to_char(b: u8) -> char {
    match b {
        b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF => char::from(b),
        _ => {
            // The 68 remaining bytes map, in order, to U+0100 onwards.
            let rank = (0..b)
                .filter(|x| !matches!(x, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF))
                .count() as u32;
            char::from_u32(256 + rank).unwrap_or(char::REPLACEMENT_CHARACTER)
        }
    }
}

impl Bpe {
    pub fn new(vocab: &Vocab, pre: &PreTokenizer) -> Result<Self, TokenizerError> {
        let hf_vocab: HfVocab = vocab
            .token_to_id()
            .into_iter()
            .map(|(t, i)| (t.to_owned(), i))
            .collect();
        let mut seen = FxHashSet::default();
        let mut merges = Vec::with_capacity(vocab.merges.len());
        let mut joined = String::new();
        for line in &vocab.merges {
            let Some((a, b)) = split_merge(line) else {
                continue;
            };
            joined.clear();
            joined.push_str(a);
            joined.push_str(b);
            // llama.cpp keeps the first rank of a repeated pair; HF would keep the last. A merge whose
            // parts or result are not tokens can only yield unknown symbols: HF rejects it, so drop it.
            let usable = hf_vocab.contains_key(a)
                && hf_vocab.contains_key(b)
                && hf_vocab.contains_key(&joined);
            if usable && seen.insert((a, b)) {
                merges.push((a.to_owned(), b.to_owned()));
            }
        }
        let mut byte_tokens = [None; 256];
        for (b, slot) in byte_tokens.iter_mut().enumerate() {
            *slot = hf_vocab
                .get(byte_to_char(b as u8).to_string().as_str())
                .copied();
        }
        let model = BPE::builder()
            .vocab_and_merges(hf_vocab, merges)
            .ignore_merges(pre.ignore_merges)
            .build()
            .map_err(|e| TokenizerError::Hf(e.to_string()))?;

        let mut steps: Vec<PreTokenizerWrapper> = Vec::with_capacity(pre.regexes.len() + 1);
        for re in &pre.regexes {
            let split = Split::new(
                SplitPattern::Regex((*re).to_owned()),
                SplitDelimiterBehavior::Isolated,
                false,
            )
            .map_err(|e| TokenizerError::Hf(format!("pre-tokenizer regex {re:?}: {e}")))?;
            steps.push(split.into());
        }
        steps.push(ByteLevel::new(false, true, false).into());
        let mut hf = HfTokenizer::new(model);
        hf.with_pre_tokenizer(Some(Sequence::new(steps)));
        let counter = BpeCounter::new(vocab, pre)?;
        Ok(Bpe {
            hf,
            byte_tokens,
            counter,
        })
    }

    /// Token ids of raw text (no special tokens inside).
    pub fn encode_text(&self, text: &str, out: &mut Vec<u32>) -> Result<(), TokenizerError> {
        let enc = self
            .hf
            .encode_fast(text, false)
            .map_err(|e| TokenizerError::Hf(e.to_string()))?;
        out.extend_from_slice(enc.get_ids());
        Ok(())
    }

    /// How many tokens `encode_text` would give.
    pub fn count_text(&self, text: &str) -> Result<usize, TokenizerError> {
        match self.counter.count(text) {
            Some(n) => Ok(n),
            None => {
                let mut out = Vec::new();
                self.encode_text(text, &mut out)?;
                Ok(out.len())
            }
        }
    }

    pub fn push_bytes(&self, bytes: &[u8], out: &mut Vec<u32>) {
        out.extend(bytes.iter().filter_map(|&b| self.byte_tokens[b as usize]));
    }
}
