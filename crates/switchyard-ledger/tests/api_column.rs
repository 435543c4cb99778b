//! The `api` column (migration 3): which client API a request came through round-trips on both
//! databases, an empty one is stored as `openai.chat`, and a ledger made before the column
//! existed upgrades in place, its old rows reading as `openai.chat`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::str::FromStr;

use common::{pg_url, record};
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use switchyard_ledger::{
    PostgresConfig, PostgresStore, SqliteStore, UsageQuery, UsageRecord, UsageStore,
};

/// The ledger's schema as versions 1 and 2 left it (a fixture: the shipped migrations must
/// upgrade exactly this).
const OLD_SCHEMA: [&str; 4] = [
    "CREATE TABLE ledger_schema_versions (version BIGINT PRIMARY KEY, applied_ms BIGINT NOT NULL)",
    "CREATE TABLE usage_records (
        request_id TEXT PRIMARY KEY, time_ms BIGINT NOT NULL, api_key_id TEXT NOT NULL,
        requested_group TEXT NOT NULL, served_group TEXT NOT NULL, deployment TEXT NOT NULL,
        backend_model TEXT NOT NULL, prompt_tokens BIGINT NOT NULL,
        completion_tokens BIGINT NOT NULL, tokens_estimated BOOLEAN NOT NULL,
        latency_ms BIGINT NOT NULL, ttft_ms BIGINT, streamed BOOLEAN NOT NULL,
        status TEXT NOT NULL, http_status BIGINT NOT NULL, attempts TEXT NOT NULL,
        recorded_ms BIGINT NOT NULL)",
    "CREATE TABLE virtual_keys (key_hash TEXT PRIMARY KEY, key_id TEXT NOT NULL UNIQUE,
        record BYTEA NOT NULL, created_ms BIGINT NOT NULL)",
    "INSERT INTO ledger_schema_versions (version, applied_ms) VALUES (1, 0), (2, 0)",
];

/// One row written by a version-2 ledger.
const OLD_ROW: &str = "INSERT INTO usage_records VALUES ('old-1', 1767225600000, 'key-a', \
    'small', 'small', 'ollama-1', 'qwen3:0.6b', 10, 2, FALSE, 100, 5, TRUE, 'ok', 200, '[]', 0)";

fn with_api(id: &str, i: u32, api: &str) -> UsageRecord {
    let mut r = record(id, i);
    r.api = api.to_owned();
    r
}

async fn listed(store: &dyn UsageStore) -> Vec<UsageRecord> {
    let mut records = store.query(&UsageQuery::default()).await.unwrap().records;
    records.sort_by(|a, b| a.request_id.cmp(&b.request_id));
    records
}

/// Writes three records through `store` and checks what comes back.
async fn round_trip(store: &dyn UsageStore) {
    let written = vec![
        with_api("a-ollama", 1, "ollama.chat"),
        with_api("b-anthropic", 2, "anthropic.messages"),
        with_api("c-empty", 3, ""),
    ];
    let out = store.insert_batch(&written).await.unwrap();
    assert_eq!(out.inserted, 3);
    let read = listed(store).await;
    let apis: Vec<&str> = read.iter().map(|r| r.api.as_str()).collect();
    assert_eq!(apis, ["ollama.chat", "anthropic.messages", "openai.chat"]);
    assert_eq!(read[0], written[0]);
}

#[tokio::test]
async fn sqlite_api_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("ledger.db"))
        .await
        .unwrap();
    round_trip(&store).await;
}

#[tokio::test]
async fn postgres_api_round_trips() {
    let Some(url) = pg_url().await else {
        return;
    };
    let schema = format!("ledger_api_{}", uuid::Uuid::new_v4().simple());
    let store = PostgresStore::connect(PostgresConfig::new(url).with_schema(schema.clone()))
        .await
        .unwrap();
    round_trip(&store).await;
    drop_schema(url, &schema).await;
}

#[tokio::test]
async fn an_old_sqlite_ledger_upgrades() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let options = SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true);
    let mut conn = SqliteConnection::connect_with(&options).await.unwrap();
    for st in OLD_SCHEMA.iter().chain([&OLD_ROW]) {
        sqlx::query(st).execute(&mut conn).await.unwrap();
    }
    conn.close().await.unwrap();

    let store = SqliteStore::open(&path).await.unwrap();
    let read = listed(&store).await;
    assert_eq!(read.len(), 1);
    assert_eq!(
        (read[0].request_id.as_str(), read[0].api.as_str()),
        ("old-1", "openai.chat")
    );
    store
        .insert_batch(&[with_api("new-1", 1, "ollama.generate")])
        .await
        .unwrap();
    drop(store);
    // Reopened: the migration is not applied twice.
    let store = SqliteStore::open(&path).await.unwrap();
    let apis: Vec<String> = listed(&store).await.into_iter().map(|r| r.api).collect();
    assert_eq!(apis, ["ollama.generate", "openai.chat"]);
}

#[tokio::test]
async fn an_old_postgres_ledger_upgrades() {
    let Some(url) = pg_url().await else {
        return;
    };
    let schema = format!("ledger_old_{}", uuid::Uuid::new_v4().simple());
    let mut conn = connect(url).await;
    sqlx::query(&format!("CREATE SCHEMA \"{schema}\""))
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query(&format!("SET search_path TO \"{schema}\""))
        .execute(&mut conn)
        .await
        .unwrap();
    for st in OLD_SCHEMA.iter().chain([&OLD_ROW]) {
        sqlx::query(st).execute(&mut conn).await.unwrap();
    }
    conn.close().await.unwrap();

    let config = PostgresConfig::new(url).with_schema(schema.clone());
    let store = PostgresStore::connect(config.clone()).await.unwrap();
    let read = listed(&store).await;
    assert_eq!(read.len(), 1);
    assert_eq!(
        (read[0].request_id.as_str(), read[0].api.as_str()),
        ("old-1", "openai.chat")
    );
    store
        .insert_batch(&[with_api("new-1", 1, "ollama.generate")])
        .await
        .unwrap();
    drop(store);
    let store = PostgresStore::connect(config).await.unwrap();
    let apis: Vec<String> = listed(&store).await.into_iter().map(|r| r.api).collect();
    assert_eq!(apis, ["ollama.generate", "openai.chat"]);
    drop(store);
    drop_schema(url, &schema).await;
}

async fn connect(url: &str) -> PgConnection {
    let options = PgConnectOptions::from_str(url).unwrap();
    PgConnection::connect_with(&options).await.unwrap()
}

async fn drop_schema(url: &str, schema: &str) {
    let mut conn = connect(url).await;
    sqlx::query(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.ok();
}
