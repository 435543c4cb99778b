//! `GET /v1/usage` as a caller sees it, in `serve` (ledger in process) and split mode (gateway
//! reading a `switchyard ledger` over gRPC): bad parameters are 400 naming the parameter (not a
//! 503 outage), a page never holds more than the cap, and the cursor walks every record exactly
//! once. The ledger is filled directly (a SQLite file in the data directory), not through
//! requests, so a test can hold thousands of records with many sharing one millisecond.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::Path;

use serde_json::Value;
use switchyard_core::config::Config;
use switchyard_ledger::{SqliteStore, UsageRecord, UsageStore};

const BASE_MS: i64 = 1_760_000_000_000;

/// `n` records; every 7 consecutive ones share a millisecond, so pages split inside ties.
async fn fill(dir: &Path, n: usize) -> Vec<String> {
    let store = SqliteStore::open(dir.join(switchyard::usage::SQLITE_FILE))
        .await
        .unwrap();
    let records: Vec<UsageRecord> = (0..n)
        .map(|i| UsageRecord {
            request_id: uuid::Uuid::now_v7().to_string(),
            time_ms: BASE_MS + i64::try_from(i / 7).unwrap(),
            api_key_id: format!("key-{}", i % 3),
            requested_group: "local-small".into(),
            served_group: "local-small".into(),
            deployment: "small".into(),
            backend_model: "llama3.2:1b".into(),
            prompt_tokens: 10,
            completion_tokens: 2,
            status: "ok".into(),
            http_status: 200,
            ..Default::default()
        })
        .collect();
    for chunk in records.chunks(2000) {
        assert_eq!(
            store.insert_batch(chunk).await.unwrap().inserted as usize,
            chunk.len()
        );
    }
    records.into_iter().map(|r| r.request_id).collect()
}

const MODELS: &str = "model_list:\n  - {model_name: local-small, litellm_params: {model: ollama/llama3.2:1b, api_base: \"http://127.0.0.1:9\", max_tokens: 2048}}\n";

/// A gateway over a ledger holding `n` records: `serve`, or split (`ledger` + `gateway`).
struct Setup {
    base: String,
    ids: Vec<String>,
    _stops: Vec<tokio::sync::oneshot::Sender<()>>,
    _dir: tempfile::TempDir,
}

fn stop_pair() -> (
    tokio::sync::oneshot::Sender<()>,
    impl Future<Output = ()> + Send + 'static,
) {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    (tx, async move {
        let _ = rx.await;
    })
}

async fn serve_mode(n: usize) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let ids = fill(dir.path(), n).await;
    let (stop, stopped) = stop_pair();
    let bound = switchyard::serve(
        common::config_from(MODELS),
        "127.0.0.1:0".parse().unwrap(),
        switchyard::ServeOptions {
            data_dir: Some(dir.path().to_path_buf()),
            embedded_prober: Some(false),
            ..Default::default()
        },
        stopped,
    )
    .await
    .unwrap();
    let base = format!("http://{}", bound.addr);
    tokio::spawn(bound.serve);
    Setup {
        base,
        ids,
        _stops: vec![stop],
        _dir: dir,
    }
}

async fn split_mode(n: usize) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let ids = fill(dir.path(), n).await;
    let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
    // The services' futures borrow their config for as long as they run: leaked, test only.
    let data: &'static Path = Box::leak(dir.path().to_path_buf().into_boxed_path());
    let ledger_config: &'static Config = Box::leak(Box::new(common::config_from(MODELS)));
    let (ledger_stop, stopped) = stop_pair();
    let ledger = switchyard::ledger(ledger_config, data, listen, stopped)
        .await
        .unwrap();
    let ledger_addr = ledger.addr;
    tokio::spawn(ledger.serve);
    let config: &'static Config = Box::leak(Box::new(common::config_from(&format!(
        "{MODELS}ledger: {{address: \"http://{ledger_addr}\"}}\n"
    ))));
    let (gateway_stop, stopped) = stop_pair();
    // No router runs: usage queries never reach it.
    let gateway = switchyard::gateway(config, "http://127.0.0.1:9", listen, stopped)
        .await
        .unwrap();
    let base = format!("http://{}", gateway.addr);
    tokio::spawn(gateway.serve);
    Setup {
        base,
        ids,
        _stops: vec![gateway_stop, ledger_stop],
        _dir: dir,
    }
}

