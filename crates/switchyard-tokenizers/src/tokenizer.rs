//! The public [`Tokenizer`]: built once from a model's GGUF metadata (file header or Ollama's
//! `/api/show` verbose `model_info`), then shared across threads to count prompt tokens exactly as
//! llama.cpp's `llama_tokenize(add_bos=false, parse_special=true)` would.

use std::path::Path;

use switchyard_core::tokens::TokenCounter;

use crate::bpe::Bpe;
use crate::count_cache::CountCache;
use crate::error::TokenizerError;
use crate::gguf::{GgufMetadata, read_gguf};
use crate::special::{Piece, SpecialSplitter};
use crate::spm::Spm;
use crate::vocab::Vocab;
use crate::{pretok, show};

enum Engine {
    /// Byte-level BPE (`gpt2`), special tokens split off by llama.cpp's rules.
    Bpe(Box<Bpe>),
    /// SentencePiece BPE (`llama`).
    Spm(Box<Spm>),
    /// A Hugging Face `tokenizer.json` used as is (its own added-token handling).
    HfJson(Box<tokenizers::Tokenizer>),
}

/// An exact tokenizer for one model vocabulary. `Send + Sync`: build once, share behind an `Arc`.
pub struct Tokenizer {
    engine: Engine,
    specials: SpecialSplitter,
    family: String,
    pre: Option<String>,
    bos: Option<u32>,
    eos: Option<u32>,
    add_bos: bool,
    vocab_size: usize,
    /// Counts already made (see `count_cache`): a resent conversation is counted once.
    counts: CountCache,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("family", &self.family)
            .field("pre", &self.pre)
            .field("vocab_size", &self.vocab_size)
            .field("special_tokens", &self.specials.len())
            .field("bos", &self.bos)
            .field("add_bos", &self.add_bos)
            .field("counts", &self.counts)
            .finish()
    }
}

impl Tokenizer {
    /// Builds the tokenizer described by the `tokenizer.ggml.*` keys.
    pub fn from_gguf_metadata(meta: &GgufMetadata) -> Result<Self, TokenizerError> {
        let vocab = Vocab::from_metadata(meta)?;
        let (engine, default_add_bos) = match vocab.model.as_str() {
            "gpt2" => {
                let pre = pretok::for_pre(vocab.pre.as_deref()).ok_or_else(|| {
                    TokenizerError::UnsupportedPre(vocab.pre.clone().unwrap_or_default())
                })?;
                (
                    Engine::Bpe(Box::new(Bpe::new(&vocab, &pre)?)),
                    pre.default_add_bos,
                )
            }
            "llama" => (Engine::Spm(Box::new(Spm::new(&vocab))), true),
            other => return Err(TokenizerError::UnsupportedModel(other.to_owned())),
        };
        let specials = SpecialSplitter::new(vocab.special_tokens())?;
        Ok(Tokenizer {
            engine,
            specials,
            family: vocab.model.clone(),
            pre: vocab.pre.clone(),
            bos: vocab.bos,
            eos: vocab.eos,
            add_bos: vocab.add_bos.unwrap_or(default_add_bos),
            vocab_size: vocab.tokens.len(),
            counts: CountCache::default(),
        })
    }

    /// Reads the GGUF header at `path` (not its tensors) and builds the tokenizer.
    pub fn from_gguf_file(path: impl AsRef<Path>) -> Result<Self, TokenizerError> {
        Self::from_gguf_metadata(&read_gguf(path)?)
    }

    /// Builds from Ollama's `POST /api/show {"model":…,"verbose":true}` response (or its
    /// `model_info` object alone). A non-verbose response has `null` arrays and is rejected with
    /// [`TokenizerError::NeedsVerbose`].
    pub fn from_ollama_show(show: &serde_json::Value) -> Result<Self, TokenizerError> {
        Self::from_gguf_metadata(&show::metadata_from_show(show)?)
    }

    /// Loads a Hugging Face `tokenizer.json` and uses it unchanged (no BOS in counts). Its special
    /// tokens follow HF's rules, which agree with llama.cpp except for overlapping special texts.
    pub fn from_tokenizer_json(path: impl AsRef<Path>) -> Result<Self, TokenizerError> {
        let hf = tokenizers::Tokenizer::from_file(path)
            .map_err(|e| TokenizerError::Hf(e.to_string()))?;
        // A post-processor that adds BOS shows up when encoding nothing with special tokens.
        let bos = hf
            .encode_fast("", true)
            .ok()
            .and_then(|e| e.get_ids().first().copied());
        Ok(Tokenizer {
            vocab_size: hf.get_vocab_size(true),
            engine: Engine::HfJson(Box::new(hf)),
            specials: SpecialSplitter::new(std::iter::empty())?,
            family: "tokenizer.json".to_owned(),
            pre: None,
            bos,
            eos: None,
            add_bos: bos.is_some(),
            counts: CountCache::default(),
        })
    }

