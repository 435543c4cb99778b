//! Times exact counting of one file with one vocabulary, three ways: `encode` (Hugging Face's full
//! encoding, the ids built), `count_tokens` (the count-only path, no count cache) and `count` (what
//! the router calls: the count cache, so every repeat after the first is a hit).
//!
//! `cargo run --release -p switchyard-tokenizers --example count_file -- VOCAB.gguf FILE [REPEATS]`
//! prints the count and the p50 and best of REPEATS runs (default 20) of each.
#![allow(clippy::print_stdout)]

use std::time::Instant;

use switchyard_core::tokens::TokenCounter;
use switchyard_tokenizers::Tokenizer;

/// One way of counting, by name.
type Run<'a> = (&'a str, Box<dyn Fn() -> usize + 'a>);

fn time(repeats: usize, mut f: impl FnMut() -> usize) -> (usize, f64, f64) {
    let mut times = Vec::with_capacity(repeats);
    let mut n = 0;
    for _ in 0..repeats {
        let t = Instant::now();
        n = f();
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    (n, times[times.len() / 2], times[0])
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(vocab), Some(file)) = (args.get(1), args.get(2)) else {
        return Err("usage: count_file VOCAB.gguf FILE [REPEATS]".into());
    };
    let repeats: usize = args.get(3).map(|s| s.parse()).transpose()?.unwrap_or(20);
    let tok = Tokenizer::from_gguf_file(vocab)?;
    let text = std::fs::read_to_string(file)?;
    println!("{} bytes, {repeats} repeats", text.len());
    let runs: [Run<'_>; 3] = [
        ("encode", Box::new(|| tok.encode(&text).len())),
        ("count_tokens", Box::new(|| tok.count_tokens(&text))),
        ("count (cached)", Box::new(|| tok.count(&text) as usize)),
    ];
    for (name, f) in runs {
        let (n, p50, best) = time(repeats, f);
        println!(
            "{name:<15} {n} tokens: p50 {p50:.3} ms, best {best:.3} ms, {:.3} us/token",
            p50 * 1e3 / n.max(1) as f64
        );
    }
    Ok(())
}
