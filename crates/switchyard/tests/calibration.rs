//! A deployment with only an estimated tokenizer learns from what the backend reports: after a
//! few dozen answers its predictions are within 2 % of the reported prompt sizes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use serde_json::Value;

/// Deterministic prose of `n` words of varied length, with numbers, from seed `seed`.
fn prose(seed: u64, n: usize) -> String {
    const WORDS: [&str; 16] = [
        "routing",
        "a",
        "model",
        "context",
        "window",
        "of",
        "the",
        "gateway",
        "tokenizer",
        "fits",
        "prompt",
        "and",
        "international",
        "cat",
        "server",
        "answer",
    ];
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let r = (x >> 33) as usize;
        if r.is_multiple_of(23) {
            out.push(format!("{}", r % 1000));
        } else {
            out.push(WORDS[r % WORDS.len()].to_string());
        }
    }
    out.join(" ")
}

#[tokio::test]
async fn estimates_converge_to_reported_counts() {
    let sim = common::reference_ollama().await;
    let gw = common::serve(common::config_from(&common::seed_config_text(
        &sim.base_url(),
    )))
    .await;
    let http = common::client();
    let mut errors = Vec::new();
    for i in 0..60u64 {
        let body = common::chat_body(
            "local-medium",
            &prose(i, 1200 + (i as usize * 37) % 600),
            false,
        );
        let r = http
            .post(gw.url("/v1/chat/completions"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let predicted: f64 = r.headers()["x-switchyard-prompt-tokens"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let v: Value = r.json().await.unwrap();
        let reported = v["usage"]["prompt_tokens"].as_f64().unwrap();
        errors.push((predicted - reported).abs() / reported);
    }
    let first = errors[0];
    let late = &errors[40..];
    let mean_late = late.iter().sum::<f64>() / late.len() as f64;
    let worst_late = late.iter().cloned().fold(0.0, f64::max);
    assert!(
        first > 0.05,
        "the uncalibrated heuristic should start off noticeably ({first})"
    );
    assert!(
        mean_late < 0.02,
        "mean calibrated error {mean_late:.4} after 40 answers: {errors:?}"
    );
    // Every single prediction, not just the average.
    assert!(
        worst_late < 0.02,
        "worst calibrated error {worst_late:.4} after 40 answers: {errors:?}"
    );
}
