//! Self-contained checks that need no reference data: the GGUF reader on files written here,
//! malformed input, SentencePiece merge order on toy vocabularies, special-token splitting and
//! merge-line parsing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use switchyard_core::tokens::TokenCounter;
use switchyard_tokenizers::{
    GgufError, GgufMetadata, GgufValue, Tokenizer, TokenizerError, read_gguf, read_gguf_from,
    split_merge, template_family_hint,
};

/// Writes a GGUF v3 header with the given key/values (no tensors).
fn gguf_bytes(kv: &[(&str, GgufValue)]) -> Vec<u8> {
    let mut b = b"GGUF".to_vec();
    b.extend(3u32.to_le_bytes());
    b.extend(0u64.to_le_bytes());
    b.extend((kv.len() as u64).to_le_bytes());
    for (k, v) in kv {
        put_str(&mut b, k);
        b.extend(type_of(v).to_le_bytes());
        put_value(&mut b, v);
    }
    b
}

fn put_str(b: &mut Vec<u8>, s: &str) {
    b.extend((s.len() as u64).to_le_bytes());
    b.extend(s.as_bytes());
}

fn type_of(v: &GgufValue) -> u32 {
    match v {
        GgufValue::U8(_) => 0,
        GgufValue::I8(_) => 1,
        GgufValue::U16(_) => 2,
        GgufValue::I16(_) => 3,
        GgufValue::U32(_) => 4,
        GgufValue::I32(_) => 5,
        GgufValue::F32(_) => 6,
        GgufValue::Bool(_) => 7,
        GgufValue::String(_) => 8,
        GgufValue::Array(_) => 9,
        GgufValue::U64(_) => 10,
        GgufValue::I64(_) => 11,
        GgufValue::F64(_) => 12,
    }
}

fn put_value(b: &mut Vec<u8>, v: &GgufValue) {
    match v {
        GgufValue::U8(x) => b.extend(x.to_le_bytes()),
        GgufValue::I8(x) => b.extend(x.to_le_bytes()),
        GgufValue::U16(x) => b.extend(x.to_le_bytes()),
        GgufValue::I16(x) => b.extend(x.to_le_bytes()),
        GgufValue::U32(x) => b.extend(x.to_le_bytes()),
        GgufValue::I32(x) => b.extend(x.to_le_bytes()),
        GgufValue::F32(x) => b.extend(x.to_le_bytes()),
        GgufValue::Bool(x) => b.push(u8::from(*x)),
        GgufValue::String(s) => put_str(b, s),
        GgufValue::Array(items) => {
            let elem = items.first().map_or(4, type_of);
            b.extend(elem.to_le_bytes());
            b.extend((items.len() as u64).to_le_bytes());
            for item in items {
                put_value(b, item);
            }
        }
        GgufValue::U64(x) => b.extend(x.to_le_bytes()),
        GgufValue::I64(x) => b.extend(x.to_le_bytes()),
        GgufValue::F64(x) => b.extend(x.to_le_bytes()),
    }
}

fn strs(items: &[&str]) -> GgufValue {
    GgufValue::Array(
        items
            .iter()
            .map(|s| GgufValue::String((*s).into()))
            .collect(),
    )
}

fn meta(kv: Vec<(&str, GgufValue)>) -> GgufMetadata {
    GgufMetadata {
        version: 3,
        tensor_count: 0,
        kv: kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
    }
}

#[test]
fn reads_every_value_type_from_a_file() {
    let kv = vec![
        ("general.architecture", GgufValue::String("llama".into())),
        ("a.u8", GgufValue::U8(7)),
        ("a.i8", GgufValue::I8(-7)),
        ("a.u16", GgufValue::U16(700)),
        ("a.i16", GgufValue::I16(-700)),
        ("a.u32", GgufValue::U32(70_000)),
        ("a.i32", GgufValue::I32(-70_000)),
        ("a.f32", GgufValue::F32(1.5)),
        ("a.bool", GgufValue::Bool(true)),
        ("a.u64", GgufValue::U64(1 << 40)),
        ("a.i64", GgufValue::I64(-(1 << 40))),
        ("a.f64", GgufValue::F64(-2.25)),
        ("a.strs", strs(&["Ġt", "", "▁x"])),
        (
            "a.nested",
            GgufValue::Array(vec![GgufValue::Array(vec![
                GgufValue::I32(1),
                GgufValue::I32(2),
            ])]),
        ),
    ];
    let mut bytes = gguf_bytes(&kv);
    bytes.extend([0xAB; 64]); // tensor infos / data that must never be read as KVs
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.gguf");
    std::fs::write(&path, &bytes).unwrap();
    let m = read_gguf(&path).unwrap();
    assert_eq!(m.version, 3);
    assert_eq!(m.kv.len(), kv.len());
    for (k, v) in &kv {
        assert_eq!(m.get(k), Some(v), "{k}");
    }
    assert_eq!(m.get_str("general.architecture"), Some("llama"));
    assert_eq!(m.get("a.i16").unwrap().as_i64(), Some(-700));
    assert_eq!(m.get("a.u32").unwrap().as_f64(), Some(70_000.0));
}

