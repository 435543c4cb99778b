//! The usage ledger: one durable record per request.
//!
//! Three parts, usable separately:
//! - [`UsageStore`]: where records live — [`SqliteStore`] (the default, one file) or
//!   [`PostgresStore`]. Inserts are idempotent on `request_id`; queries filter and group, and
//!   answer one bounded page at a time (a listing continues through its cursor).
//! - [`LedgerService`] / [`serve_ledger`]: the `switchyard.ledger.v1.Ledger` gRPC service over a
//!   store, for a ledger running as its own process.
//! - [`Recorder`]: what the router holds. [`Recorder::record`] never blocks and never fails; a
//!   background task batches records to the ledger (in-process store or remote gRPC) and keeps
//!   whatever it cannot deliver in an fsync'd on-disk spool until the ledger is back.

mod days;
mod error;
mod metrics;
pub mod proto;
mod recorder;
mod service;
mod sql;
mod store;
mod trace;
mod validate;

pub use error::{PARAM_METADATA, QueryError, ServeError, StoreError};
pub use metrics::LedgerMetrics;
pub use proto::{
    Attempt, GroupBy, RecordAck, RecordBatch, RejectedRecord, UsageAggregate, UsageQuery,
    UsageQueryResponse, UsageRecord,
};
pub use recorder::{
    FlushOutcome, LedgerTarget, Recorder, RecorderConfig, RecorderError, RecorderStats,
};
pub use service::{LedgerService, serve_ledger, serve_ledger_service};
pub use sql::{DEFAULT_QUERY_LIMIT, MAX_PAGE_BYTES, MAX_QUERY_LIMIT};
pub use store::{BatchOutcome, PostgresConfig, PostgresStore, SqliteStore, UsageStore, open_store};
