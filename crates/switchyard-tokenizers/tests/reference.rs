//! Checks every tokenizer family against reference ids computed by llama.cpp (see
//! `scripts/tokenizers/make_reference.py`): 100% identical ids on every corpus string are required.
//!
//! The data lives in `$SWITCHYARD_TOKENIZER_REF` (default `<repo>/.cache/tokenizer-ref`). When it
//! is missing the test fails, unless `SWITCHYARD_SKIP_REFERENCE=1`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

use std::path::{Path, PathBuf};

use serde_json::Value;
use switchyard_core::tokens::TokenCounter;
use switchyard_tokenizers::{Tokenizer, TokenizerError, read_gguf};

/// Families that must be present: (family, vocab file, model, pre).
const REQUIRED: &[(&str, &str, &str, Option<&str>)] = &[
    ("smollm2", "smollm2.gguf", "gpt2", Some("smollm")),
    ("llama3", "llama3-vocab.gguf", "gpt2", Some("llama-bpe")),
    (
        "mistral-v3",
        "mistral-v3-vocab.gguf",
        "llama",
        Some("default"),
    ),
    (
        "mistral-v1",
        "mistral-v1-vocab.gguf",
        "llama",
        Some("default"),
    ),
];

/// One entry of `manifest.json`.
struct Family {
    name: String,
    gguf: String,
    model: String,
    pre: Option<String>,
}

/// The required families plus any extras listed in `manifest.json`.
fn families(dir: &Path) -> Vec<Family> {
    let mut out: Vec<Family> = REQUIRED
        .iter()
        .map(|(name, gguf, model, pre)| Family {
            name: (*name).into(),
            gguf: (*gguf).into(),
            model: (*model).into(),
            pre: pre.map(Into::into),
        })
        .collect();
    let manifest = dir.join("manifest.json");
    if manifest.is_file() {
        for f in load_json(&manifest)["families"].as_array().unwrap() {
            let name = f["family"].as_str().unwrap();
            if out.iter().all(|known| known.name != name) {
                out.push(Family {
                    name: name.into(),
                    gguf: f["gguf"].as_str().unwrap().into(),
                    model: f["model"].as_str().unwrap().into(),
                    pre: f["pre"].as_str().map(Into::into),
                });
            }
        }
    }
    out
}

fn ref_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("SWITCHYARD_TOKENIZER_REF") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.cache/tokenizer-ref"),
    };
    if dir.join("corpus.json").is_file() {
        return Some(dir);
    }
    if std::env::var("SWITCHYARD_SKIP_REFERENCE").as_deref() == Ok("1") {
        println!(
            "skipped: no tokenizer reference data in {} (SWITCHYARD_SKIP_REFERENCE=1)",
            dir.display()
        );
        return None;
    }
    panic!(
        "no tokenizer reference data in {}: run `scripts/python-env.sh && .cache/venv/bin/python \
         scripts/tokenizers/make_reference.py` first (or set SWITCHYARD_SKIP_REFERENCE=1 to skip)",
        dir.display()
    );
}

