//! Criterion micro-benchmarks of the pieces every request goes through, reached through the
//! crates' public APIs: prompt token counting, candidate planning over the seed config, OpenAI
//! request decoding into the router's message, and SSE chunk writing. They localise a regression
//! that the end-to-end load test only shows as "overhead went up".
//!
//! Kept short (1 s warm-up, 2 s measurement) so `cargo bench -p switchyard-bench` finishes in
//! about a minute on two cores.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use switchyard_core::config::Config;
use switchyard_core::cooldown::Cooldowns;
use switchyard_core::plan::plan;
use switchyard_core::tokens::{HeuristicCounter, TokenCounter};
use switchyard_gateway::openai::request::ChatCompletionRequest;
use switchyard_gateway::openai::response::ChunkWriter;
use switchyard_proto as pb;

const SEED: &str = include_str!("../../../fixtures/seed-config.yaml");

fn seed() -> Config {
    switchyard_core::config::load_str(
        "seed-config.yaml",
        SEED,
        None,
        &HashMap::<String, String>::new(),
    )
    .expect("the seed config loads")
}

fn tokens(c: &mut Criterion) {
    let mut g = c.benchmark_group("heuristic_count");
    for n in [1_000u32, 10_000, 100_000] {
        let text = switchyard_bench::prompt::text(n);
        g.throughput(Throughput::Bytes(text.len() as u64));
        g.bench_with_input(
            BenchmarkId::from_parameter(format!("{}k_tokens", n / 1000)),
            &text,
            |b, t| b.iter(|| HeuristicCounter.count(black_box(t))),
        );
    }
    g.finish();
}

fn planning(c: &mut Criterion) {
    let cfg = seed();
    let group = cfg.group("local-small").expect("local-small exists");
    let cooldowns = Cooldowns::new(cfg.deployments.len(), 3, Duration::from_secs(5));
    let now = Instant::now();
    let mut g = c.benchmark_group("plan_seed_config");
    for (name, prompt) in [
        ("fits_small", 100u32),
        ("needs_medium", 1_800),
        ("needs_large", 20_000),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                plan(
                    &cfg,
                    group,
                    &mut |_| black_box(prompt),
                    512,
                    &cooldowns,
                    now,
                )
                .expect("plans")
            })
        });
    }
    g.finish();
}

fn decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("openai_request_to_router");
    for (name, tokens) in [("small", 10u32), ("2k", 2_000)] {
        let body = serde_json::to_vec(&switchyard_bench::prompt::chat_body(
            "local-small",
            tokens,
            false,
        ))
        .unwrap();
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_with_input(BenchmarkId::from_parameter(name), &body, |b, body| {
            b.iter(|| {
                let req: ChatCompletionRequest = serde_json::from_slice(black_box(body)).unwrap();
                req.into_router_request("req-1".to_string()).unwrap()
            })
        });
    }
    g.finish();
}

fn sse(c: &mut Criterion) {
    let route = pb::RouteInfo {
        group: "local-small".into(),
        deployment: "local-small/0".into(),
        backend_model: "llama3.2:1b".into(),
        attempts: 1,
        prompt_tokens: 42,
        response_id: "chatcmpl-0123456789abcdef0123456789abcdef".into(),
        created: 1_760_000_000,
        failed_attempts: Vec::new(),
        served_group: "local-small".into(),
        output_limit: None,
        queued_ms: 0,
        spilled: None,
    };
    let writer = ChunkWriter::new(&route, "local-small");
    let delta = pb::Delta {
        content: " token".into(),
        reasoning: None,
        tool_calls: Vec::new(),
        logprobs_json: None,
    };
    let mut g = c.benchmark_group("sse_chunk");
    g.bench_function("delta", |b| b.iter(|| writer.delta(black_box(&delta))));
    g.bench_function("role", |b| b.iter(|| writer.role()));
    g.bench_function("stream_of_16_tokens", |b| {
        b.iter(|| {
            let w = ChunkWriter::new(black_box(&route), "local-small");
            let mut n = w.role().len();
            for _ in 0..16 {
                n += w.delta(&delta).len();
            }
            n += w.finish("stop").len();
            n + ChunkWriter::done().len()
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50);
    targets = tokens, planning, decode, sse
}
criterion_main!(benches);