async fn get(base: &str, query: &str) -> (u16, Value) {
    let r = common::client()
        .get(format!("{base}/v1/usage?{query}"))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Each bad parameter, with the parameter the answer must name.
const BAD: [(&str, &str); 14] = [
    ("limit=100001", "limit"),
    ("limit=10001", "limit"),
    ("limit=0", "limit"),
    ("limit=-1", "limit"),
    ("limit=ten", "limit"),
    ("from=20&to=10", "from"),
    ("from=yesterday", "from"),
    ("to=1.5", "to"),
    ("group_by=week", "group_by"),
    ("format=xml", "format"),
    ("status=OK%3B%20DROP", "status"),
    ("cursor=not-a-cursor", "cursor"),
    ("group_by=model&cursor=31", "cursor"),
    ("format=csv&limit=100001", "limit"),
];

async fn bad_parameters_are_400(setup: &Setup) {
    for (query, param) in BAD {
        let (status, body) = get(&setup.base, query).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["error"]["type"], "invalid_request_error", "{query}");
        assert_eq!(body["error"]["param"], param, "{query}: {body}");
    }
    let r = common::client()
        .get(format!("{}/v1/usage/summary?from=20&to=10", setup.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // The same parameters, valid, are answered.
    for query in [
        "limit=10000",
        "from=10&to=20",
        "status=ok",
        "group_by=day&limit=1",
    ] {
        let (status, body) = get(&setup.base, query).await;
        assert_eq!(status, 200, "{query}: {body}");
    }
}

#[tokio::test]
async fn bad_parameters_are_400_naming_the_parameter_in_serve_mode() {
    bad_parameters_are_400(&serve_mode(10).await).await;
}

#[tokio::test]
async fn bad_parameters_are_400_naming_the_parameter_in_split_mode() {
    bad_parameters_are_400(&split_mode(10).await).await;
}

/// Walks every JSON page of `query` (with `limit`); returns the ids in order and the page count.
async fn walk(base: &str, query: &str) -> (Vec<String>, usize) {
    let (mut ids, mut pages, mut cursor) = (Vec::new(), 0, None::<String>);
    let mut last_time = i64::MAX;
    loop {
        let mut q = query.to_owned();
        if let Some(c) = &cursor {
            q.push_str(&format!("&cursor={c}"));
        }
        let (status, body) = get(base, &q).await;
        assert_eq!(status, 200, "{q}: {body}");
        pages += 1;
        for r in body["data"].as_array().unwrap() {
            let t = r["time_ms"].as_i64().unwrap();
            assert!(t <= last_time, "newest first across pages");
            last_time = t;
            ids.push(r["request_id"].as_str().unwrap().to_owned());
        }
        assert_eq!(body["object"], "list");
        if body["has_more"] == false {
            assert!(body["next_cursor"].is_null());
            return (ids, pages);
        }
        assert_eq!(body["has_more"], true);
        cursor = Some(body["next_cursor"].as_str().unwrap().to_owned());
        assert!(pages < 1000, "the walk does not end");
    }
}

fn exactly_once(walked: &[String], expected: impl IntoIterator<Item = String>) {
    let unique: HashSet<&String> = walked.iter().collect();
    assert_eq!(unique.len(), walked.len(), "a record came twice");
    let expected: HashSet<String> = expected.into_iter().collect();
    assert_eq!(
        unique,
        expected.iter().collect::<HashSet<_>>(),
        "every record, none missing"
    );
}

async fn cursor_walks_every_record_once(setup: &Setup) {
    let (ids, pages) = walk(&setup.base, "limit=500").await;
    assert_eq!(pages, 5);
    exactly_once(&ids, setup.ids.clone());
    // With a filter: the filter holds on every page.
    let (ids, _) = walk(&setup.base, "limit=100&key=key-1").await;
    let want = setup
        .ids
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 3 == 1)
        .map(|(_, id)| id.clone());
    exactly_once(&ids, want);
    // CSV pages: the cursor is in a header.
    let (mut rows, mut cursor) = (HashSet::new(), None::<String>);
    loop {
        let mut url = format!("{}/v1/usage?format=csv&limit=1000", setup.base);
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let r = common::client().get(url).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let next = r
            .headers()
            .get("x-next-cursor")
            .map(|v| v.to_str().unwrap().to_owned());
        let more = r.headers()["x-has-more"].to_str().unwrap() == "true";
        assert_eq!(more, next.is_some());
        let text = r.text().await.unwrap();
        assert!(text.starts_with("request_id,time_ms,"));
        for line in text.lines().skip(1) {
            assert!(rows.insert(line.split(',').next().unwrap().to_owned()));
        }
        match next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(rows.len(), setup.ids.len());
}

#[tokio::test]
async fn the_cursor_walks_every_record_exactly_once_in_serve_mode() {
    cursor_walks_every_record_once(&serve_mode(2345).await).await;
}

#[tokio::test]
async fn the_cursor_walks_every_record_exactly_once_in_split_mode() {
    cursor_walks_every_record_once(&split_mode(2345).await).await;
}

#[tokio::test]
async fn a_page_holds_at_most_the_cap() {
    let setup = serve_mode(10_050).await;
    let (status, body) = get(&setup.base, "").await;
    assert_eq!(status, 200);
    assert_eq!(body["data"].as_array().unwrap().len(), 1000, "the default");
    assert_eq!(body["has_more"], true);
    let (status, body) = get(&setup.base, "limit=10000").await;
    assert_eq!(status, 200);
    assert_eq!(body["data"].as_array().unwrap().len(), 10_000, "the cap");
    assert_eq!(body["has_more"], true);
    let cursor = body["next_cursor"].as_str().unwrap();
    let (_, rest) = get(&setup.base, &format!("limit=10000&cursor={cursor}")).await;
    assert_eq!(rest["data"].as_array().unwrap().len(), 50);
    assert_eq!(rest["has_more"], false);
    // Grouped totals are small, and say whether more groups follow.
    let (_, groups) = get(&setup.base, "group_by=key&limit=2").await;
    assert_eq!(groups["data"].as_array().unwrap().len(), 2);
    assert_eq!(groups["has_more"], true);
    assert!(groups["next_cursor"].is_null());
}
