//! Both stores against real databases: schema from nothing, idempotent and batched inserts,
//! every filter and every grouping checked against a reference computed in Rust.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{BTreeMap, HashSet};

use common::{DAY_MS, DAY0_MS, PgGuard, record};
use prost::Message;
use switchyard_ledger::{
    Attempt, GroupBy, MAX_PAGE_BYTES, MAX_QUERY_LIMIT, SqliteStore, StoreError, UsageAggregate,
    UsageQuery, UsageRecord, UsageStore,
};

const KEYS: [&str; 3] = ["key-a", "key-b", "key-c"];
const GROUPS: [&str; 2] = ["large", "small"];
const DEPLOYMENTS: [&str; 3] = ["llama-1", "ollama-1", "ollama-2"];
const MODELS: [&str; 2] = ["qwen3:0.6b", "qwen3:8b"];

/// 40 records over three days, with every dimension varying independently, some failures, a
/// fallback with failed attempts, and a record nobody served.
fn dataset() -> Vec<UsageRecord> {
    (0..40u32)
        .map(|i| {
            let mut r = record(&format!("req-{i:03}"), i);
            let iu = i as usize;
            r.time_ms = DAY0_MS + i64::from(i % 3) * DAY_MS + i64::from(i) * 1000;
            r.api_key_id = KEYS[iu % 3].to_owned();
            r.requested_group = GROUPS[iu % 2].to_owned();
            r.served_group = r.requested_group.clone();
            r.deployment = DEPLOYMENTS[(iu / 2) % 3].to_owned();
            r.backend_model = MODELS[(iu / 3) % 2].to_owned();
            r.api = ["openai.chat", "ollama.chat", "anthropic.messages"][iu % 3].to_owned();
            r.tokens_estimated = i % 4 == 0;
            r.streamed = i % 5 != 0;
            if !r.streamed {
                r.ttft_ms = None;
            }
            if i % 7 == 3 {
                r.status = "context_length_exceeded".to_owned();
                r.http_status = 400;
                r.completion_tokens = 0;
                r.attempts = vec![Attempt {
                    deployment: r.deployment.clone(),
                    failure_class: "overflow".to_owned(),
                    message: "prompt too long".to_owned(),
                    ..Default::default()
                }];
            }
            if i % 11 == 5 {
                r.served_group = "large".to_owned();
                r.attempts.insert(
                    0,
                    Attempt {
                        deployment: "ollama-2".to_owned(),
                        failure_class: "connect".to_owned(),
                        message: "connection refused".to_owned(),
                        prompt_tokens: 0,
                        completion_tokens: 0,
                    },
                );
            }
            if i == 39 {
                r.status = "service_unavailable".to_owned();
                r.http_status = 503;
                r.served_group.clear();
                r.deployment.clear();
                r.backend_model.clear();
                r.prompt_tokens = 0;
                r.completion_tokens = 0;
                r.ttft_ms = None;
            }
            r
        })
        .collect()
}

fn matches(q: &UsageQuery, r: &UsageRecord) -> bool {
    q.from_ms.is_none_or(|f| r.time_ms >= f)
        && q.to_ms.is_none_or(|t| r.time_ms < t)
        && q.group.as_ref().is_none_or(|g| &r.requested_group == g)
        && q.deployment.as_ref().is_none_or(|d| &r.deployment == d)
        && q.api_key_id.as_ref().is_none_or(|k| &r.api_key_id == k)
        && q.status.as_ref().is_none_or(|s| &r.status == s)
        && q.api.as_ref().is_none_or(|a| &r.api == a)
}

fn key_of(group_by: GroupBy, r: &UsageRecord) -> String {
    match group_by {
        GroupBy::None => unreachable!(),
        GroupBy::Model => r.backend_model.clone(),
        GroupBy::Group => r.requested_group.clone(),
        GroupBy::Key => r.api_key_id.clone(),
        GroupBy::Deployment => r.deployment.clone(),
        GroupBy::Api => r.api.clone(),
        GroupBy::Day => {
            let day = (r.time_ms - DAY0_MS) / DAY_MS;
            format!("2026-01-{:02}", day + 1)
        }
    }
}

