//! Typed errors: reading GGUF headers and building tokenizers can fail on user-supplied files and
//! upstream JSON, and the router needs to tell "unsupported, use the heuristic" from "broken file".

use thiserror::Error;

/// Failure to read a GGUF header.
#[derive(Debug, Error)]
pub enum GgufError {
    #[error("I/O error reading GGUF: {0}")]
    Io(#[from] std::io::Error),
    #[error("not a GGUF file (magic {0:02x?})")]
    BadMagic([u8; 4]),
    #[error("unsupported GGUF version {0} (only v2 and v3 are read)")]
    UnsupportedVersion(u32),
    #[error("GGUF {what} of {len} exceeds the limit of {max}")]
    TooLarge {
        what: &'static str,
        len: u64,
        max: u64,
    },
    #[error("unknown GGUF value type {0}")]
    UnknownType(u32),
    #[error("GGUF arrays nested deeper than {0} levels")]
    TooDeep(usize),
}

/// Failure to build a [`crate::Tokenizer`].
#[derive(Debug, Error)]
pub enum TokenizerError {
    #[error(transparent)]
    Gguf(#[from] GgufError),
    #[error("metadata key `{0}` is missing")]
    MissingKey(String),
    #[error("metadata key `{key}` has the wrong type (expected {expected})")]
    WrongType { key: String, expected: &'static str },
    #[error(
        "Ollama /api/show returned `{0}` as null: it needs verbose (request {{\"model\":…,\"verbose\":true}})"
    )]
    NeedsVerbose(String),
    #[error(
        "tokenizer model `{0}` is not supported (only gpt2 byte-level BPE and llama SentencePiece)"
    )]
    UnsupportedModel(String),
    #[error("BPE pre-tokenizer `{0}` is not supported")]
    UnsupportedPre(String),
    #[error("invalid tokenizer metadata: {0}")]
    Invalid(String),
    #[error("tokenizers library error: {0}")]
    Hf(String),
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}
