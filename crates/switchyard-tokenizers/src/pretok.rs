//! Pre-tokenizer settings per `tokenizer.ggml.pre`, as llama.cpp's `llm_tokenizer_bpe` chooses them:
//! the regexes applied in sequence (each splits the pieces of the previous one, unmatched text kept
//! as its own piece), and whether whole words found in the vocabulary skip the merges.

/// The GPT-2 word regex, in the form llama.cpp recognises (it behaves as if `|\s+` were appended).
pub(crate) const GPT2: &str =
    r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)";
/// Llama 3's regex with `(?i:…)` spelled out as llama.cpp does, so `ſ` or `K` don't match `s`/`k`.
pub(crate) const LLAMA3: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Qwen2: like Llama 3 but one digit per piece.
pub(crate) const QWEN2: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// Each number char a piece of its own (SmolLM2, StarCoder, ...).
pub(crate) const EACH_NUMBER: &str = r"\p{N}";

/// Qwen 3.5: Qwen2 with combining marks (`\p{M}`) kept inside words.
const QWEN35: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// How a byte-level BPE vocabulary splits text before merging.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PreTokenizer {
    pub regexes: Vec<&'static str>,
    /// Words that are whole vocabulary entries are emitted without merging (llama.cpp `ignore_merges`).
    pub ignore_merges: bool,
    /// llama.cpp's default for `add_bos_token` when the key is absent.
    pub default_add_bos: bool,
}

/// The settings for a `tokenizer.ggml.pre` value, or `None` when llama.cpp would not know it either.
/// A missing `pre` means llama.cpp's "default".
pub(crate) fn for_pre(pre: Option<&str>) -> Option<PreTokenizer> {
    let p = |regexes: Vec<&'static str>, ignore_merges: bool, default_add_bos: bool| {
        Some(PreTokenizer {
            regexes,
            ignore_merges,
            default_add_bos,
        })
    };
    match pre.unwrap_or("default") {
        "default" => p(
            vec![r"[\p{P}\$\+<=>\^~\|]+", GPT2, r"\p{N}+", "[0-9][0-9][0-9]"],
            false,
            false,
        ),
        "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "falcon-h1" | "pixtral" | "midm-2.0"
        | "lfm2" | "jina-v5-nano" => p(vec![LLAMA3], true, true),
        "dbrx" | "smaug-bpe" | "chatglm-bpe" => p(vec![LLAMA3], false, false),
        "glm4" | "glm5" => p(vec![LLAMA3], true, false),
        "qwen35" => p(vec![QWEN35], false, false),
        "falcon" => p(
            vec![r"[\p{P}\$\+<=>\^~\|`]+", GPT2, "[0-9][0-9][0-9]"],
            false,
            false,
        ),
        "smollm" | "starcoder" | "refact" | "command-r" | "codeshell" | "exaone" | "minerva-7b"
        | "mellum2" => p(vec![EACH_NUMBER, GPT2], false, false),
        "gpt-2" | "phi-2" | "jina-es" | "jina-de" | "gigachat" | "jina-v2-es" | "jina-v2-de"
        | "a.x-4.0" | "mellum" | "modern-bert" | "mpt" | "olmo" | "exaone4" | "jais"
        | "jina-v1-en" | "jina-v2-code" | "roberta-bpe" => p(vec![GPT2], false, false),
        "qwen2" | "deepseek-r1-qwen" | "kormo" | "f2llmv2" | "megrez" | "stablelm2" => {
            p(vec![QWEN2], false, false)
        }
        _ => None,
    }
}