#[test]
fn malformed_headers_are_errors_not_panics() {
    let good = gguf_bytes(&[("tokenizer.ggml.tokens", strs(&["a", "b", "c"]))]);
    // Every truncation of a valid header fails cleanly.
    for cut in 0..good.len() {
        assert!(read_gguf_from(&good[..cut]).is_err(), "cut at {cut}");
    }
    assert!(matches!(
        read_gguf_from(&b"GGML\x03\0\0\0"[..]),
        Err(GgufError::BadMagic(_))
    ));
    let mut v1 = good.clone();
    v1[4] = 1;
    assert!(matches!(
        read_gguf_from(&v1[..]),
        Err(GgufError::UnsupportedVersion(1))
    ));

    // Absurd lengths are rejected before allocating.
    let mut huge_kv = good.clone();
    huge_kv[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(matches!(
        read_gguf_from(&huge_kv[..]),
        Err(GgufError::TooLarge { .. })
    ));
    let mut huge_str = good.clone();
    huge_str[24..32].copy_from_slice(&(1u64 << 62).to_le_bytes());
    assert!(matches!(
        read_gguf_from(&huge_str[..]),
        Err(GgufError::TooLarge { .. })
    ));
    let key_len = "tokenizer.ggml.tokens".len();
    let count_at = 24 + 8 + key_len + 4 + 4;
    let mut huge_arr = good.clone();
    huge_arr[count_at..count_at + 8].copy_from_slice(&(u64::MAX / 2).to_le_bytes());
    assert!(matches!(
        read_gguf_from(&huge_arr[..]),
        Err(GgufError::TooLarge { .. })
    ));
    // A plausible count with missing data: EOF, not a big allocation.
    let mut short_arr = good.clone();
    short_arr[count_at..count_at + 8].copy_from_slice(&1_000_000u64.to_le_bytes());
    assert!(matches!(
        read_gguf_from(&short_arr[..]),
        Err(GgufError::Io(_))
    ));
    let mut bad_type = good.clone();
    bad_type[24 + 8 + key_len] = 99;
    assert!(matches!(
        read_gguf_from(&bad_type[..]),
        Err(GgufError::UnknownType(99))
    ));

    // Deeply nested arrays stop at the depth limit.
    let mut deep = b"GGUF".to_vec();
    deep.extend(3u32.to_le_bytes());
    deep.extend(0u64.to_le_bytes());
    deep.extend(1u64.to_le_bytes());
    put_str(&mut deep, "k");
    deep.extend(9u32.to_le_bytes());
    for _ in 0..64 {
        deep.extend(9u32.to_le_bytes());
        deep.extend(1u64.to_le_bytes());
    }
    assert!(matches!(
        read_gguf_from(&deep[..]),
        Err(GgufError::TooDeep(_))
    ));

    // Pseudo-random garbage after a valid magic never panics.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..2000 {
        let mut buf = b"GGUF\x03\0\0\0".to_vec();
        for _ in 0..64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            buf.push((x % 13) as u8);
        }
        let _ = read_gguf_from(&buf[..]);
    }
}

