//! SQLite backend: one file in WAL mode, created if missing. Writes go through a single
//! connection (SQLite has one writer anyway, and this avoids busy errors between our own
//! writers); reads use a small separate pool so queries never wait behind a batch.

use std::path::Path;
use std::time::Duration;

use futures::future::BoxFuture;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::{BatchOutcome, UsageStore, now_ms, outcome, prepare};
use crate::error::StoreError;
use crate::proto::{
    DeleteKeysRequest, KeyLookup, UsageQuery, UsageQueryResponse, UsageRecord, VirtualKey,
};
use crate::sql;

/// How long a connection waits on a lock held by another process before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
const READERS: u32 = 4;

/// A ledger in one SQLite file.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if missing, with its parent directory) the ledger file at `path` and
    /// brings its schema up to date.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref();
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            tokio::fs::create_dir_all(dir).await.map_err(|e| {
                StoreError::Config(format!("cannot create directory {}: {e}", dir.display()))
            })?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // An acknowledged batch is gone from the recorder's spool, so it must survive a
            // power cut: FULL syncs the WAL on every commit.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(BUSY_TIMEOUT);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await?;
        migrate(&writer).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(READERS)
            .connect_with(options.read_only(true))
            .await?;
        Ok(Self { writer, reader })
    }

    async fn insert(&self, records: &[UsageRecord]) -> Result<BatchOutcome, StoreError> {
        let (valid, rejected) = prepare(records);
        let now = now_ms();
        let mut tx = self.writer.begin().await?;
        let mut inserted = 0;
        for chunk in valid.chunks(sql::INSERT_CHUNK) {
            let st = sql::insert(sql::Placeholders::Positional, chunk, now)?;
            inserted += sql::bind(sqlx::query(&st.sql), &st.values)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        tx.commit().await?;
        Ok(outcome(valid.len(), inserted, rejected))
    }

    async fn select(&self, query: &UsageQuery) -> Result<UsageQueryResponse, StoreError> {
        let spec = sql::select(sql::Placeholders::Positional, query)?;
        let st = spec.statement();
        let rows = sql::bind(sqlx::query(&st.sql), &st.values).fetch(&self.reader);
        sql::collect(rows, &spec).await
    }
}

impl UsageStore for SqliteStore {
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
        Box::pin(sql::keys::sqlite::put(&self.writer, key))
    }

    fn get_key<'a>(
        &'a self,
        lookup: &'a KeyLookup,
    ) -> BoxFuture<'a, Result<Option<VirtualKey>, StoreError>> {
        // The writer: a key just created must be found at once.
        Box::pin(sql::keys::sqlite::get(&self.writer, lookup))
    }

    fn list_keys(&self) -> BoxFuture<'_, Result<Vec<VirtualKey>, StoreError>> {
        Box::pin(sql::keys::sqlite::list(&self.reader))
    }

    fn delete_keys<'a>(
        &'a self,
        req: &'a DeleteKeysRequest,
    ) -> BoxFuture<'a, Result<u32, StoreError>> {
        Box::pin(sql::keys::sqlite::delete(&self.writer, req))
    }
}

/// Applies the schema versions not yet recorded in the file.
async fn migrate(pool: &SqlitePool) -> Result<(), StoreError> {
    sqlx::query(sql::MIGRATIONS_TABLE).execute(pool).await?;
    for (version, statements) in sql::MIGRATIONS {
        let version = *version;
        let fail = |source| StoreError::Migration { version, source };
        let mut tx = pool.begin().await.map_err(fail)?;
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
