//! The `switchyard.ledger.v1.Ledger` gRPC service over a [`UsageStore`], and a helper that
//! serves it on a listener until a shutdown signal. Served on a socket, every call must carry
//! the internal secret or the master key once either is configured (see
//! `switchyard_proto::auth`): records, usage and keys are not for anyone on the network.

use std::future::Future;
use std::sync::Arc;

use switchyard_proto::auth::GrpcAuth;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::service::interceptor::InterceptedService;
use tonic::{Request, Response, Status};

use crate::error::ServeError;
use crate::metrics::LedgerMetrics;
use crate::proto::ledger_server::{Ledger, LedgerServer};
use crate::proto::{
    DeleteKeysRequest, DeleteKeysResponse, KeyList, KeyLookup, KeyLookupResponse, ListKeysRequest,
    RecordAck, RecordBatch, UsageQuery, UsageQueryResponse, VirtualKey,
};
use crate::store::UsageStore;

/// Most records accepted in one `Record` call.
pub const MAX_BATCH: usize = 10_000;
/// Largest request accepted (tonic's default of 4 MiB could refuse a legitimate batch
/// forever, since the recorder would keep resending it).
const MAX_MESSAGE_BYTES: usize = 64 << 20;

/// Implements the ledger's gRPC API by delegating to a store.
#[derive(Clone)]
pub struct LedgerService {
    store: Arc<dyn UsageStore>,
    metrics: LedgerMetrics,
    /// Who may call when served on a socket (open by default).
    auth: GrpcAuth,
}

impl LedgerService {
    /// Serves `store`.
    pub fn new(store: Arc<dyn UsageStore>) -> Self {
        Self {
            store,
            metrics: LedgerMetrics::default(),
            auth: GrpcAuth::default(),
        }
    }

    /// Requires callers to present the internal secret or the master key `auth` accepts.
    pub fn with_auth(mut self, auth: GrpcAuth) -> Self {
        self.auth = auth;
        self
    }

    /// This service's metrics (for a `/metrics` page).
    pub fn metrics(&self) -> LedgerMetrics {
        self.metrics.clone()
    }

    /// The tonic service, ready for `Server::add_service`.
    pub fn into_server(self) -> LedgerServer<Self> {
        LedgerServer::new(self).max_decoding_message_size(MAX_MESSAGE_BYTES)
    }
}

#[tonic::async_trait]
impl Ledger for LedgerService {
    async fn record(&self, request: Request<RecordBatch>) -> Result<Response<RecordAck>, Status> {
        let batch = request.into_inner();
        if batch.records.len() > MAX_BATCH {
            return Err(Status::invalid_argument(format!(
                "batch of {} records is above the maximum of {MAX_BATCH}",
                batch.records.len()
            )));
        }
        let _spans = crate::trace::write_spans(&batch.records);
        let started = std::time::Instant::now();
        let outcome = self.store.insert_batch(&batch.records).await.map_err(|e| {
            self.metrics.write_failed();
            tracing::warn!(error = %e, records = batch.records.len(), "ledger insert failed");
            Status::from(e)
        })?;
        self.metrics.written(
            outcome.inserted,
            outcome.duplicates,
            outcome.rejected.len(),
            started.elapsed(),
        );
        if !outcome.rejected.is_empty() {
            tracing::warn!(
                rejected = outcome.rejected.len(),
                "ledger refused invalid records"
            );
        }
        Ok(Response::new(RecordAck {
            inserted: outcome.inserted,
            duplicates: outcome.duplicates,
            rejected: outcome.rejected,
        }))
    }

    async fn query(
        &self,
        request: Request<UsageQuery>,
    ) -> Result<Response<UsageQueryResponse>, Status> {
        let query = request.into_inner();
        let response = self.store.query(&query).await.map_err(Status::from)?;
        Ok(Response::new(response))
    }

    async fn put_key(&self, request: Request<VirtualKey>) -> Result<Response<VirtualKey>, Status> {
        let key = request.into_inner();
        if key.key_hash.is_empty() || key.key_id.is_empty() {
            return Err(Status::invalid_argument("a key needs key_hash and key_id"));
        }
        self.store.put_key(&key).await.map_err(Status::from)?;
        Ok(Response::new(key))
    }

    async fn get_key(
        &self,
        request: Request<KeyLookup>,
    ) -> Result<Response<KeyLookupResponse>, Status> {
        let key = self
            .store
            .get_key(&request.into_inner())
            .await
            .map_err(Status::from)?;
        Ok(Response::new(KeyLookupResponse { key }))
    }

    async fn list_keys(&self, _: Request<ListKeysRequest>) -> Result<Response<KeyList>, Status> {
        let keys = self.store.list_keys().await.map_err(Status::from)?;
        Ok(Response::new(KeyList { keys }))
    }

    async fn delete_keys(
        &self,
        request: Request<DeleteKeysRequest>,
    ) -> Result<Response<DeleteKeysResponse>, Status> {
        let deleted = self
            .store
            .delete_keys(&request.into_inner())
            .await
            .map_err(Status::from)?;
        Ok(Response::new(DeleteKeysResponse { deleted }))
    }
}

/// Serves the ledger on `listener` until `shutdown` completes, then drains in-flight calls.
pub async fn serve_ledger(
    store: Arc<dyn UsageStore>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    serve_ledger_service(LedgerService::new(store), listener, shutdown).await
}

/// Serves `service` on `listener` until `shutdown` completes, then drains in-flight calls.
pub async fn serve_ledger_service(
    service: LedgerService,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let auth = service.auth.clone();
    let checked = InterceptedService::new(service.into_server(), move |req: Request<()>| {
        auth.require_internal_or_master(req.metadata())?;
        Ok(req)
    });
    tonic::transport::Server::builder()
        .add_service(checked)
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
        .await?;
    Ok(())
}
