//! Times `CountRange::of` over one file: `cargo run --release -p switchyard-core --example
//! range_speed -- FILE [REPEATS]` prints the range and the best and median time per pass.
#![allow(clippy::print_stdout)]

use std::time::Instant;

use switchyard_core::bound::CountRange;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let file = args.get(1).ok_or("usage: range_speed FILE [REPEATS]")?;
    let repeats: usize = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(200);
    let text = std::fs::read_to_string(file)?;
    let mut times = Vec::with_capacity(repeats);
    let mut r = CountRange::default();
    for _ in 0..repeats {
        let t = Instant::now();
        r = std::hint::black_box(CountRange::of(std::hint::black_box(&text)));
        times.push(t.elapsed().as_secs_f64() * 1e6);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "{} bytes: range {}..{} (estimate {}), best {:.1} us, median {:.1} us, {:.2} ns/byte",
        text.len(),
        r.lower,
        r.upper,
        r.estimate,
        times[0],
        times[times.len() / 2],
        times[times.len() / 2] * 1e3 / text.len() as f64
    );
    Ok(())
}
