//! Capacity-aware routing end to end: slots from the config and from llama.cpp's `/props`, the
//! router's queue (order, priority, depth and timeout limits, a caller leaving while it waits),
//! the spill policy, and slots shared by two router replicas through Redis.
//!
//! A slot is held by a streamed request whose backend stalls after its first token (a simulator
//! fault); dropping that response is a client disconnect, which frees the slot. Waits are
//! conditions polled on `/metrics` (queue depth) or on the simulator, never fixed sleeps.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use serde_json::{Value, json};
use switchyard_sim::{Fault, FaultRule, SimConfig, SimHandle, SimModel};

const SMALL: &str = "llama3.2:1b";
const MEDIUM: &str = "llama3.1:8b";
/// The master key of the test with virtual keys (sent everywhere; ignored when none is set).
const MASTER: &str = "sk-capacity-master-key-1";

/// `small` (1 slot) falls back to `medium` (no limit) on one simulated Ollama; `extra` is more
/// top-level YAML (a `routing:` or `groups:` block, `state:` …).
fn config(sim: &SimHandle, extra: &str) -> String {
    format!(
        r#"
model_list:
  - model_name: small
    litellm_params: {{model: "ollama/{SMALL}", api_base: "{b}", max_tokens: 2048, max_parallel_requests: 1}}
  - model_name: medium
    litellm_params: {{model: "ollama/{MEDIUM}", api_base: "{b}", max_tokens: 8192}}
router_settings: {{fallbacks: [small, medium], num_retries: 0, allowed_fails: 100}}
{extra}
"#,
        b = sim.base_url()
    )
}

/// `switchyard serve` over [`config`].
async fn serve(sim: &SimHandle, extra: &str) -> common::Serve {
    common::serve(common::config_from(&config(sim, extra))).await
}

fn body(text: &str, stream: bool) -> Value {
    json!({
        "model": "small",
        "messages": [{"role": "user", "content": text}],
        "stream": stream,
    })
}

/// A streamed request that has its slot and keeps it (its backend stalls after the first token)
/// until dropped.
struct Held {
    _stream: reqwest::Response,
}

async fn hold(gw: &common::Serve, sim: &SimHandle) -> Held {
    hold_on(gw, sim, SMALL, "small").await
}

/// [`hold`] on `group`, whose deployment serves `model`.
async fn hold_on(gw: &common::Serve, sim: &SimHandle, model: &str, group: &str) -> Held {
    sim.add_fault(FaultRule::for_model(
        model,
        Fault::StallAfter {
            chunks: 1,
            stall: Duration::from_secs(120),
        },
        Some(1),
    ));
    let mut b = body("hold the slot", true);
    b["model"] = json!(group);
    let mut resp = common::client()
        .post(gw.url("/v1/chat/completions"))
        .json(&b)
        .bearer_auth(MASTER)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.chunk().await.unwrap().is_some(),
        "the held stream began"
    );
    Held { _stream: resp }
}

