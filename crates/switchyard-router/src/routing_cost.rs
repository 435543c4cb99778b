//! Measures what deciding a route costs for a long prompt (issue 18): the heuristic counter,
//! an exact tokenizer counting every prompt whole (as before ranges), and an exact tokenizer whose
//! count starts as a cheap range. Ignored by default; run it on a release build:
//! `cargo test -p switchyard-router --release --lib routing_cost -- --ignored --nocapture`.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use switchyard_core::plan::plan_for_window;
use switchyard_proto as pb;

use crate::boundary;
use crate::shared::RouterAvailability;
use crate::state::{Estimator, RouterState};

fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn state(tokenizer: Option<&Path>) -> RouterState {
    let tok = tokenizer
        .map(|p| format!(", tokenizer: \"{}\"", p.display()))
        .unwrap_or_default();
    let text = format!(
        "deployments:\n  - {{group: small, provider: ollama, model: llama3.2:1b, api_base: \"http://127.0.0.1:9\", context_window: 8192, template: llama3{tok}}}\n  - {{group: large, provider: ollama, model: llama3.2:3b, api_base: \"http://127.0.0.1:9\", context_window: 131072, template: llama3{tok}}}\nfallbacks: [small, large]\n"
    );
    let cfg =
        switchyard_core::config::load_str("cost", &text, None, &HashMap::<String, String>::new())
            .unwrap();
    RouterState::new(cfg).unwrap()
}

fn request(body: &str, i: usize) -> pb::ChatRequest {
    pb::ChatRequest {
        model: "small".into(),
        messages: vec![pb::Message {
            role: "user".into(),
            // A different text every time: no count cache helps.
            content: Some(format!("Request {i}.\n{body}")),
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// The routing decision: estimates, exact counts where undecided, the plan.
async fn route(state: &RouterState, req: &pb::ChatRequest, always_exact: bool) -> usize {
    let group = state.config.group(&req.model).unwrap();
    let mut estimator = Estimator::new(state, req);
    if always_exact {
        estimator = estimator.always_exact();
    }
    boundary::refine(state, req, &mut estimator, group, 512, false).await;
    let plan = plan_for_window(
        &state.config,
        group,
        &mut |d| estimator.estimate(d).total(),
        512,
        None,
        &RouterAvailability(state),
        Instant::now(),
    )
    .unwrap();
    plan.candidates[0].deployment
}

async fn p50(
    state: &RouterState,
    body: &str,
    always_exact: bool,
    runs: usize,
) -> (Duration, usize) {
    let mut times = Vec::with_capacity(runs);
    let mut chosen = 0;
    for i in 0..runs {
        let req = request(body, i);
        let t = Instant::now();
        chosen = route(state, &req, always_exact).await;
        times.push(t.elapsed());
    }
    times.sort();
    (times[runs / 2], chosen)
}

#[tokio::test]
#[ignore = "a measurement: run on a release build with --ignored --nocapture"]
async fn routing_cost_of_a_32k_token_prompt() {
    let vocab = repo().join(".cache/tokenizer-ref/llama3-vocab.gguf");
    let docs: String = ["README.md", "ARCHITECTURE.md"]
        .iter()
        .map(|f| std::fs::read_to_string(repo().join(f)).unwrap())
        .collect();
    let exact = state(Some(&vocab));
    let counter = exact.tokens[0].counter();
    let mut body = String::new();
    while counter.count(&body) < 32_000 {
        body.push_str(&docs);
    }
    let tokens = counter.count(&body);
    let heuristic = state(None);
    let runs = 41;
    let (h, hd) = p50(&heuristic, &body, false, runs).await;
    let (before, bd) = p50(&exact, &body, true, runs).await;
    let (after, ad) = p50(&exact, &body, false, runs).await;
    println!(
        "prompt: {tokens} tokens (Llama 3), {} bytes; windows 8192 and 131072",
        body.len()
    );
    println!("heuristic:                 p50 {h:?} (routed to deployment {hd})");
    println!("exact, whole count:        p50 {before:?} (routed to deployment {bd})");
    println!("exact, range first:        p50 {after:?} (routed to deployment {ad})");
    println!(
        "ratio to the heuristic: whole {:.2}x, range first {:.2}x",
        before.as_secs_f64() / h.as_secs_f64(),
        after.as_secs_f64() / h.as_secs_f64()
    );
    assert_eq!((hd, bd, ad), (1, 1, 1));
}
