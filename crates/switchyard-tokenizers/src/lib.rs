//! Exact prompt token counts for local models, so the router can pick the smallest model whose
//! context window fits a prompt.
//!
//! A model's tokenizer is rebuilt from its GGUF header ([`read_gguf`], [`Tokenizer::from_gguf_file`])
//! or from Ollama's verbose `/api/show` ([`Tokenizer::from_ollama_show`]) and gives the ids
//! llama.cpp's `llama_tokenize(add_bos=false, parse_special=true)` gives:
//!
//! - `tokenizer.ggml.model = "gpt2"` (byte-level BPE: Llama 3, SmolLM2, Qwen) via the `tokenizers`
//!   crate, configured per `tokenizer.ggml.pre`;
//! - `tokenizer.ggml.model = "llama"` (SentencePiece BPE: Mistral, Llama 2), hand-written.
//!
//! Other vocabularies are a typed error ([`TokenizerError::UnsupportedModel`]): the caller falls
//! back to `switchyard_core::tokens::HeuristicCounter`. [`Tokenizer`] implements
//! `switchyard_core::tokens::TokenCounter` (count without BOS, `is_exact() == true`).

mod bpe;
mod bpe_count;
mod bpe_merge;
mod count_cache;
mod error;
mod gguf;
mod piece_memo;
mod pretok;
mod scan;
mod show;
mod special;
mod spm;
mod template;
mod tokenizer;
mod vocab;
mod word_set;

pub use bpe::split_merge;
pub use count_cache::{CountCache, DEFAULT_ENTRIES, MIN_CACHED_BYTES};
pub use error::{GgufError, TokenizerError};
pub use gguf::{
    GgufMetadata, GgufValue, MAX_ARRAY_LEN, MAX_KV_COUNT, MAX_STRING_LEN, read_gguf, read_gguf_from,
};
pub use template::template_family_hint;
pub use tokenizer::Tokenizer;
