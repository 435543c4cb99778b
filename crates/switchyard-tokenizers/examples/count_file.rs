//! Times exact counting of one file with one vocabulary, the way the router counts a long prompt:
//! `cargo run --release -p switchyard-tokenizers --example count_file -- VOCAB.gguf FILE [REPEATS]`.
//! Prints the count, and the p50 and best time of REPEATS counts (default 20).
#![allow(clippy::print_stdout)]

use std::time::Instant;

use switchyard_core::tokens::TokenCounter;
use switchyard_tokenizers::Tokenizer;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(vocab), Some(file)) = (args.get(1), args.get(2)) else {
        return Err("usage: count_file VOCAB.gguf FILE [REPEATS]".into());
    };
    let repeats: usize = args.get(3).map(|s| s.parse()).transpose()?.unwrap_or(20);
    let tok = Tokenizer::from_gguf_file(vocab)?;
    let text = std::fs::read_to_string(file)?;
    let mut times = Vec::with_capacity(repeats);
    let mut n = 0;
    for _ in 0..repeats {
        let t = Instant::now();
        n = tok.count(&text);
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    let p50 = times[times.len() / 2];
    println!(
        "{n} tokens, {} bytes: p50 {p50:.2} ms, best {:.2} ms, {:.2} us/token",
        text.len(),
        times[0],
        p50 * 1e3 / f64::from(n.max(1))
    );
    Ok(())
}
