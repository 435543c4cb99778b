//! Rough cost of exact token counting per family: time to build a tokenizer from its GGUF, counting
//! throughput on a ~100k-token prompt, and memory held per loaded tokenizer (RSS delta).
//!
//! `cargo run --release -p switchyard-tokenizers --example tokbench [REF_DIR]`
//! (REF_DIR defaults to `$SWITCHYARD_TOKENIZER_REF` or `<repo>/.cache/tokenizer-ref`). Each family
//! runs in a child process of its own so that its RSS delta is not hidden by memory another
//! family's build freed.
#![allow(clippy::print_stdout)]

use std::path::PathBuf;
use std::time::Instant;

use switchyard_core::tokens::TokenCounter;
use switchyard_tokenizers::Tokenizer;

const FAMILIES: &[(&str, &str)] = &[
    ("smollm2", "smollm2.gguf"),
    ("llama3", "llama3-vocab.gguf"),
    ("mistral-v3", "mistral-v3-vocab.gguf"),
    ("mistral-v1", "mistral-v1-vocab.gguf"),
];

fn rss_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A varied prompt: prose, code, JSON, CJK and emoji, repeated to the wanted size.
fn prompt(min_bytes: usize) -> String {
    let chunk = "The gateway routes each chat request to the smallest local model whose context window fits. \
        fn main() { let v: Vec<u32> = (0..10).map(|x| x * 2).collect(); println!(\"{v:?}\"); }\n\
        {\"model\":\"llama3.2\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi 12345\"}]}\n\
        你好，世界！日本語のテキスト。 😀👩‍👩‍👧 Привет, мир!\n\n";
    let mut s = String::with_capacity(min_bytes + chunk.len());
    while s.len() < min_bytes {
        s.push_str(chunk);
    }
    s
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if let (Some("--only"), Some(name), Some(dir)) =
        (args.get(1).map(String::as_str), args.get(2), args.get(3))
    {
        return run_one(name, &PathBuf::from(dir));
    }
    let dir = args
        .get(1)
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("SWITCHYARD_TOKENIZER_REF").map(PathBuf::from))
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.cache/tokenizer-ref")
        });
    println!(
        "prompt: {} bytes; reference dir {}",
        prompt(400_000).len(),
        dir.display()
    );
    println!(
        "{:<12} {:>10} {:>10} {:>12} {:>14} {:>10} {:>14}",
        "family", "build ms", "tokens", "count ms", "tokens/s", "RSS MiB", "peak RSS MiB"
    );
    let exe = std::env::current_exe()?;
    for (name, _) in FAMILIES {
        let status = std::process::Command::new(&exe)
            .arg("--only")
            .arg(name)
            .arg(&dir)
            .status()?;
        if !status.success() {
            return Err(format!("{name}: child failed with {status}").into());
        }
    }
    Ok(())
}

fn run_one(name: &str, dir: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    let text = prompt(400_000);
    let file = FAMILIES
        .iter()
        .find(|f| f.0 == name)
        .map(|f| f.1)
        .ok_or("unknown family")?;
    {
        let path = dir.join(file);
        let before = rss_kib("VmRSS:").unwrap_or(0);
        let t0 = Instant::now();
        let tok = Tokenizer::from_gguf_file(&path)?;
        let build = t0.elapsed();
        let after = rss_kib("VmRSS:").unwrap_or(0);
        let peak = rss_kib("VmHWM:").unwrap_or(0);
        let _warm = tok.count(&text[..10_000]);
        let runs = 5;
        let t1 = Instant::now();
        let mut n = 0;
        for _ in 0..runs {
            n = tok.count(&text);
        }
        let per = t1.elapsed() / runs;
        println!(
            "{:<12} {:>10.1} {:>10} {:>12.1} {:>14.0} {:>10.1} {:>14.1}",
            name,
            build.as_secs_f64() * 1e3,
            n,
            per.as_secs_f64() * 1e3,
            f64::from(n) / per.as_secs_f64(),
            after.saturating_sub(before) as f64 / 1024.0,
            peak.saturating_sub(before) as f64 / 1024.0
        );
    }
    Ok(())
}
