//! PostgreSQL backend, for ledgers shared by several routers. Optionally confined to one schema
//! (created if missing), which is also how tests keep parallel runs apart.

use std::str::FromStr;
use std::time::Duration;

use futures::future::BoxFuture;
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};

use super::{BatchOutcome, UsageStore, now_ms, outcome, prepare};
use crate::error::StoreError;
use crate::proto::{
    DeleteKeysRequest, KeyLookup, UsageQuery, UsageQueryResponse, UsageRecord, VirtualKey,
};
use crate::sql;

/// Serialises schema migrations between ledgers starting at the same time ("SWLD").
const MIGRATION_LOCK: i64 = 0x5357_4c44;

/// Where and how to connect.
#[derive(Clone, Debug)]
pub struct PostgresConfig {
    /// `postgres://user[:password]@host[:port]/database[?sslmode=…]`.
    pub database_url: String,
    /// Schema holding the ledger's tables; `None` uses the connection's default search path.
    pub schema: Option<String>,
    /// Pool size.
    pub max_connections: u32,
    /// How long an operation waits for a pooled connection before failing.
    pub acquire_timeout: Duration,
}

impl PostgresConfig {
    /// Defaults for `database_url`: default schema, 8 connections, 5 s acquire timeout.
    pub fn new(database_url: impl Into<String>) -> Self {
        Self {
            database_url: database_url.into(),
            schema: None,
            max_connections: 8,
            acquire_timeout: Duration::from_secs(5),
        }
    }

    /// Keeps the ledger's tables in `schema`.
    #[must_use]
    pub fn with_schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = Some(schema.into());
        self
    }
}

/// A ledger in a PostgreSQL database.
#[derive(Clone, Debug)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects, creates the schema if one is configured and missing, and brings the tables up
    /// to date.
    pub async fn connect(config: PostgresConfig) -> Result<Self, StoreError> {
        let mut options = PgConnectOptions::from_str(&config.database_url)
            .map_err(|e| StoreError::Config(format!("bad PostgreSQL URL: {e}")))?;
        if let Some(schema) = &config.schema {
            check_identifier(schema)?;
            let mut conn = PgConnection::connect_with(&options).await?;
            sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
                .execute(&mut conn)
                .await?;
            conn.close().await?;
            options = options.options([("search_path", schema.as_str())]);
        }
        let pool = PgPoolOptions::new()
            .max_connections(config.max_connections)
            .acquire_timeout(config.acquire_timeout)
            .connect_with(options)
            .await?;
        migrate(&pool).await?;
        Ok(Self { pool })
    }

    async fn insert(&self, records: &[UsageRecord]) -> Result<BatchOutcome, StoreError> {
        let (valid, rejected) = prepare(records);
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let mut inserted = 0;
        for chunk in valid.chunks(sql::INSERT_CHUNK) {
            let st = sql::insert(sql::Placeholders::Numbered, chunk, now)?;
            inserted += sql::bind(sqlx::query(&st.sql), &st.values)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        tx.commit().await?;
        Ok(outcome(valid.len(), inserted, rejected))
    }

    async fn select(&self, query: &UsageQuery) -> Result<UsageQueryResponse, StoreError> {
        let spec = sql::select(sql::Placeholders::Numbered, query)?;
        let st = spec.statement();
        let rows = sql::bind(sqlx::query(&st.sql), &st.values).fetch(&self.pool);
        sql::collect(rows, &spec).await
    }
}

impl UsageStore for PostgresStore {
    fn insert_batch<'a>(
        &'a self,
        records: &'a [UsageRecord],
    ) -> BoxFuture<'a, Result<BatchOutcome, StoreError>> {
        Box::pin(self.insert(records))
    }

    fn query<'a>(
        &'a self,
        query: &'a UsageQuery,
    ) -> BoxFuture<'a, Result<UsageQueryResponse, StoreError>> {
        Box::pin(self.select(query))
    }

    fn put_key<'a>(&'a self, key: &'a VirtualKey) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(sql::keys::postgres::put(&self.pool, key))
    }

    fn get_key<'a>(
        &'a self,
        lookup: &'a KeyLookup,
    ) -> BoxFuture<'a, Result<Option<VirtualKey>, StoreError>> {
        // The writer: a key just created must be found at once.
        Box::pin(sql::keys::postgres::get(&self.pool, lookup))
    }

    fn list_keys(&self) -> BoxFuture<'_, Result<Vec<VirtualKey>, StoreError>> {
        Box::pin(sql::keys::postgres::list(&self.pool))
    }

    fn delete_keys<'a>(
        &'a self,
        req: &'a DeleteKeysRequest,
    ) -> BoxFuture<'a, Result<u32, StoreError>> {
        Box::pin(sql::keys::postgres::delete(&self.pool, req))
    }
}

/// Schema names are spliced into SQL, so only plain identifiers are allowed.
fn check_identifier(name: &str) -> Result<(), StoreError> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if first_ok && name.len() <= 63 && chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Ok(())
    } else {
        Err(StoreError::Config(format!(
            "schema {name:?} must be a plain identifier (letters, digits, _; at most 63)"
        )))
    }
}

/// Applies the schema versions not yet recorded, holding a transaction-scoped advisory lock.
async fn migrate(pool: &PgPool) -> Result<(), StoreError> {
    for (version, statements) in sql::MIGRATIONS {
        let version = *version;
        let fail = |source| StoreError::Migration { version, source };
        let mut tx = pool.begin().await.map_err(fail)?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *tx)
            .await
            .map_err(fail)?;
        sqlx::query(sql::MIGRATIONS_TABLE)
            .execute(&mut *tx)
            .await
            .map_err(fail)?;
        let applied: i64 = sqlx::query_scalar(sql::MIGRATION_APPLIED)
            .bind(version)
            .fetch_one(&mut *tx)
            .await
            .map_err(fail)?;
        if applied > 0 {
            continue;
        }
        for statement in *statements {
            sqlx::query(statement)
                .execute(&mut *tx)
                .await
                .map_err(fail)?;
        }
        sqlx::query(sql::MIGRATION_MARK)
            .bind(version)
            .bind(now_ms())
            .execute(&mut *tx)
            .await
            .map_err(fail)?;
        tx.commit().await.map_err(fail)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_identifier;

    #[test]
    fn schema_names_are_plain_identifiers() {
        assert!(check_identifier("ledger_test_1").is_ok());
        assert!(check_identifier("1abc").is_err());
        assert!(check_identifier("a\"; drop").is_err());
        assert!(check_identifier("").is_err());
    }
}
