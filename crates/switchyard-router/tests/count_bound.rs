//! Proves the cheap count range (`switchyard_core::bound::CountRange`) by test: for every text of
//! the tokenizer reference corpus and adversarial text (code, CJK, emoji, whitespace runs,
//! base64, random and long words, digits), under every vocabulary of the reference set, the exact
//! count lies inside the range.
//!
//! The vocabularies live in `$SWITCHYARD_TOKENIZER_REF` (default `<repo>/.cache/tokenizer-ref`);
//! without them the test says it was skipped.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

use std::path::{Path, PathBuf};

use switchyard_core::bound::CountRange;
use switchyard_core::tokens::TokenCounter;
use switchyard_tokenizers::Tokenizer;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn ref_dir() -> PathBuf {
    std::env::var("SWITCHYARD_TOKENIZER_REF")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo().join(".cache/tokenizer-ref"))
}

/// Pseudo-random bytes (xorshift), the same on every run.
fn random_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn base64(bytes: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    bytes
        .chunks(3)
        .flat_map(|c| {
            let n = c.iter().fold(0u32, |a, &b| (a << 8) | u32::from(b)) << (8 * (3 - c.len()));
            (0..4).map(move |i| A[((n >> (18 - 6 * i)) & 63) as usize] as char)
        })
        .collect()
}

fn adversarial() -> Vec<String> {
    let mut out = Vec::new();
    let letters = |seed: u64, n: usize, alphabet: &[u8]| -> String {
        random_bytes(n, seed)
            .iter()
            .map(|b| alphabet[*b as usize % alphabet.len()] as char)
            .collect()
    };
    let lower = b"abcdefghijklmnopqrstuvwxyz";
    let mixed = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    for seed in 1..=8u64 {
        out.push(base64(&random_bytes(300 * seed as usize, seed)));
        out.push(letters(seed, 400, lower));
        out.push(letters(seed + 100, 400, mixed));
        // Random short "words".
        let w: Vec<String> = (0..80)
            .map(|i| letters(seed * 1000 + i, 1 + (i as usize % 7), lower))
            .collect();
        out.push(w.join(" "));
        let hex: String = random_bytes(200, seed + 7)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        out.push(hex);
    }
    out.push("pneumonoultramicroscopicsilicovolcanoconiosis ".repeat(20));
    out.push("Donaudampfschifffahrtsgesellschaftskapitänswitwe ".repeat(20));
    out.push("supercalifragilisticexpialidocious".repeat(10));
    out.push("a".repeat(1000));
    out.push("ab".repeat(500));
    out.push("Qx".repeat(300));
    out.push(" ".repeat(1000));
    out.push("\n".repeat(300));
    out.push("\t \n  \r\n".repeat(100));
    out.push(format!("word{}word", " ".repeat(57)));
    out.push("  indented   text    with     runs      of       spaces ".repeat(20));
    out.push("日本語のテキストと中文文本以及한국어 텍스트".repeat(30));
    out.push("😀🎉👩‍👩‍👧🏳️‍🌈🤖🫠🧑🏽‍🚀".repeat(40));
    out.push("ἀρχὴ ῥῆμα Ωμέγα ∑∫∂√∞ ≠ ≤ ≥ ⊂ ⊕".repeat(30));
    out.push("1234567890".repeat(100));
    out.push("3.14159 2.71828 1e-10 0x1F 1_000_000 ".repeat(30));
    out.push("==========----------**********##########".repeat(20));
    out.push("café naïve résumé façade coöperate Zürich".repeat(20));
    for f in [
        "crates/switchyard-core/src/plan.rs",
        "crates/switchyard-core/src/tokens.rs",
        "README.md",
        "ARCHITECTURE.md",
        "Cargo.toml",
    ] {
        if let Ok(t) = std::fs::read_to_string(repo().join(f)) {
            out.push(t);
        }
    }
    out
}

fn corpus(dir: &Path) -> Vec<String> {
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("corpus.json")).unwrap()).unwrap();
    v["strings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_cheap_range_holds_the_exact_count_under_every_vocabulary() {
    let dir = ref_dir();
    if !dir.join("corpus.json").is_file() {
        println!("skipped: no tokenizer reference data in {}", dir.display());
        return;
    }
    let mut texts = corpus(&dir);
    texts.extend(adversarial());
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "gguf"))
        .collect();
    files.sort();
    let mut checked = 0;
    let mut failures = Vec::new();
    for f in &files {
        let Ok(t) = Tokenizer::from_gguf_file(f) else {
            println!("{}: not loadable here, left out", f.display());
            continue;
        };
        checked += 1;
        let (mut up, mut low) = (0u64, 0u64);
        let mut exact_sum = 0u64;
        for s in &texts {
            let n = t.count(s);
            let r = CountRange::of(s);
            if n < r.lower || n > r.upper {
                let head: String = s.chars().take(60).collect();
                failures.push(format!(
                    "{}: {n} outside [{}, {}] for {head:?}",
                    f.file_name().unwrap().to_string_lossy(),
                    r.lower,
                    r.upper
                ));
            }
            up += u64::from(r.upper);
            low += u64::from(r.lower);
            exact_sum += u64::from(n);
        }
        let docs: String = ["README.md", "ARCHITECTURE.md"]
            .iter()
            .filter_map(|f| std::fs::read_to_string(repo().join(f)).ok())
            .collect();
        let (n, r) = (t.count(&docs), CountRange::of(&docs));
        println!(
            "{}: README + ARCHITECTURE ({n} tokens): lower {:.2}, upper {:.2} of the exact count",
            f.file_name().unwrap().to_string_lossy(),
            f64::from(r.lower) / f64::from(n),
            f64::from(r.upper) / f64::from(n)
        );
        println!(
            "{}: all texts: lower {:.2}, upper {:.2} of the exact count",
            f.file_name().unwrap().to_string_lossy(),
            low as f64 / exact_sum as f64,
            up as f64 / exact_sum as f64
        );
    }
    assert!(checked >= 4, "only {checked} vocabularies could be checked");
    let shown: Vec<&String> = failures.iter().take(40).collect();
    assert!(
        failures.is_empty(),
        "{} failures:\n{shown:#?}",
        failures.len()
    );
}
