//! Where the recorder delivers batches: a store in the same process (the all-in-one binary) or
//! a ledger service over gRPC.

use std::sync::Arc;
use std::time::Duration;

use switchyard_proto::auth::{AuthedChannel, InternalSecret, authed};
use tonic::Code;
use tonic::transport::Endpoint;

use super::error::RecorderError;
use crate::proto::ledger_client::LedgerClient;
use crate::proto::{RecordAck, RecordBatch};
use crate::store::UsageStore;

/// How long a connection attempt to a remote ledger may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// The ledger a [`Recorder`](super::Recorder) writes to.
#[derive(Clone)]
pub enum LedgerTarget {
    /// A store in this process.
    Store(Arc<dyn UsageStore>),
    /// A ledger service reached over gRPC (sending the internal secret, if any).
    Remote(LedgerClient<AuthedChannel>),
}

impl LedgerTarget {
    /// A remote ledger at `endpoint` (e.g. `http://127.0.0.1:50052`). Connects lazily, so the
    /// ledger need not be up yet; `timeout` bounds every call.
    pub fn remote(endpoint: &str, timeout: Duration) -> Result<Self, RecorderError> {
        Self::remote_with_secret(endpoint, timeout, None)
    }

    /// [`remote`](Self::remote), presenting `secret` (the internal secret) on every call.
    pub fn remote_with_secret(
        endpoint: &str,
        timeout: Duration,
        secret: Option<InternalSecret>,
    ) -> Result<Self, RecorderError> {
        let channel = Endpoint::from_shared(endpoint.to_owned())
            .map_err(|source| RecorderError::Endpoint {
                endpoint: endpoint.to_owned(),
                source,
            })?
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(timeout)
            .connect_lazy();
        Ok(Self::Remote(LedgerClient::new(authed(channel, secret))))
    }

    /// Sends one batch, giving up after `timeout`.
    pub(crate) async fn deliver(
        &self,
        batch: &RecordBatch,
        timeout: Duration,
    ) -> Result<RecordAck, DeliveryError> {
        let call = async {
            match self {
                LedgerTarget::Store(store) => {
                    let _spans = crate::trace::write_spans(&batch.records);
                    store
                        .insert_batch(&batch.records)
                        .await
                        .map(|o| RecordAck {
                            inserted: o.inserted,
                            duplicates: o.duplicates,
                            rejected: o.rejected,
                        })
                        .map_err(|e| DeliveryError::Transient(e.to_string()))
                }
                LedgerTarget::Remote(client) => {
                    let mut client = client.clone();
                    match client.record(batch.clone()).await {
                        Ok(ack) => Ok(ack.into_inner()),
                        // The ledger will refuse this batch however often it is sent.
                        Err(s) if s.code() == Code::InvalidArgument => {
                            Err(DeliveryError::Permanent(s.message().to_owned()))
                        }
                        Err(s) => Err(DeliveryError::Transient(format!(
                            "{:?}: {}",
                            s.code(),
                            s.message()
                        ))),
                    }
                }
            }
        };
        tokio::time::timeout(timeout, call)
            .await
            .unwrap_or_else(|_| {
                Err(DeliveryError::Transient(format!(
                    "timed out after {timeout:?}"
                )))
            })
    }
}

/// Why a delivery failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DeliveryError {
    /// Worth retrying later: the ledger is down, slow or its database is.
    #[error("{0}")]
    Transient(String),
    /// The ledger refused the batch as such; retrying cannot help.
    #[error("{0}")]
    Permanent(String),
}