fn load_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn corpus(dir: &Path) -> Vec<String> {
    load_json(&dir.join("corpus.json"))["strings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

fn expected(dir: &Path, family: &str) -> Vec<Vec<u32>> {
    serde_json::from_value(load_json(&dir.join(format!("expected-{family}.json")))["ids"].take())
        .unwrap()
}

/// Compares all strings, reporting up to five mismatches, and returns the number identical.
fn check(family: &str, tok: &Tokenizer, corpus: &[String], expected: &[Vec<u32>]) -> usize {
    assert_eq!(
        corpus.len(),
        expected.len(),
        "{family}: corpus and expected ids differ in length"
    );
    let mut same = 0;
    let mut shown = 0;
    for (text, want) in corpus.iter().zip(expected) {
        let got = tok.encode(text);
        if &got == want {
            same += 1;
            // The count-only path (byte-level BPE counts without building ids) and the count
            // cache (a second count is a cache hit) give the same number.
            assert_eq!(tok.count_tokens(text), want.len(), "{family}: {text:?}");
            assert_eq!(tok.count(text) as usize, want.len(), "{family}: {text:?}");
            assert_eq!(tok.count(text) as usize, want.len(), "{family}: {text:?}");
        } else if shown < 5 {
            shown += 1;
            let short: String = text.chars().take(80).collect();
            println!(
                "{family}: MISMATCH for {short:?}\n  want {:?}\n  got  {:?}",
                &want[..want.len().min(40)],
                &got[..got.len().min(40)]
            );
        }
    }
    println!("{family}: {same}/{} identical", corpus.len());
    same
}

#[test]
fn gguf_tokenizers_match_llama_cpp() {
    let Some(dir) = ref_dir() else { return };
    let corpus = corpus(&dir);
    assert!(
        corpus.len() >= 300,
        "corpus has only {} strings",
        corpus.len()
    );
    let mut failures = Vec::new();
    for f in families(&dir) {
        let required = REQUIRED.iter().any(|r| r.0 == f.name);
        let tok = match Tokenizer::from_gguf_file(dir.join(&f.gguf)) {
            Ok(tok) => tok,
            Err(e @ (TokenizerError::UnsupportedPre(_) | TokenizerError::UnsupportedModel(_)))
                if !required =>
            {
                println!(
                    "{}: unsupported, the router falls back to its heuristic ({e})",
                    f.name
                );
                continue;
            }
            Err(e) => panic!("{}: {e}", f.name),
        };
        assert_eq!(tok.family(), f.model);
        assert_eq!(tok.pre(), f.pre.as_deref());
        assert!(tok.is_exact());
        let same = check(&f.name, &tok, &corpus, &expected(&dir, &f.name));
        if same != corpus.len() {
            failures.push(format!("{}: {same}/{}", f.name, corpus.len()));
        }
    }
    assert!(
        failures.is_empty(),
        "ids differ from llama.cpp: {failures:?}"
    );
}

#[test]
fn bos_settings_follow_the_metadata() {
    let Some(dir) = ref_dir() else { return };
    let smol = Tokenizer::from_gguf_file(dir.join("smollm2.gguf")).unwrap();
    assert_eq!((smol.bos_token(), smol.add_bos()), (Some(1), false));
    let llama3 = Tokenizer::from_gguf_file(dir.join("llama3-vocab.gguf")).unwrap();
    assert_eq!((llama3.bos_token(), llama3.add_bos()), (Some(128000), true));
    let mistral = Tokenizer::from_gguf_file(dir.join("mistral-v3-vocab.gguf")).unwrap();
    assert_eq!((mistral.bos_token(), mistral.add_bos()), (Some(1), true));
    assert_eq!(mistral.encode("[INST] Hello"), vec![3, 29473, 23325]);
}

/// The same vocabulary through Ollama's `/api/show` JSON shape gives the same ids.
#[test]
fn ollama_show_json_matches_gguf() {
    let Some(dir) = ref_dir() else { return };
    let corpus = corpus(&dir);
    for (family, file, _, _) in REQUIRED {
        let meta = read_gguf(dir.join(file)).unwrap();
        let mut info = serde_json::Map::new();
        for (k, v) in &meta.kv {
            info.insert(k.clone(), gguf_to_json(v));
        }
        let show = serde_json::json!({ "model_info": Value::Object(info.clone()) });
        let tok = Tokenizer::from_ollama_show(&show).unwrap_or_else(|e| panic!("{family}: {e}"));
        let same = check(family, &tok, &corpus, &expected(&dir, family));
        assert_eq!(same, corpus.len(), "{family} via /api/show JSON");

        // Non-verbose: arrays are null.
        info.insert("tokenizer.ggml.tokens".into(), Value::Null);
        let err = Tokenizer::from_ollama_show(&Value::Object(info))
            .unwrap_err()
            .to_string();
        assert!(err.contains("verbose"), "{err}");
    }
}

/// Meta's own tokenizer.json through the HF path agrees with llama.cpp too.
#[test]
fn llama3_tokenizer_json_matches() {
    let Some(dir) = ref_dir() else { return };
    let json = dir.join("llama3-tokenizer.json");
    if !json.is_file() {
        println!("skipped: {} not present", json.display());
        return;
    }
    let tok = Tokenizer::from_tokenizer_json(&json).unwrap();
    assert_eq!(tok.bos_token(), Some(128000));
    let corpus = corpus(&dir);
    assert_eq!(
        check(
            "llama3 tokenizer.json",
            &tok,
            &corpus,
            &expected(&dir, "llama3")
        ),
        corpus.len()
    );
}

fn gguf_to_json(v: &switchyard_tokenizers::GgufValue) -> Value {
    use switchyard_tokenizers::GgufValue as G;
    match v {
        G::String(s) => Value::String(s.clone()),
        G::Bool(b) => Value::Bool(*b),
        G::F32(f) => serde_json::json!(f),
        G::F64(f) => serde_json::json!(f),
        G::Array(a) => Value::Array(a.iter().map(gguf_to_json).collect()),
        other => serde_json::json!(other.as_i64().unwrap()),
    }
}

/// Text built to stress the count-only path: long runs, mixed scripts, code and encoded data.
fn adversarial() -> Vec<String> {
    let mut out = vec![
        " ".repeat(5000),
        "\n".repeat(300) + &"\t".repeat(300),
        "a".repeat(20_000),
        "ab".repeat(4000),
        "0123456789".repeat(500),
        "😀👩‍👩‍👧🇫🇷".repeat(300),
        "你好世界日本語のテキスト한국어".repeat(200),
        "fn main() { let v: Vec<u32> = (0..10).map(|x| x * 2).collect(); }\n".repeat(100),
        "Pneumonoultramicroscopicsilicovolcanoconiosis ".repeat(100),
        "--==**__~~||".repeat(400),
        "Ab1 ".repeat(2000),
        "\u{301}e\u{301}\u{200b}\u{feff}".repeat(500),
    ];
    // base64 of pseudo-random bytes
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let b64: String = (0..30_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(alphabet[(x % 64) as usize])
        })
        .collect();
    out.push(b64);
    out
}

#[test]
fn count_only_path_matches_encode_on_adversarial_text() {
    let Some(dir) = ref_dir() else { return };
    for f in families(&dir) {
        let Ok(tok) = Tokenizer::from_gguf_file(dir.join(&f.gguf)) else {
            continue;
        };
        for text in adversarial() {
            let want = tok.encode(&text).len();
            let short: String = text.chars().take(24).collect();
            assert_eq!(tok.count_tokens(&text), want, "{}: {short:?}", f.name);
            assert_eq!(tok.count(&text) as usize, want, "{}: {short:?}", f.name);
        }
    }
}

/// Byte-level counters share a per-thread piece memo (one table per counter, a few kept per
/// thread): counting the same texts with more byte-level tokenizers than the thread keeps tables
/// for, in turn, gives each one `encode`'s length every time.
#[test]
fn counts_stay_exact_when_tokenizers_take_turns() {
    let Some(dir) = ref_dir() else { return };
    let toks: Vec<(String, Tokenizer)> = families(&dir)
        .into_iter()
        .filter(|f| f.model == "gpt2")
        .filter_map(|f| {
            Some((
                f.name.clone(),
                Tokenizer::from_gguf_file(dir.join(&f.gguf)).ok()?,
            ))
        })
        .collect();
    assert!(toks.len() >= 2, "need two byte-level vocabularies");
    let mut texts = corpus(&dir);
    texts.push(texts.join("\n"));
    texts.extend(adversarial().into_iter().take(4));
    for round in 0..2 {
        for text in &texts {
            for (name, tok) in &toks {
                let short: String = text.chars().take(24).collect();
                assert_eq!(
                    tok.count_tokens(text),
                    tok.encode(text).len(),
                    "{name} (round {round}): {short:?}"
                );
            }
        }
    }
}