/// A toy SentencePiece vocabulary: control/unknown specials, bytes, pieces with scores.
fn toy_spm(pieces: &[(&str, f32)]) -> Tokenizer {
    let mut tokens = vec![
        "<unk>".to_owned(),
        "<s>".into(),
        "</s>".into(),
        "[INST]".into(),
    ];
    let mut types = vec![2, 3, 3, 3];
    for b in 0..=255u8 {
        tokens.push(format!("<0x{b:02X}>"));
        types.push(6);
    }
    let mut scores = vec![0.0f32; tokens.len()];
    for (p, s) in pieces {
        tokens.push((*p).into());
        types.push(1);
        scores.push(*s);
    }
    let m = meta(vec![
        ("tokenizer.ggml.model", GgufValue::String("llama".into())),
        (
            "tokenizer.ggml.tokens",
            GgufValue::Array(tokens.into_iter().map(GgufValue::String).collect()),
        ),
        (
            "tokenizer.ggml.token_type",
            GgufValue::Array(types.into_iter().map(GgufValue::I32).collect()),
        ),
        (
            "tokenizer.ggml.scores",
            GgufValue::Array(scores.into_iter().map(GgufValue::F32).collect()),
        ),
    ]);
    Tokenizer::from_gguf_metadata(&m).unwrap()
}

fn id_of(base: &[(&str, f32)], piece: &str) -> u32 {
    260 + base.iter().position(|(p, _)| *p == piece).unwrap() as u32
}

#[test]
fn spm_merges_highest_score_first() {
    // "abc": "ab" (-1) would win over "bc" (-2), but "bc" scores higher here, so a+bc.
    let v = [
        ("▁", -9.0),
        ("a", -5.0),
        ("b", -5.0),
        ("c", -5.0),
        ("ab", -2.0),
        ("bc", -1.0),
        ("▁a", -3.0),
    ];
    let t = toy_spm(&v);
    // ▁,a,b,c: best bigram is "bc" (-1), then "▁a" (-3); "abc" is no token.
    assert_eq!(t.encode("abc"), vec![id_of(&v, "▁a"), id_of(&v, "bc")]);
}

#[test]
fn spm_ties_go_to_the_leftmost_pair() {
    let v = [("▁", -9.0), ("a", -5.0), ("aa", -1.0)];
    let t = toy_spm(&v);
    // ▁aaa: "aa" at positions 1 and 2 tie; the leftmost merges, leaving the last "a".
    assert_eq!(
        t.encode("aaa"),
        vec![id_of(&v, "▁"), id_of(&v, "aa"), id_of(&v, "a")]
    );
}

#[test]
fn spm_space_prefix_specials_and_byte_fallback() {
    let v = [
        ("▁", -9.0),
        ("h", -5.0),
        ("i", -5.0),
        ("▁h", -2.0),
        ("▁hi", -1.0),
    ];
    let t = toy_spm(&v);
    assert!(t.add_bos());
    assert_eq!(t.bos_token(), Some(1));
    assert_eq!(t.family(), "llama");
    // Space prefix at the start and after a special token, not after text.
    assert_eq!(
        t.encode("hi[INST]hi"),
        vec![id_of(&v, "▁hi"), 3, id_of(&v, "▁hi")]
    );
    // Unknown characters fall back to UTF-8 byte tokens (<0xXX> = 4 + byte).
    assert_eq!(t.encode("hé"), vec![id_of(&v, "▁h"), 4 + 0xC3, 4 + 0xA9]);
    // <unk> text is matched as the unknown token, like llama.cpp with parse_special.
    assert_eq!(t.encode("<unk>"), vec![0]);
    assert_eq!(t.encode(""), Vec::<u32>::new());
    assert_eq!(t.count("hi hi"), 2);
    assert!(t.is_exact());
}

#[test]
fn merge_lines_split_after_the_first_char() {
    assert_eq!(split_merge("Ġ t"), Some(("Ġ", "t")));
    assert_eq!(split_merge("Ġt he"), Some(("Ġt", "he")));
    assert_eq!(split_merge("▁ ▁"), Some(("▁", "▁")));
    assert_eq!(split_merge("é ġ"), Some(("é", "ġ")));
    assert_eq!(
        split_merge("  a"),
        Some((" ", "a")),
        "a leading space is the first char"
    );
    assert_eq!(split_merge("ab"), None);
    assert_eq!(split_merge(""), None);
}

