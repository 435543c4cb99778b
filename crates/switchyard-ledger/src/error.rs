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
    /// The query asked for something invalid (bad limit, unknown group_by, inverted range,
    /// unreadable cursor); `param` names the [`UsageQuery`](crate::UsageQuery) field at fault.
    #[error("invalid query: {message}")]
    InvalidQuery {
        param: &'static str,
        message: String,
    },
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
            StoreError::InvalidQuery { param, message } => {
                let mut metadata = tonic::metadata::MetadataMap::new();
                metadata.insert(
                    PARAM_METADATA,
                    tonic::metadata::MetadataValue::from_static(param),
                );
                tonic::Status::with_metadata(
                    tonic::Code::InvalidArgument,
                    message.clone(),
                    metadata,
                )
            }
            StoreError::Database(_) => tonic::Status::unavailable(err.to_string()),
            StoreError::Migration { .. } | StoreError::Corrupt(_) | StoreError::Config(_) => {
                tonic::Status::internal(err.to_string())
            }
        }
    }
}

/// The gRPC metadata key naming the query field an `InvalidArgument` status is about.
pub const PARAM_METADATA: &str = "switchyard-param";

/// Why a usage query got no answer, as its caller needs to know: its own mistake, or the
/// ledger's unavailability. The same over the in-process store and over gRPC.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// The query is invalid; `param` names the [`UsageQuery`](crate::UsageQuery) field at fault
    /// (`from_ms`, `limit`, `cursor`…; empty when the ledger did not say). Retrying will not help.
    #[error("{message}")]
    Invalid { param: String, message: String },
    /// The ledger could not answer (unreachable, database error); retrying later may.
    #[error("{0}")]
    Unavailable(String),
}

impl From<StoreError> for QueryError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::InvalidQuery { param, message } => QueryError::Invalid {
                param: param.to_owned(),
                message,
            },
            other => QueryError::Unavailable(other.to_string()),
        }
    }
}

impl From<tonic::Status> for QueryError {
    fn from(status: tonic::Status) -> Self {
        if status.code() == tonic::Code::InvalidArgument {
            let param = status
                .metadata()
                .get(PARAM_METADATA)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            QueryError::Invalid {
                param,
                message: status.message().to_owned(),
            }
        } else {
            QueryError::Unavailable(status.message().to_owned())
        }
    }
}

/// For callers that only report the error (e.g. a budget check failing closed).
impl From<QueryError> for String {
    fn from(err: QueryError) -> Self {
        err.to_string()
    }
}

/// Why the ledger's gRPC server stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("ledger gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}
