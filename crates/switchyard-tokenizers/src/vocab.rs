//! The `tokenizer.ggml.*` keys pulled out of GGUF metadata into plain vectors, with llama.cpp's
//! defaults and its rules for which tokens count as "special" (matched verbatim in prompt text).
//! Both tokenizer engines are built from this one struct.

use rustc_hash::FxHashMap;

use crate::error::TokenizerError;
use crate::gguf::{GgufMetadata, GgufValue};
use crate::special::SpecialToken;

/// llama.cpp token types (`tokenizer.ggml.token_type`).
pub(crate) const TYPE_NORMAL: i32 = 1;
const TYPE_UNKNOWN: i32 = 2;
const TYPE_CONTROL: i32 = 3;
const TYPE_USER_DEFINED: i32 = 4;

/// Texts llama.cpp always promotes to control tokens (end-of-generation markers, EOT/EOM included).
const EOG_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<|return|>",
    "<|call|>",
    "<|flush|>",
    "<|calls|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "</s>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "[EOS]",
    "<|end_of_text|>",
    "<end_of_utterance>",
    "<eos>",
    "<turn|>",
    "<|tool_response>",
    "<｜end▁of▁sentence｜>",
    "[e~[",
];
/// Fill-in-the-middle texts promoted when the matching `tokenizer.ggml.fim_*_token_id` key is absent.
const FIM_TEXTS: &[(&str, &[&str])] = &[
    (
        "fim_pre",
        &[
            "<|fim_prefix|>",
            "<fim-prefix>",
            "<fim_prefix>",
            "<｜fim▁begin｜>",
            "<PRE>",
            "▁<PRE>",
            "<|code_prefix|>",
            "<|prefix|>",
        ],
    ),
    (
        "fim_suf",
        &[
            "<|fim_suffix|>",
            "<fim-suffix>",
            "<fim_suffix>",
            "<｜fim▁hole｜>",
            "<SUF>",
            "▁<SUF>",
            "<|code_suffix|>",
            "<|suffix|>",
        ],
    ),
    (
        "fim_mid",
        &[
            "<|fim_middle|>",
            "<fim-middle>",
            "<fim_middle>",
            "<｜fim▁end｜>",
            "<MID>",
            "▁<MID>",
            "<|code_middle|>",
            "<|middle|>",
        ],
    ),
    (
        "fim_pad",
        &["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"],
    ),
    (
        "fim_rep",
        &[
            "<|fim_repo|>",
            "<|repo_name|>",
            "<fim-repo>",
            "<REPO>",
            "<reponame>",
        ],
    ),
    ("fim_sep", &["<|file_sep|>"]),
];
/// gpt-oss tokens llama.cpp forces to USER_DEFINED (still matched verbatim).
const FORCED_USER_DEFINED: &[&str] = &["<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"];

/// Tokenizer data from GGUF metadata.
pub(crate) struct Vocab {
    pub model: String,
    pub pre: Option<String>,
    pub tokens: Vec<String>,
    pub types: Vec<i32>,
    pub scores: Vec<f32>,
    pub merges: Vec<String>,
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    pub unk: Option<u32>,
    pub add_bos: Option<bool>,
    pub add_space_prefix: Option<bool>,
    fim_keys: Vec<&'static str>,
    /// llama.cpp gives Phi-3 special tokens the RSTRIP attribute (by `general.name`).
    phi3: bool,
}

impl Vocab {
    pub fn from_metadata(meta: &GgufMetadata) -> Result<Self, TokenizerError> {
        let model = meta
            .get_str("tokenizer.ggml.model")
            .ok_or_else(|| missing_or_wrong(meta, "tokenizer.ggml.model", "string"))?
            .to_owned();
        let pre = meta.get_str("tokenizer.ggml.pre").map(str::to_owned);
        let tokens = array(meta, "tokenizer.ggml.tokens", "string array", |v| {
            v.as_str().map(str::to_owned)
        })?
        .ok_or_else(|| TokenizerError::MissingKey("tokenizer.ggml.tokens".into()))?;
        let n = tokens.len();
        // llama.cpp renames empty tokens so that they can never match.
        let tokens: Vec<String> = tokens
            .into_iter()
            .enumerate()
            .map(|(i, t)| {
                if t.is_empty() {
                    format!("[EMPTY_{i}]")
                } else {
                    t
                }
            })
            .collect();
        let types = array(meta, "tokenizer.ggml.token_type", "int array", |v| {
            v.as_i64().and_then(|x| i32::try_from(x).ok())
        })?
        .unwrap_or_else(|| vec![TYPE_NORMAL; n]);
        let scores = array(meta, "tokenizer.ggml.scores", "float array", |v| {
            v.as_f64().map(|x| x as f32)
        })?
        .unwrap_or_else(|| vec![0.0; n]);
        if types.len() < n || scores.len() < n {
            return Err(TokenizerError::Invalid(format!(
                "{n} tokens but {} token types and {} scores",
                types.len(),
                scores.len()
            )));
        }
        let merges = array(meta, "tokenizer.ggml.merges", "string array", |v| {
            v.as_str().map(str::to_owned)
        })?
        .unwrap_or_default();
        let fim_keys = FIM_TEXTS
            .iter()
            .map(|(k, _)| *k)
            .filter(|k| meta.get(&format!("tokenizer.ggml.{k}_token_id")).is_some())
            .collect();
        let spm = model == "llama";
        let name = meta
            .get_str("general.name")
            .unwrap_or_default()
            .to_ascii_lowercase();
        Ok(Vocab {
            phi3: name.contains("phi-3") || name.contains("phi3"),
            bos: id(meta, "tokenizer.ggml.bos_token_id", n)?.or(default_id(spm, 1, 11, n)),
            eos: id(meta, "tokenizer.ggml.eos_token_id", n)?.or(default_id(spm, 2, 11, n)),
            unk: id(meta, "tokenizer.ggml.unknown_token_id", n)?.or(default_id(
                spm,
                0,
                u32::MAX,
                n,
            )),
            add_bos: flag(meta, "tokenizer.ggml.add_bos_token")?,
            add_space_prefix: flag(meta, "tokenizer.ggml.add_space_prefix")?,
            model,
            pre,
            tokens,
            types,
            scores,
            merges,
            fim_keys,
        })
    }