    /// Token ids of `text`, without BOS, special-token text parsed (llama.cpp `parse_special=true`).
    pub fn encode(&self, text: &str) -> Vec<u32> {
        self.try_encode(text)
            .unwrap_or_else(|_| self.encode_bytes(text))
    }

    /// Like [`Tokenizer::encode`] but reporting the (never observed) internal library errors that
    /// `encode` papers over with one byte token per byte, a safe over-count.
    pub fn try_encode(&self, text: &str) -> Result<Vec<u32>, TokenizerError> {
        let mut out = Vec::with_capacity(text.len() / 3 + 4);
        match &self.engine {
            Engine::HfJson(hf) => {
                let enc = hf
                    .encode_fast(text, false)
                    .map_err(|e| TokenizerError::Hf(e.to_string()))?;
                out.extend_from_slice(enc.get_ids());
            }
            Engine::Bpe(bpe) => {
                let mut pieces = Vec::new();
                self.specials.split(text, &mut pieces);
                for piece in pieces {
                    match piece {
                        Piece::Text(t) => bpe.encode_text(t, &mut out)?,
                        Piece::Special(id) => out.push(id),
                    }
                }
            }
            Engine::Spm(spm) => {
                let mut pieces = Vec::new();
                self.specials.split(text, &mut pieces);
                spm.encode_pieces(&pieces, &mut out);
            }
        }
        Ok(out)
    }

    /// `encode(text).len()`, without building the ids where the engine can count directly.
    pub fn count_tokens(&self, text: &str) -> usize {
        match &self.engine {
            Engine::Bpe(bpe) => {
                let mut pieces = Vec::new();
                self.specials.split(text, &mut pieces);
                let mut n = 0;
                for piece in pieces {
                    match piece {
                        Piece::Text(t) => match bpe.count_text(t) {
                            Ok(c) => n += c,
                            Err(_) => return self.encode_bytes(text).len(),
                        },
                        Piece::Special(_) => n += 1,
                    }
                }
                n
            }
            _ => self.encode(text).len(),
        }
    }

    fn encode_bytes(&self, text: &str) -> Vec<u32> {
        let mut out = Vec::with_capacity(text.len());
        match &self.engine {
            Engine::Bpe(bpe) => bpe.push_bytes(text.as_bytes(), &mut out),
            Engine::Spm(spm) => spm.push_bytes(text.as_bytes(), &mut out),
            Engine::HfJson(_) => {}
        }
        if out.len() < text.len() {
            // No byte tokens to show: keep the count an over-estimate all the same.
            out.resize(text.len(), self.eos.unwrap_or(0));
        }
        out
    }

    /// `tokenizer.ggml.model`: `"gpt2"` or `"llama"` (`"tokenizer.json"` for HF files).
    pub fn family(&self) -> &str {
        &self.family
    }

    /// `tokenizer.ggml.pre` (BPE pre-tokenizer name), when the metadata has one.
    pub fn pre(&self) -> Option<&str> {
        self.pre.as_deref()
    }

    /// The BOS token id, if the vocabulary has one.
    pub fn bos_token(&self) -> Option<u32> {
        self.bos
    }

    /// The EOS token id, if the vocabulary has one.
    pub fn eos_token(&self) -> Option<u32> {
        self.eos
    }

    /// Whether llama.cpp prepends BOS to a prompt for this vocabulary (`add_bos_token` or its default).
    pub fn add_bos(&self) -> bool {
        self.add_bos && self.bos.is_some()
    }

    /// Number of tokens in the vocabulary.
    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    /// Number of special tokens matched verbatim in text.
    pub fn special_token_count(&self) -> usize {
        self.specials.len()
    }
}

impl TokenCounter for Tokenizer {
    fn count(&self, text: &str) -> u32 {
        self.counts.get_or_count(text, || {
            u32::try_from(self.count_tokens(text)).unwrap_or(u32::MAX)
        })
    }

    fn is_exact(&self) -> bool {
        true
    }
}
