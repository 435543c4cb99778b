//! Times `count_tokens` (the count-only path, no whole-text count cache) on one file the two ways
//! a router meets it: cold (a tokenizer just built, its piece caches empty: the first prompt after
//! start) and warm (the piece caches filled by an earlier count: a router that has counted many
//! prompts). Reports the p50 and best of each, in ms and ns per token.
//!
//! `cargo run --release -p switchyard-tokenizers --example count_warm_cold -- VOCAB.gguf FILE [WARM_REPEATS] [COLD_REPEATS]`
#![allow(clippy::print_stdout)]

use std::time::Instant;

use switchyard_tokenizers::Tokenizer;

fn summary(name: &str, n: usize, mut ms: Vec<f64>) {
    ms.sort_by(f64::total_cmp);
    let (p50, best) = (ms[ms.len() / 2], ms[0]);
    println!(
        "{name:<5} {n} tokens: p50 {p50:.3} ms ({:.1} ns/token), best {best:.3} ms ({:.1} ns/token)",
        p50 * 1e6 / n.max(1) as f64,
        best * 1e6 / n.max(1) as f64
    );
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(vocab), Some(file)) = (args.get(1), args.get(2)) else {
        return Err("usage: count_warm_cold VOCAB.gguf FILE [WARM_REPEATS] [COLD_REPEATS]".into());
    };
    let warm_repeats: usize = args.get(3).map(|s| s.parse()).transpose()?.unwrap_or(50);
    let cold_repeats: usize = args.get(4).map(|s| s.parse()).transpose()?.unwrap_or(5);
    let meta = switchyard_tokenizers::read_gguf(vocab)?;
    let text = std::fs::read_to_string(file)?;
    println!("{} bytes", text.len());

    let mut cold = Vec::with_capacity(cold_repeats);
    let mut n = 0;
    for _ in 0..cold_repeats.max(1) {
        let tok = Tokenizer::from_gguf_metadata(&meta)?;
        // The prompt as a router holds it: a buffer allocated after the tokenizer was built.
        // (The first large allocation after a build makes glibc consolidate the build's freed
        // memory, ~5 ms: the request's own buffers pay that, not the count.)
        let prompt = text.clone();
        let t = Instant::now();
        n = tok.count_tokens(&prompt);
        cold.push(t.elapsed().as_secs_f64() * 1e3);
    }
    summary("cold", n, cold);

    let tok = Tokenizer::from_gguf_metadata(&meta)?;
    tok.count_tokens(&text);
    let mut warm = Vec::with_capacity(warm_repeats);
    for _ in 0..warm_repeats.max(1) {
        let t = Instant::now();
        n = tok.count_tokens(&text);
        warm.push(t.elapsed().as_secs_f64() * 1e3);
    }
    summary("warm", n, warm);
    Ok(())
}
