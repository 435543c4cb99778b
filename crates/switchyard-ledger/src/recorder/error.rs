//! Errors a [`Recorder`](super::Recorder) can hit when it starts. Once running it has none to
//! report: failures become counters in [`RecorderStats`](super::RecorderStats) and log lines.

use std::path::PathBuf;

/// Why a recorder could not start.
#[derive(Debug, thiserror::Error)]
pub enum RecorderError {
    #[error("cannot open usage spool {}: {source}", path.display())]
    SpoolOpen {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("usage spool {} is in use by another recorder", path.display())]
    SpoolLocked { path: PathBuf },
    #[error("invalid ledger endpoint {endpoint:?}: {source}")]
    Endpoint {
        endpoint: String,
        #[source]
        source: tonic::transport::Error,
    },
    #[error("the recorder's start-up task failed: {0}")]
    Startup(String),
}
