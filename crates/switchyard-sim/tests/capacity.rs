//! Capacity: slots, the queue behind them, Ollama's 503 past `max_queue`, llama.cpp's unbounded
//! queue and `total_slots`, per-model speeds, and the bounded list of recorded requests.
//!
//! A request holds a slot with a long stream (5000 tokens at 50 tokens/s) whose response head has
//! arrived; dropping the response closes the connection, the next chunk's write fails and the
//! slot is released. Waits poll the simulator's counters, never a clock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::client;
use serde_json::{Value, json};
use switchyard_sim::{RECORD_LIMIT, SimConfig, SimHandle, SimModel, SlotStats};

const SMALL: &str = "small:1b";

/// Polls `cond` on the model's slot statistics until it holds (failing after 20 s rather than
/// hanging).
async fn until(sim: &SimHandle, model: &str, cond: impl Fn(&SlotStats) -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let stats = sim.slot_stats(model);
        if cond(&stats) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{model}: condition not reached; last {stats:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn chat(model: &str, stream: bool, tokens: u32) -> Value {
    json!({"model": model, "stream": stream,
           "messages": [{"role": "user", "content": format!("hello [[tokens={tokens}]]")}]})
}

/// Starts a long streamed generation and returns once its head arrived (it holds a slot).
async fn hold(url: &str, model: &str) -> reqwest::Response {
    let r = client()
        .post(url)
        .json(&chat(model, true, 5000))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r
}

fn slow(name: &str) -> SimModel {
    SimModel::new(name, 8192).with_speed(100_000.0, 50.0)
}

#[tokio::test]
async fn ollama_serves_n_queues_max_queue_and_refuses_the_rest_with_503() {
    let sim = SimHandle::start(SimConfig::ollama(vec![slow(SMALL).with_slots(2, Some(1))]))
        .await
        .unwrap();
    let url = format!("{}/api/chat", sim.base_url());
    let a = hold(&url, SMALL).await;
    let b = hold(&url, SMALL).await;
    assert_eq!(sim.slot_stats(SMALL).running, 2);

    // The third waits for a slot.
    let queued = tokio::spawn({
        let url = url.clone();
        async move {
            let r = client()
                .post(&url)
                .json(&chat(SMALL, false, 4))
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    });
    until(&sim, SMALL, |s| s.queued == 1).await;

    // The queue is full: Ollama's 503, on the native API and the OpenAI layer alike.
    let r = client()
        .post(&url)
        .json(&chat(SMALL, false, 4))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"error": "server busy, please try again.  maximum pending requests exceeded"})
    );
    let r = client()
        .post(format!("{}/v1/chat/completions", sim.base_url()))
        .json(&chat(SMALL, false, 4))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v["error"]["message"],
        "server busy, please try again.  maximum pending requests exceeded"
    );

    // A slot frees: the queued request is served.
    drop(a);
    let (status, body) = queued.await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(body["done"], true);
    // Its reported eval time follows the model's speed: 4 tokens at 50 tokens/s.
    assert_eq!(body["eval_duration"], 80_000_000);
    drop(b);
    until(&sim, SMALL, |s| s.running == 0).await;

    let s = sim.slot_stats(SMALL);
    assert_eq!((s.served, s.busy, s.queued), (3, 2, 0));
    assert_eq!((s.peak_running, s.peak_queued), (2, 1));
    let stats: Value = client()
        .get(format!("{}/_sim/stats", sim.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let m = &stats[SMALL];
    assert_eq!(
        (&m["requests"], &m["served"], &m["busy"]),
        (&json!(5), &json!(3), &json!(2))
    );
}

#[tokio::test]
async fn a_client_that_leaves_the_queue_frees_its_place() {
    let sim = SimHandle::start(SimConfig::ollama(vec![slow(SMALL).with_slots(1, Some(1))]))
        .await
        .unwrap();
    let url = format!("{}/api/chat", sim.base_url());
    let a = hold(&url, SMALL).await;
    let gone = tokio::spawn({
        let url = url.clone();
        async move {
            client()
                .post(&url)
                .json(&chat(SMALL, false, 4))
                .send()
                .await
        }
    });
    until(&sim, SMALL, |s| s.queued == 1).await;
    gone.abort();
    until(&sim, SMALL, |s| s.queued == 0).await;
    // Its place is free again: the next request waits instead of getting 503.
    let next = tokio::spawn({
        let url = url.clone();
        async move {
            client()
                .post(&url)
                .json(&chat(SMALL, false, 2))
                .send()
                .await
                .unwrap()
                .status()
        }
    });
    until(&sim, SMALL, |s| s.queued == 1).await;
    drop(a);
    assert_eq!(next.await.unwrap(), 200);
    assert_eq!(sim.slot_stats(SMALL).busy, 0);
}

#[tokio::test]
async fn llamacpp_reports_its_slots_and_queues_without_refusing() {
    let sim = SimHandle::start(SimConfig::llamacpp(slow("smol").with_slots(2, Some(0))))
        .await
        .unwrap();
    let base = sim.base_url();
    let props: Value = client()
        .get(format!("{base}/props"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(props["total_slots"], 2);

    let url = format!("{base}/v1/chat/completions");
    let a = hold(&url, "smol").await;
    let slots: Value = client()
        .get(format!("{base}/slots"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let busy: Vec<bool> = slots
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["is_processing"].as_bool().unwrap())
        .collect();
    assert_eq!(busy, [true, false]);

    let b = hold(&url, "smol").await;
    // Two more wait (no max_queue in llama.cpp: `max_queue: 0` is ignored).
    let waiting: Vec<_> = (0..2)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move {
                client()
                    .post(&url)
                    .json(&chat("smol", false, 2))
                    .send()
                    .await
                    .unwrap()
                    .status()
            })
        })
        .collect();
    until(&sim, "smol", |s| s.queued == 2).await;
    drop(a);
    drop(b);
    for w in waiting {
        assert_eq!(w.await.unwrap(), 200);
    }
    let s = sim.slot_stats("smol");
    assert_eq!(
        (s.served, s.busy, s.peak_running, s.peak_queued),
        (4, 0, 2, 2)
    );
}

#[tokio::test]
async fn without_num_parallel_slots_are_unlimited_and_props_says_one() {
    let sim = SimHandle::start(SimConfig::ollama(vec![slow(SMALL)]))
        .await
        .unwrap();
    let url = format!("{}/api/chat", sim.base_url());
    let mut held = Vec::new();
    for _ in 0..20 {
        held.push(hold(&url, SMALL).await);
    }
    let s = sim.slot_stats(SMALL);
    assert_eq!((s.running, s.queued, s.busy), (20, 0, 0));
    drop(held);

    let llama = SimHandle::start(SimConfig::llamacpp(SimModel::new("smol", 4096)))
        .await
        .unwrap();
    let props: Value = client()
        .get(format!("{}/props", llama.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(props["total_slots"], 1);
}

#[tokio::test]
async fn capacity_keys_load_from_yaml() {
    let cfg = SimConfig::from_yaml(
        "flavor: ollama\nmodels:\n  - {name: a, context_length: 4096, num_parallel: 2, max_queue: 4, prompt_tokens_per_s: 2000, tokens_per_s: 40}\n",
    )
    .unwrap();
    let m = &cfg.models[0];
    assert_eq!((m.num_parallel, m.max_queue), (Some(2), Some(4)));
    assert_eq!(
        (m.prompt_tokens_per_s, m.tokens_per_s),
        (Some(2000.0), Some(40.0))
    );
}

#[tokio::test]
async fn only_recent_requests_are_kept_but_every_one_is_counted() {
    let sim = SimHandle::start(SimConfig::ollama(vec![SimModel::new(SMALL, 8192)]))
        .await
        .unwrap();
    let c = client();
    let url = format!("{}/api/chat", sim.base_url());
    let total = RECORD_LIMIT + 5;
    for i in 0..total {
        let r = c
            .post(&url)
            .json(&json!({"model": SMALL, "stream": false,
                          "messages": [{"role": "user", "content": format!("n{i}")}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let kept = sim.requests();
    assert_eq!(kept.len(), RECORD_LIMIT);
    assert_eq!(kept[0].body["messages"][0]["content"], "n5");
    assert_eq!(
        kept.last().unwrap().body["messages"][0]["content"],
        format!("n{}", total - 1)
    );
    assert_eq!(sim.request_count(SMALL), total);
}