/// A toy byte-level BPE vocabulary: the 256 byte characters, a few merges and one control token.
fn toy_bpe(pre: &str) -> Tokenizer {
    let mut tokens: Vec<String> = (0..=255u8).map(|b| byte_char(b).to_string()).collect();
    let merges = ["Ġ t", "h e", "Ġt he", "Ġ Ġ"];
    for m in merges {
        tokens.push(m.replace(' ', ""));
    }
    tokens.push("<|im_start|>".into());
    let mut types = vec![1; tokens.len()];
    *types.last_mut().unwrap() = 3;
    let m = meta(vec![
        ("tokenizer.ggml.model", GgufValue::String("gpt2".into())),
        ("tokenizer.ggml.pre", GgufValue::String(pre.into())),
        (
            "tokenizer.ggml.tokens",
            GgufValue::Array(tokens.into_iter().map(GgufValue::String).collect()),
        ),
        (
            "tokenizer.ggml.token_type",
            GgufValue::Array(types.into_iter().map(GgufValue::I32).collect()),
        ),
        ("tokenizer.ggml.merges", strs(&merges)),
        ("tokenizer.ggml.bos_token_id", GgufValue::U32(260)),
        (
            "tokenizer.chat_template",
            GgufValue::String("{{ '<|im_start|>' }}".into()),
        ),
    ]);
    assert_eq!(template_family_hint(&m), Some("chatml"));
    Tokenizer::from_gguf_metadata(&m).unwrap()
}

/// GPT-2's byte → char table, written out independently of the crate's.
fn byte_char(b: u8) -> char {
    let printable = |x: u8| (b'!'..=b'~').contains(&x) || (0xA1..=0xAC).contains(&x) || x >= 0xAE;
    if printable(b) {
        char::from(b)
    } else {
        let n = (0..b).filter(|&x| !printable(x)).count() as u32;
        char::from_u32(256 + n).unwrap()
    }
}

#[test]
fn byte_level_bpe_merges_and_specials() {
    let t = toy_bpe("gpt-2");
    assert_eq!((t.family(), t.pre()), ("gpt2", Some("gpt-2")));
    assert!(!t.add_bos(), "gpt-2 does not add BOS by default");
    // " the" → Ġt + he → Ġthe (258); "x" stays a byte token (byte tokens have id = byte here).
    assert_eq!(t.encode(" thex"), vec![258, u32::from(b'x')]);
    assert_eq!(t.encode("<|im_start|> the"), vec![260, 258]);
    assert_eq!(
        t.encode("a<|im_start"),
        "a<|im_start".bytes().map(u32::from).collect::<Vec<_>>()
    );
    assert!(
        toy_bpe("llama-bpe").add_bos(),
        "llama3-like pre-tokenizers add BOS by default"
    );
}

#[test]
fn unsupported_vocabularies_are_typed_errors() {
    let m = meta(vec![
        ("tokenizer.ggml.model", GgufValue::String("t5".into())),
        ("tokenizer.ggml.tokens", strs(&["a"])),
    ]);
    assert!(matches!(
        Tokenizer::from_gguf_metadata(&m),
        Err(TokenizerError::UnsupportedModel(_))
    ));
    let m = meta(vec![
        ("tokenizer.ggml.model", GgufValue::String("gpt2".into())),
        (
            "tokenizer.ggml.pre",
            GgufValue::String("no-such-pre".into()),
        ),
        ("tokenizer.ggml.tokens", strs(&["a"])),
    ]);
    assert!(matches!(
        Tokenizer::from_gguf_metadata(&m),
        Err(TokenizerError::UnsupportedPre(_))
    ));
    let m = meta(vec![(
        "tokenizer.ggml.model",
        GgufValue::String("llama".into()),
    )]);
    assert!(matches!(
        Tokenizer::from_gguf_metadata(&m),
        Err(TokenizerError::MissingKey(_))
    ));
    let m = meta(vec![
        ("tokenizer.ggml.model", GgufValue::String("llama".into())),
        ("tokenizer.ggml.tokens", GgufValue::U32(3)),
    ]);
    assert!(matches!(
        Tokenizer::from_gguf_metadata(&m),
        Err(TokenizerError::WrongType { .. })
    ));
}

#[test]
fn ollama_show_needs_verbose() {
    let show = serde_json::json!({"model_info": {
        "general.architecture": "llama",
        "tokenizer.ggml.model": "gpt2",
        "tokenizer.ggml.pre": "llama-bpe",
        "tokenizer.ggml.tokens": null,
        "tokenizer.ggml.merges": null,
    }});
    let err = Tokenizer::from_ollama_show(&show).unwrap_err();
    assert!(matches!(err, TokenizerError::NeedsVerbose(_)), "{err}");
    assert!(err.to_string().contains("verbose"));
}

#[test]
fn tokenizer_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Tokenizer>();
    let t = std::sync::Arc::new(toy_spm(&[("▁", -9.0), ("a", -5.0)]));
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let t = t.clone();
            std::thread::spawn(move || t.count("a a a"))
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), 6);
    }
}
