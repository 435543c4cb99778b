//! Errors of the store and the gRPC server, and how store errors look to gRPC clients.

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or could not be reached; retrying later may succeed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Creating or upgrading the schema failed.
    #[error("schema migration {version} failed: {source}")]
    Migration {
        version: i64,
        #[source]
        source: sqlx::Error,
    },
    /// The query asked for something invalid (bad limit, unknown group_by, inverted range).
    #[error("invalid query: {0}")]
    InvalidQuery(String),
    /// A stored row could not be turned back into a record.
    #[error("corrupt row in the ledger: {0}")]
    Corrupt(String),
    /// The store's own configuration is unusable (bad URL, bad schema name).
    #[error("invalid ledger configuration: {0}")]
    Config(String),
}

impl From<StoreError> for tonic::Status {
    fn from(err: StoreError) -> Self {
        match &err {
            StoreError::InvalidQuery(_) => tonic::Status::invalid_argument(err.to_string()),
            StoreError::Database(_) => tonic::Status::unavailable(err.to_string()),
            StoreError::Migration { .. } | StoreError::Corrupt(_) | StoreError::Config(_) => {
                tonic::Status::internal(err.to_string())
            }
        }
    }
}

/// Why the ledger's gRPC server stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("ledger gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}
