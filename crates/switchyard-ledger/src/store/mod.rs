//! The one storage interface the ledger service and the in-process recorder write through, and
//! the two databases behind it.

mod postgres;
mod sqlite;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use futures::future::BoxFuture;

use crate::error::StoreError;
use crate::proto::{
    DeleteKeysRequest, KeyLookup, RejectedRecord, UsageQuery, UsageQueryResponse, UsageRecord,
    VirtualKey,
};
use crate::validate::normalise;

pub use postgres::{PostgresConfig, PostgresStore};
pub use sqlite::SqliteStore;

/// What one batch insert did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Records newly stored.
    pub inserted: u32,
    /// Records whose `request_id` was already stored (or repeated within the batch).
    pub duplicates: u32,
    /// Records refused as invalid, with the reason.
    pub rejected: Vec<RejectedRecord>,
}

/// Durable storage of usage records.
///
/// Implementations must make [`UsageStore::insert_batch`] idempotent on `request_id` and
/// atomic: either the whole batch is stored (minus duplicates and rejects) or nothing is.
pub trait UsageStore: Send + Sync + 'static {
    /// Stores `records` in one transaction.
    fn insert_batch<'a>(
        &'a self,
        records: &'a [UsageRecord],
    ) -> BoxFuture<'a, Result<BatchOutcome, StoreError>>;

    /// Lists records or grouped totals.
    fn query<'a>(
        &'a self,
        query: &'a UsageQuery,
    ) -> BoxFuture<'a, Result<UsageQueryResponse, StoreError>>;

    /// Creates or replaces a virtual key (by `key_hash`).
    fn put_key<'a>(&'a self, key: &'a VirtualKey) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Finds a virtual key by hash or id.
    fn get_key<'a>(
        &'a self,
        lookup: &'a KeyLookup,
    ) -> BoxFuture<'a, Result<Option<VirtualKey>, StoreError>>;

    /// Every virtual key, oldest first.
    fn list_keys(&self) -> BoxFuture<'_, Result<Vec<VirtualKey>, StoreError>>;

    /// Deletes keys by hash or id; returns how many were deleted.
    fn delete_keys<'a>(
        &'a self,
        req: &'a DeleteKeysRequest,
    ) -> BoxFuture<'a, Result<u32, StoreError>>;
}

/// Opens the store named by `url`: `sqlite://PATH` (or `sqlite:PATH`) or `postgres://…` /
/// `postgresql://…`. The schema is created if missing.
pub async fn open_store(url: &str) -> Result<Arc<dyn UsageStore>, StoreError> {
    if let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        Ok(Arc::new(SqliteStore::open(path).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(
            PostgresStore::connect(PostgresConfig::new(url)).await?,
        ))
    } else {
        Err(StoreError::Config(format!(
            "ledger database URL must start with sqlite:// or postgres://, got {url:?}"
        )))
    }
}

/// Splits a batch into normalised records to insert and rejected ones.
pub(crate) fn prepare(records: &[UsageRecord]) -> (Vec<UsageRecord>, Vec<RejectedRecord>) {
    let mut ok = Vec::with_capacity(records.len());
    let mut rejected = Vec::new();
    for r in records {
        match normalise(r) {
            Ok(n) => ok.push(n),
            Err(reason) => rejected.push(RejectedRecord {
                request_id: r.request_id.clone(),
                reason,
            }),
        }
    }
    (ok, rejected)
}

/// Builds the outcome from the number of valid records and the number actually inserted.
pub(crate) fn outcome(valid: usize, inserted: u64, rejected: Vec<RejectedRecord>) -> BatchOutcome {
    let inserted = u32::try_from(inserted).unwrap_or(u32::MAX);
    let valid = u32::try_from(valid).unwrap_or(u32::MAX);
    BatchOutcome {
        inserted,
        duplicates: valid.saturating_sub(inserted),
        rejected,
    }
}

/// Now, unix milliseconds.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