    /// Text → id as llama.cpp's `token_to_id` (a later duplicate wins).
    pub fn token_to_id(&self) -> FxHashMap<&str, u32> {
        let mut map = FxHashMap::with_capacity_and_hasher(self.tokens.len(), Default::default());
        for (i, t) in self.tokens.iter().enumerate() {
            map.insert(t.as_str(), i as u32);
        }
        map
    }

    /// The tokens llama.cpp matches verbatim in text with `parse_special=true`, with their
    /// whitespace-stripping flags.
    pub fn special_tokens(&self) -> Vec<SpecialToken<'_>> {
        let by_text = self.token_to_id();
        let id_of = |t: &str| by_text.get(t).copied();
        let no_rstrip: Vec<Option<u32>> = ["<unk>", "<s>", "<|endoftext|>"]
            .into_iter()
            .map(id_of)
            .collect();
        let eos_text = id_of("</s>");
        self.special_ids()
            .into_iter()
            .filter_map(|id| {
                let text = self.tokens.get(id as usize)?;
                let rstrip = self.phi3 && !no_rstrip.contains(&Some(id));
                Some(SpecialToken {
                    id,
                    text,
                    lstrip: false,
                    rstrip: rstrip || (self.phi3 && eos_text == Some(id)),
                })
            })
            .collect()
    }

    /// Ids of the tokens llama.cpp matches verbatim in text with `parse_special=true`: CONTROL,
    /// USER_DEFINED and UNKNOWN types, plus the texts llama.cpp promotes by name.
    fn special_ids(&self) -> Vec<u32> {
        let mut special: Vec<bool> = self
            .types
            .iter()
            .take(self.tokens.len())
            .map(|t| matches!(*t, TYPE_UNKNOWN | TYPE_CONTROL | TYPE_USER_DEFINED))
            .collect();
        let by_text = self.token_to_id();
        let promoted = EOG_TEXTS.iter().chain(FORCED_USER_DEFINED).chain(
            FIM_TEXTS
                .iter()
                .filter(|(k, _)| !self.fim_keys.contains(k))
                .flat_map(|(_, texts)| texts.iter()),
        );
        for text in promoted {
            if let Some(&i) = by_text.get(text)
                && let Some(s) = special.get_mut(i as usize)
            {
                *s = true;
            }
        }
        (0..special.len() as u32)
            .filter(|&i| special[i as usize])
            .collect()
    }
}

fn default_id(spm: bool, spm_id: u32, bpe_id: u32, n: usize) -> Option<u32> {
    let id = if spm { spm_id } else { bpe_id };
    ((id as usize) < n).then_some(id)
}

fn missing_or_wrong(meta: &GgufMetadata, key: &str, expected: &'static str) -> TokenizerError {
    if meta.get(key).is_some() {
        TokenizerError::WrongType {
            key: key.into(),
            expected,
        }
    } else {
        TokenizerError::MissingKey(key.into())
    }
}

fn array<T>(
    meta: &GgufMetadata,
    key: &str,
    expected: &'static str,
    conv: impl Fn(&GgufValue) -> Option<T>,
) -> Result<Option<Vec<T>>, TokenizerError> {
    let Some(value) = meta.get(key) else {
        return Ok(None);
    };
    let wrong = || TokenizerError::WrongType {
        key: key.into(),
        expected,
    };
    let items = value.as_array().ok_or_else(wrong)?;
    items
        .iter()
        .map(|v| conv(v).ok_or_else(wrong))
        .collect::<Result<Vec<T>, _>>()
        .map(Some)
}

/// A special-token id; like llama.cpp, an out-of-range id is ignored.
fn id(meta: &GgufMetadata, key: &str, n: usize) -> Result<Option<u32>, TokenizerError> {
    match meta.get(key) {
        None => Ok(None),
        Some(v) => {
            let id = v.as_i64().ok_or_else(|| TokenizerError::WrongType {
                key: key.into(),
                expected: "integer",
            })?;
            Ok(u32::try_from(id).ok().filter(|&i| (i as usize) < n))
        }
    }
}

fn flag(meta: &GgufMetadata, key: &str) -> Result<Option<bool>, TokenizerError> {
    match meta.get(key) {
        None => Ok(None),
        Some(v) => v
            .as_bool()
            .map(Some)
            .ok_or_else(|| TokenizerError::WrongType {
                key: key.into(),
                expected: "bool",
            }),
    }
}
