//! Helpers shared by the ledger's integration tests: sample records, and a PostgreSQL store
//! confined to a throw-away schema (or a skip notice when no server is running).

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::str::FromStr;

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use switchyard_ledger::{Attempt, PostgresConfig, PostgresStore, UsageRecord};

pub const PG_SKIP: &str = "skipped: PostgreSQL not reachable at 127.0.0.1:5432";
const PG_URLS: [&str; 2] = [
    "postgres://postgres@127.0.0.1:5432/test",
    "postgres://root@127.0.0.1:5432/test",
];

/// The first of the test URLs a PostgreSQL server answers on, or `None` (after printing the
/// skip notice).
pub async fn pg_url() -> Option<&'static str> {
    for url in PG_URLS {
        let Ok(options) = PgConnectOptions::from_str(url) else {
            continue;
        };
        if let Ok(conn) = PgConnection::connect_with(&options).await {
            conn.close().await.ok();
            return Some(url);
        }
    }
    eprintln!("{PG_SKIP}");
    None
}

/// A PostgreSQL store in a fresh schema; drop it with [`PgGuard::cleanup`].
pub struct PgGuard {
    pub store: PostgresStore,
    url: String,
    schema: String,
}

impl PgGuard {
    /// Connects as `postgres`, then `root`; `None` (after printing the skip notice) if neither
    /// works.
    pub async fn connect() -> Option<Self> {
        for url in PG_URLS {
            let Ok(options) = PgConnectOptions::from_str(url) else {
                continue;
            };
            let Ok(conn) = PgConnection::connect_with(&options).await else {
                continue;
            };
            conn.close().await.ok();
            let schema = format!("ledger_test_{}", uuid::Uuid::new_v4().simple());
            let config = PostgresConfig::new(url).with_schema(schema.clone());
            let store = PostgresStore::connect(config)
                .await
                .expect("open PostgreSQL store");
            return Some(Self {
                store,
                url: url.to_owned(),
                schema,
            });
        }
        eprintln!("{PG_SKIP}");
        None
    }

    /// Drops the schema and everything in it.
    pub async fn cleanup(self) {
        let options = PgConnectOptions::from_str(&self.url).unwrap();
        let mut conn = PgConnection::connect_with(&options).await.unwrap();
        sqlx::query(&format!("DROP SCHEMA \"{}\" CASCADE", self.schema))
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.ok();
    }
}

/// 2026-01-01T00:00:00Z in unix milliseconds.
pub const DAY0_MS: i64 = 1_767_225_600_000;
pub const DAY_MS: i64 = 86_400_000;

/// A successful record with distinctive numbers derived from `i`.
pub fn record(id: &str, i: u32) -> UsageRecord {
    UsageRecord {
        request_id: id.to_owned(),
        time_ms: DAY0_MS + i64::from(i) * 1000,
        api_key_id: "key-a".to_owned(),
        requested_group: "small".to_owned(),
        served_group: "small".to_owned(),
        deployment: "ollama-1".to_owned(),
        backend_model: "qwen3:0.6b".to_owned(),
        prompt_tokens: 10 + i,
        completion_tokens: 2 * i + 1,
        tokens_estimated: false,
        latency_ms: 100 + i,
        ttft_ms: Some(5 + i),
        streamed: true,
        status: "ok".to_owned(),
        http_status: 200,
        attempts: vec![Attempt {
            deployment: "ollama-1".to_owned(),
            failure_class: String::new(),
            message: String::new(),
            prompt_tokens: 10 + i,
            completion_tokens: 2 * i + 1,
        }],
        traceparent: None,
        api: "openai.chat".to_owned(),
    }
}
