//! What a conversation costs to count turn by turn, as the router counts it (each message on its
//! own): a client resends the whole history every turn, so turn N holds N user messages and N-1
//! answers. Times each turn's count with the tokenizer's count cache and without it (`encode`).
//!
//! `cargo run --release -p switchyard-tokenizers --example conversation -- VOCAB.gguf FILE [TURNS]`
//! FILE's text is cut into the messages (each about FILE's length / (2 * TURNS) bytes).
#![allow(clippy::print_stdout)]

use std::time::Instant;

use switchyard_core::tokens::TokenCounter;
use switchyard_tokenizers::Tokenizer;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(vocab), Some(file)) = (args.get(1), args.get(2)) else {
        return Err("usage: conversation VOCAB.gguf FILE [TURNS]".into());
    };
    let turns: usize = args.get(3).map(|s| s.parse()).transpose()?.unwrap_or(10);
    let tok = Tokenizer::from_gguf_file(vocab)?;
    let text = std::fs::read_to_string(file)?;
    let chars: Vec<char> = text.chars().collect();
    let per = chars.len() / (2 * turns);
    let messages: Vec<String> = chars
        .chunks(per.max(1))
        .map(|c| c.iter().collect())
        .collect();
    println!("turn  messages  tokens   cached ms  uncached ms");
    for turn in 1..=turns {
        let history = &messages[..(2 * turn - 1).min(messages.len())];
        let t = Instant::now();
        let cached: u32 = history.iter().map(|m| tok.count(m)).sum();
        let cached_ms = t.elapsed().as_secs_f64() * 1e3;
        let t = Instant::now();
        let uncached: usize = history.iter().map(|m| tok.encode(m).len()).sum();
        let uncached_ms = t.elapsed().as_secs_f64() * 1e3;
        if cached as usize != uncached {
            return Err(format!("turn {turn}: cached {cached} != uncached {uncached}").into());
        }
        println!(
            "{turn:>4}  {:>8}  {cached:>6}  {cached_ms:>10.2}  {uncached_ms:>11.2}",
            history.len()
        );
    }
    Ok(())
}