/// What the store should answer, computed directly.
fn reference(data: &[UsageRecord], q: &UsageQuery) -> (Vec<String>, Vec<UsageAggregate>) {
    let group_by = GroupBy::try_from(q.group_by).unwrap();
    let limit = if q.limit == 0 { 1000 } else { q.limit as usize };
    let mut hits: Vec<&UsageRecord> = data.iter().filter(|r| matches(q, r)).collect();
    if group_by == GroupBy::None {
        hits.sort_by(|a, b| (b.time_ms, &b.request_id).cmp(&(a.time_ms, &a.request_id)));
        let ids = hits
            .iter()
            .take(limit)
            .map(|r| r.request_id.clone())
            .collect();
        return (ids, Vec::new());
    }
    let mut groups: BTreeMap<String, UsageAggregate> = BTreeMap::new();
    for r in &hits {
        let key = key_of(group_by, r);
        let a = groups.entry(key.clone()).or_insert_with(|| UsageAggregate {
            key,
            ..Default::default()
        });
        a.requests += 1;
        a.failed_requests += u64::from(r.status != "ok");
        a.prompt_tokens += u64::from(r.prompt_tokens);
        a.completion_tokens += u64::from(r.completion_tokens);
    }
    let total = hits.len() as f64;
    let mut aggs: Vec<UsageAggregate> = groups
        .into_values()
        .map(|mut a| {
            a.share_of_requests = a.requests as f64 / total;
            a
        })
        .collect();
    if group_by != GroupBy::Day {
        aggs.sort_by(|a, b| b.requests.cmp(&a.requests).then_with(|| a.key.cmp(&b.key)));
    }
    aggs.truncate(limit);
    (Vec::new(), aggs)
}

/// Every filter alone, a few combinations, an empty result and a limit.
fn queries() -> Vec<UsageQuery> {
    let base = UsageQuery::default();
    vec![
        base.clone(),
        UsageQuery {
            from_ms: Some(DAY0_MS + DAY_MS),
            ..base.clone()
        },
        UsageQuery {
            to_ms: Some(DAY0_MS + DAY_MS),
            ..base.clone()
        },
        UsageQuery {
            from_ms: Some(DAY0_MS + DAY_MS),
            to_ms: Some(DAY0_MS + 2 * DAY_MS),
            ..base.clone()
        },
        UsageQuery {
            group: Some("large".into()),
            ..base.clone()
        },
        UsageQuery {
            deployment: Some("ollama-2".into()),
            ..base.clone()
        },
        UsageQuery {
            api_key_id: Some("key-b".into()),
            ..base.clone()
        },
        UsageQuery {
            status: Some("ok".into()),
            ..base.clone()
        },
        UsageQuery {
            status: Some("context_length_exceeded".into()),
            ..base.clone()
        },
        UsageQuery {
            from_ms: Some(DAY0_MS),
            to_ms: Some(DAY0_MS + 3 * DAY_MS),
            group: Some("small".into()),
            api_key_id: Some("key-a".into()),
            status: Some("ok".into()),
            ..base.clone()
        },
        UsageQuery {
            api_key_id: Some("nobody".into()),
            ..base.clone()
        },
        UsageQuery {
            api: Some("ollama.chat".into()),
            ..base.clone()
        },
        UsageQuery { limit: 2, ..base },
    ]
}

const GROUP_BYS: [GroupBy; 7] = [
    GroupBy::None,
    GroupBy::Model,
    GroupBy::Group,
    GroupBy::Day,
    GroupBy::Key,
    GroupBy::Deployment,
    GroupBy::Api,
];