/// One metric's value from the gateway's `/metrics` (0 when absent).
async fn metric(gw: &common::Serve, series: &str) -> f64 {
    let text = common::client()
        .get(gw.url("/metrics"))
        .bearer_auth(MASTER)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

async fn wait_depth(gw: &common::Serve, group: &str, depth: f64) {
    let series = format!("switchyard_queue_depth{{group=\"{group}\"}}");
    common::eventually(20, &format!("{series} = {depth}"), || async {
        metric(gw, &series).await == depth
    })
    .await;
}

/// Sends a request in a task of its own; its answer: status, headers and JSON body.
fn send(
    gw: &common::Serve,
    body: Value,
    headers: &[(&'static str, &'static str)],
) -> tokio::task::JoinHandle<(u16, reqwest::header::HeaderMap, Value)> {
    let mut req = common::client()
        .post(gw.url("/v1/chat/completions"))
        .json(&body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    tokio::spawn(async move {
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let json = resp.json().await.unwrap_or(Value::Null);
        (status, headers, json)
    })
}

fn header<'a>(h: &'a reqwest::header::HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn a_full_deployment_queues_the_next_request_and_it_never_spills_by_default() {
    let sim = common::reference_ollama().await;
    let gw = serve(&sim, "").await;
    let held = hold(&gw, &sim).await;
    let waiting = send(&gw, body("wait for the small model", false), &[]);
    wait_depth(&gw, "small", 1.0).await;
    assert_eq!(
        sim.request_count(SMALL),
        1,
        "the waiting request is not sent"
    );
    drop(held);
    let (status, h, json) = waiting.await.unwrap();
    assert_eq!(status, 200, "{json}");
    assert_eq!(header(&h, "x-switchyard-group"), Some("small"));
    let queued: u64 = header(&h, "x-switchyard-queued-ms")
        .unwrap()
        .parse()
        .unwrap();
    assert!(queued > 0);
    assert_eq!(header(&h, "x-switchyard-spilled"), None);
    assert_eq!(
        sim.request_count(MEDIUM),
        0,
        "spill_after defaults to never"
    );
    wait_depth(&gw, "small", 0.0).await;
}

#[tokio::test]
async fn priority_goes_first_and_a_bad_priority_is_a_400() {
    let sim = common::reference_ollama().await;
    let gw = serve(&sim, "").await;
    let held = hold(&gw, &sim).await;
    let low = send(&gw, body("low priority", false), &[]);
    wait_depth(&gw, "small", 1.0).await;
    let high = send(
        &gw,
        body("high priority", false),
        &[("x-switchyard-priority", "5")],
    );
    wait_depth(&gw, "small", 2.0).await;
    drop(held);
    assert_eq!(high.await.unwrap().0, 200);
    assert_eq!(low.await.unwrap().0, 200);
    let order: Vec<String> = sim
        .requests()
        .iter()
        .map(|r| r.body.to_string())
        .filter(|b| b.contains("priority"))
        .collect();
    assert_eq!(order.len(), 2);
    assert!(
        order[0].contains("high priority"),
        "the higher priority was served first: {order:?}"
    );

    let (status, _, json) = send(&gw, body("x", false), &[("x-switchyard-priority", "soon")])
        .await
        .unwrap();
    assert_eq!(status, 400);
    assert_eq!(json["error"]["param"], "x-switchyard-priority");
}

/// A request with `key` as its bearer, in a task of its own; its status.
fn send_as(gw: &common::Serve, key: &str, text: &str) -> tokio::task::JoinHandle<u16> {
    let req = common::client()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(key)
        .json(&body(text, false));
    tokio::spawn(async move { req.send().await.unwrap().status().as_u16() })
}

#[tokio::test]
async fn a_virtual_keys_metadata_priority_goes_first() {
    let sim = common::reference_ollama().await;
    let dir = tempfile::tempdir().unwrap();
    let text = config(&sim, &format!("general_settings: {{master_key: {MASTER}}}"));
    let gw = common::serve_with(
        common::config_from(&text),
        switchyard::ServeOptions {
            data_dir: Some(dir.path().to_path_buf()),
            embedded_prober: Some(false),
            ..Default::default()
        },
    )
    .await;
    let mut keys = Vec::new();
    for metadata in [json!({}), json!({"priority": 3})] {
        let k: Value = common::client()
            .post(gw.url("/key/generate"))
            .bearer_auth(MASTER)
            .json(&json!({"metadata": metadata}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        keys.push(k["key"].as_str().unwrap().to_owned());
    }
    let held = hold(&gw, &sim).await;
    let plain = send_as(&gw, &keys[0], "plain key priority");
    wait_depth(&gw, "small", 1.0).await;
    let vip = send_as(&gw, &keys[1], "vip key priority");
    wait_depth(&gw, "small", 2.0).await;
    drop(held);
    assert_eq!(vip.await.unwrap(), 200);
    assert_eq!(plain.await.unwrap(), 200);
    let order: Vec<String> = sim
        .requests()
        .iter()
        .map(|r| r.body.to_string())
        .filter(|b| b.contains("key priority"))
        .collect();
    assert_eq!(order.len(), 2);
    assert!(order[0].contains("vip"), "{order:?}");
}

#[tokio::test]
async fn a_full_queue_answers_429_with_retry_after() {
    let sim = common::reference_ollama().await;
    let gw = serve(&sim, "routing: {max_queue_depth: 1}").await;
    let held = hold(&gw, &sim).await;
    let waiting = send(&gw, body("first in the queue", false), &[]);
    wait_depth(&gw, "small", 1.0).await;
    let (status, h, json) = send(&gw, body("one too many", false), &[]).await.unwrap();
    assert_eq!(status, 429, "{json}");
    assert!(header(&h, "retry-after").is_some());
    assert_eq!(json["error"]["code"], "queue_full");
    assert_eq!(json["error"]["type"], "rate_limit_error");
    drop(held);
    assert_eq!(waiting.await.unwrap().0, 200);
    assert_eq!(
        metric(
            &gw,
            "switchyard_queue_rejections_total{group=\"small\",reason=\"queue_full\"}"
        )
        .await,
        1.0
    );
}

#[tokio::test]
async fn a_wait_past_queue_timeout_answers_429_with_retry_after() {
    let sim = common::reference_ollama().await;
    let gw = serve(&sim, "routing: {queue_timeout: 300ms}").await;
    let _held = hold(&gw, &sim).await;
    let (status, h, json) = send(&gw, body("too long a wait", false), &[])
        .await
        .unwrap();
    assert_eq!(status, 429, "{json}");
    assert!(header(&h, "retry-after").is_some());
    assert_eq!(json["error"]["code"], "queue_timeout");
    assert_eq!(sim.request_count(SMALL), 1);
    assert_eq!(sim.request_count(MEDIUM), 0);
}

#[tokio::test]
async fn a_caller_that_leaves_while_queued_leaves_the_queue_at_once() {
    let sim = common::reference_ollama().await;
    // Keep-alive comments every 100 ms: the queued stream opens and shows it is waiting.
    let gw = serve(&sim, "gateway: {sse_keepalive: 100ms}").await;
    let _held = hold(&gw, &sim).await;
    let mut queued = common::client()
        .post(gw.url("/v1/chat/completions"))
        .json(&body("I will not wait", true))
        .send()
        .await
        .unwrap();
    assert_eq!(queued.status(), 200);
    let first = queued.chunk().await.unwrap().unwrap();
    assert!(
        String::from_utf8_lossy(&first).starts_with(':'),
        "a keep-alive comment while queued"
    );
    wait_depth(&gw, "small", 1.0).await;
    drop(queued);
    // The slot is still held, so only leaving empties the queue.
    wait_depth(&gw, "small", 0.0).await;
    assert_eq!(sim.request_count(SMALL), 1);
}

#[tokio::test]
async fn spill_after_sends_a_request_that_waited_that_long_to_the_next_group() {
    let sim = common::reference_ollama().await;
    let gw = serve(&sim, "groups: {small: {spill_after: 400ms}}").await;
    let _held = hold(&gw, &sim).await;
    let (status, h, json) = send(&gw, body("spill me", false), &[]).await.unwrap();
    assert_eq!(status, 200, "{json}");
    assert_eq!(header(&h, "x-switchyard-group"), Some("medium"));
    assert_eq!(header(&h, "x-switchyard-requested-group"), Some("small"));
    let queued: u64 = header(&h, "x-switchyard-queued-ms")
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        queued >= 400,
        "spilled after {queued} ms, before spill_after"
    );
    let why = header(&h, "x-switchyard-spilled").unwrap();
    assert!(
        why.contains("spill_after") && why.contains("small"),
        "{why}"
    );
    assert_eq!(
        metric(
            &gw,
            "switchyard_spills_total{group=\"small\",reason=\"waited\"}"
        )
        .await,
        1.0
    );
}

#[tokio::test]
async fn spill_after_zero_spills_at_once_to_a_group_with_a_free_slot() {
    let sim = common::reference_ollama().await;
    let gw = serve(&sim, "routing: {spill_after: 0}").await;
    let _held = hold(&gw, &sim).await;
    let (status, h, json) = send(&gw, body("anyone free", false), &[]).await.unwrap();
    assert_eq!(status, 200, "{json}");
    assert_eq!(header(&h, "x-switchyard-group"), Some("medium"));
    assert_eq!(header(&h, "x-switchyard-queued-ms"), None, "no wait");
    assert!(header(&h, "x-switchyard-spilled").is_some());
}

#[tokio::test]
async fn slots_come_from_llamacpp_props_total_slots() {
    let sim = SimHandle::start(SimConfig::llamacpp(SimModel::new("qwen", 8192)))
        .await
        .unwrap();
    let text = format!(
        r#"
model_list:
  - model_name: small
    litellm_params: {{model: "openai/qwen", api_base: "{b}"}}
    model_info: {{max_input_tokens: 8192}}
prober: {{interval: 100ms}}
"#,
        b = sim.base_url()
    );
    let gw = common::serve_with(
        common::config_from(&text),
        switchyard::ServeOptions {
            embedded_prober: Some(true),
            ..Default::default()
        },
    )
    .await;
    // The prober reads total_slots; /v1/explain then shows the deployment's slots.
    common::eventually(20, "explain shows the slots from /props", || async {
        let e: Value = common::client()
            .post(gw.url("/v1/explain"))
            .json(&body("hi", false))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        e.to_string().contains("slots in use (total_slots)")
    })
    .await;
    // llama.cpp's first SSE chunk is the role alone: stall after the first token.
    sim.add_fault(FaultRule::for_model(
        "qwen",
        Fault::StallAfter {
            chunks: 2,
            stall: Duration::from_secs(120),
        },
        Some(1),
    ));
    let mut held = common::client()
        .post(gw.url("/v1/chat/completions"))
        .json(&body("hold the slot", true))
        .send()
        .await
        .unwrap();
    assert!(held.chunk().await.unwrap().is_some());
    let waiting = send(&gw, body("wait for the one slot", false), &[]);
    wait_depth(&gw, "small", 1.0).await;
    drop(held);
    let (status, h, json) = waiting.await.unwrap();
    assert_eq!(status, 200, "{json}");
    assert!(header(&h, "x-switchyard-queued-ms").is_some());
}

#[tokio::test]
async fn two_router_replicas_share_the_slots_through_redis() {
    if !common::redis_available().await {
        eprintln!("skipped: no Redis on 127.0.0.1:6379");
        return;
    }
    let sim = common::reference_ollama().await;
    let text = config(
        &sim,
        &format!(
            "state: {{redis_url: \"redis://127.0.0.1:6379\", key_prefix: \"{}\"}}",
            common::unique_prefix()
        ),
    );
    let one = common::serve(common::config_from(&text)).await;
    let two = common::serve(common::config_from(&text)).await;
    let held = hold(&one, &sim).await;
    // Replica two has nothing in flight itself, yet the one slot is taken.
    let waiting = send(&two, body("through the other replica", false), &[]);
    wait_depth(&two, "small", 1.0).await;
    assert_eq!(sim.request_count(SMALL), 1);
    drop(held);
    let (status, h, json) = waiting.await.unwrap();
    assert_eq!(status, 200, "{json}");
    assert_eq!(header(&h, "x-switchyard-group"), Some("small"));
    assert!(header(&h, "x-switchyard-queued-ms").is_some());
}

/// A spilling request never takes the slot a later group's own queued request is waiting for:
/// with `medium` full and a request of its own queued there, a `small` request that may spill
/// (`spill_after: 0`) is served by `medium` only after that request.
#[tokio::test]
async fn a_spill_waits_behind_the_later_groups_own_queue() {
    let sim = common::reference_ollama().await;
    let text = config(&sim, "routing: {spill_after: 0}").replace(
        "max_tokens: 8192}",
        "max_tokens: 8192, max_parallel_requests: 1}",
    );
    let gw = common::serve(common::config_from(&text)).await;
    let _small = hold(&gw, &sim).await;
    let medium_held = hold_on(&gw, &sim, MEDIUM, "medium").await;

    // medium's own request queues first, then a small request that may spill there.
    let own = send(
        &gw,
        json!({"model": "medium", "messages": [{"role": "user", "content": "medium's own"}]}),
        &[],
    );
    wait_depth(&gw, "medium", 1.0).await;
    let spiller = send(&gw, body("would spill", false), &[]);
    wait_depth(&gw, "small", 1.0).await;

    drop(medium_held);
    let (status, h, json) = own.await.unwrap();
    assert_eq!(status, 200, "{json}");
    assert_eq!(header(&h, "x-switchyard-group"), Some("medium"));
    let (status, h, json) = spiller.await.unwrap();
    assert_eq!(status, 200, "{json}");
    assert_eq!(header(&h, "x-switchyard-group"), Some("medium"));
    assert!(header(&h, "x-switchyard-spilled").is_some());
    // In medium's order of service: its own request, then the spilled one.
    let served: Vec<String> = sim
        .requests()
        .iter()
        .filter(|r| r.model == MEDIUM)
        .map(|r| r.body.to_string())
        .collect();
    let at = |needle: &str| served.iter().position(|b| b.contains(needle)).unwrap();
    assert!(at("medium's own") < at("would spill"), "{served:#?}");
}