async fn exercise(store: &dyn UsageStore) {
    let data = dataset();

    // Batched insert, then the same batch again: nothing new.
    let first = store.insert_batch(&data).await.unwrap();
    assert_eq!((first.inserted, first.duplicates), (40, 0));
    let again = store.insert_batch(&data).await.unwrap();
    assert_eq!((again.inserted, again.duplicates), (0, 40));

    // Duplicates inside one batch, a duplicate of a stored record, and an invalid record.
    let mixed = vec![
        record("dup-1", 1),
        record("dup-1", 1),
        data[0].clone(),
        UsageRecord::default(),
    ];
    let out = store.insert_batch(&mixed).await.unwrap();
    assert_eq!(
        (out.inserted, out.duplicates, out.rejected.len()),
        (1, 2, 1)
    );
    assert_eq!(out.rejected[0].reason, "request_id is empty");
    let only = UsageQuery {
        from_ms: Some(DAY0_MS + 1000),
        to_ms: Some(DAY0_MS + 1001),
        api_key_id: Some("key-a".into()),
        group: Some("small".into()),
        ..Default::default()
    };
    let listed = store.query(&only).await.unwrap().records;
    assert_eq!(listed.iter().filter(|r| r.request_id == "dup-1").count(), 1);

    // Every query × every grouping against the reference (dup-1 is outside the data's keys).
    let mut all = data.clone();
    all.push(record("dup-1", 1));
    for q in queries() {
        for group_by in GROUP_BYS {
            let q = UsageQuery {
                group_by: group_by as i32,
                ..q.clone()
            };
            let got = store.query(&q).await.unwrap();
            let (ids, aggs) = reference(&all, &q);
            let got_ids: Vec<String> = got.records.iter().map(|r| r.request_id.clone()).collect();
            assert_eq!(got_ids, ids, "records for {q:?}");
            assert_eq!(got.aggregates.len(), aggs.len(), "aggregates for {q:?}");
            for (g, want) in got.aggregates.iter().zip(&aggs) {
                assert_eq!(
                    (
                        &g.key,
                        g.requests,
                        g.failed_requests,
                        g.prompt_tokens,
                        g.completion_tokens
                    ),
                    (
                        &want.key,
                        want.requests,
                        want.failed_requests,
                        want.prompt_tokens,
                        want.completion_tokens
                    ),
                    "aggregate for {q:?}"
                );
                assert!(
                    (g.share_of_requests - want.share_of_requests).abs() < 1e-9,
                    "share for {q:?}"
                );
            }
        }
    }

    // Records come back exactly as written.
    let listed = store.query(&UsageQuery::default()).await.unwrap().records;
    let by_id: std::collections::HashMap<_, _> =
        listed.iter().map(|r| (r.request_id.clone(), r)).collect();
    for r in &data {
        assert_eq!(by_id[&r.request_id], r);
    }

    // A batch far larger than one INSERT statement.
    let big: Vec<UsageRecord> = (0..1000).map(|i| record(&format!("big-{i}"), i)).collect();
    let out = store.insert_batch(&big).await.unwrap();
    assert_eq!((out.inserted, out.duplicates), (1000, 0));
    let q = UsageQuery {
        limit: 5000,
        ..Default::default()
    };
    let ids: HashSet<String> = store
        .query(&q)
        .await
        .unwrap()
        .records
        .into_iter()
        .map(|r| r.request_id)
        .collect();
    assert_eq!(ids.len(), 1041);

    // Page by page through the cursor: every record exactly once, newest first (many records
    // share a millisecond: ties are split by request_id, in the database's own order).
    let (mut seen, mut cursor, mut pages) = (Vec::new(), None, 0);
    loop {
        let page = store
            .query(&UsageQuery {
                limit: 100,
                cursor: cursor.take(),
                ..Default::default()
            })
            .await
            .unwrap();
        pages += 1;
        seen.extend(
            page.records
                .iter()
                .map(|r| (r.time_ms, r.request_id.clone())),
        );
        if !page.has_more {
            assert!(page.next_cursor.is_empty());
            break;
        }
        assert_eq!(page.records.len(), 100);
        cursor = Some(page.next_cursor);
    }
    assert_eq!(pages, 11);
    assert_eq!(seen.len(), 1041);
    assert!(seen.windows(2).all(|w| w[0].0 >= w[1].0), "newest first");
    assert_eq!(
        seen.iter().map(|(_, id)| id).collect::<HashSet<_>>().len(),
        1041
    );
    // Grouped totals say whether more groups follow, and have no cursor.
    let groups = store
        .query(&UsageQuery {
            group_by: GroupBy::Deployment as i32,
            limit: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(groups.aggregates.len(), 1);
    assert!(groups.has_more && groups.next_cursor.is_empty());

    // Bad queries are the caller's fault, and name the field at fault.
    for (bad, param) in [
        (
            UsageQuery {
                group_by: 99,
                ..Default::default()
            },
            "group_by",
        ),
        (
            UsageQuery {
                limit: MAX_QUERY_LIMIT + 1,
                ..Default::default()
            },
            "limit",
        ),
        (
            UsageQuery {
                from_ms: Some(2),
                to_ms: Some(1),
                ..Default::default()
            },
            "from_ms",
        ),
        (
            UsageQuery {
                cursor: Some("zz".into()),
                ..Default::default()
            },
            "cursor",
        ),
    ] {
        match store.query(&bad).await {
            Err(StoreError::InvalidQuery { param: p, .. }) => assert_eq!(p, param),
            other => panic!("{bad:?} gave {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_page_stops_at_its_byte_cap_and_the_cursor_continues() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("ledger.db"))
        .await
        .unwrap();
    // About 8.4 kB each: 1200 of them are more than one page can hold.
    let fat: Vec<UsageRecord> = (0..1200u32)
        .map(|i| {
            let mut r = record(&format!("fat-{i:04}"), i / 3);
            r.attempts = vec![
                Attempt {
                    deployment: "ollama-1".into(),
                    failure_class: "connect".into(),
                    message: "x".repeat(1024),
                    ..Default::default()
                };
                8
            ];
            r
        })
        .collect();
    assert_eq!(store.insert_batch(&fat).await.unwrap().inserted, 1200);
    let q = UsageQuery {
        limit: MAX_QUERY_LIMIT,
        ..Default::default()
    };
    let first = store.query(&q).await.unwrap();
    assert!(first.has_more);
    let sizes: Vec<usize> = first.records.iter().map(Message::encoded_len).collect();
    let total: usize = sizes.iter().sum();
    assert!(total >= MAX_PAGE_BYTES, "{total}");
    assert!(total - sizes[sizes.len() - 1] < MAX_PAGE_BYTES, "{total}");
    let rest = store
        .query(&UsageQuery {
            cursor: Some(first.next_cursor.clone()),
            ..q
        })
        .await
        .unwrap();
    assert!(!rest.has_more);
    let ids: HashSet<String> = first
        .records
        .iter()
        .chain(&rest.records)
        .map(|r| r.request_id.clone())
        .collect();
    assert_eq!(ids.len(), 1200);
    assert_eq!(first.records.len() + rest.records.len(), 1200);
}

#[tokio::test]
async fn sqlite_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/dir/ledger.db");
    let store = SqliteStore::open(&path).await.unwrap();
    exercise(&store).await;
    drop(store);
    // Reopening keeps the data and does not re-run migrations.
    let store = SqliteStore::open(&path).await.unwrap();
    let q = UsageQuery {
        group_by: GroupBy::Group as i32,
        ..Default::default()
    };
    let total: u64 = store
        .query(&q)
        .await
        .unwrap()
        .aggregates
        .iter()
        .map(|a| a.requests)
        .sum();
    assert_eq!(total, 1041);
}

#[tokio::test]
async fn sqlite_uses_wal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    let store = SqliteStore::open(&path).await.unwrap();
    store.insert_batch(&[record("a", 1)]).await.unwrap();
    assert!(dir.path().join("ledger.db-wal").exists());
}

#[tokio::test]
async fn postgres_store() {
    let Some(pg) = PgGuard::connect().await else {
        return;
    };
    exercise(&pg.store).await;
    pg.cleanup().await;
}

#[tokio::test]
async fn open_store_by_url() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("l.db").display());
    let store = switchyard_ledger::open_store(&url).await.unwrap();
    assert_eq!(
        store
            .insert_batch(&[record("x", 1)])
            .await
            .unwrap()
            .inserted,
        1
    );
    assert!(matches!(
        switchyard_ledger::open_store("mysql://nope").await,
        Err(StoreError::Config(_))
    ));
}
