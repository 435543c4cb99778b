//! Glue between the router and the usage ledger: where records go, and how the gateway reads
//! them back.
//!
//! In one process (`serve`) the ledger is a store opened in this process (SQLite beside the
//! config by default, or `ledger.database_url`); in split mode the router and gateway reach the
//! `switchyard ledger` service at `ledger.address`. Either way the router hands each finished
//! request to a [`Recorder`], which never blocks and spools to disk while the ledger is away.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use futures::FutureExt;
use futures::future::BoxFuture;
use switchyard_core::config::Config;
use switchyard_gateway::UsageQuerier;
use switchyard_gateway::keys::{Budgets, KeyBackend, VirtualKeys};
use switchyard_health::KeyLimiter;
use switchyard_ledger::proto::ledger_client::LedgerClient;
use switchyard_ledger::proto::{DeleteKeysRequest, KeyLookup, ListKeysRequest, VirtualKey};
use switchyard_ledger::{
    Attempt, LedgerTarget, MAX_PAGE_BYTES, QueryError, Recorder, RecorderConfig, UsageQuery,
    UsageQueryResponse, UsageRecord, UsageStore, open_store,
};
use switchyard_proto::auth::{AuthedChannel, InternalSecret, authed};
use switchyard_router::{RequestRecord, SinkStats, UsageSink};

/// Default SQLite file name in the data directory.
pub const SQLITE_FILE: &str = "switchyard-usage.db";
/// Default spool file name in the data directory.
pub const SPOOL_FILE: &str = "switchyard-spool.log";

/// Hands router records to the recorder.
pub struct RecorderSink(pub Recorder);

impl UsageSink for RecorderSink {
    fn record(&self, r: RequestRecord) {
        self.0.record(to_ledger(r));
    }

    fn stats(&self) -> Option<SinkStats> {
        let s = self.0.stats();
        Some(SinkStats {
            delivered: s.delivered,
            lost: s.rejected
                + s.dropped_queue_full
                + s.dropped_spool_full
                + s.dropped_closed
                + s.lost_corrupt,
            delivery_failures: s.delivery_failures,
            pending: s.queued + s.spool_records,
            spool_records: s.spool_records,
        })
    }
}

fn to_ledger(r: RequestRecord) -> UsageRecord {
    UsageRecord {
        request_id: r.request_id,
        time_ms: i64::try_from(r.started_unix_ms).unwrap_or(i64::MAX),
        api_key_id: r.api_key_id,
        requested_group: r.requested_group,
        served_group: r.served_group.unwrap_or_default(),
        deployment: r.deployment.unwrap_or_default(),
        backend_model: r.backend_model.unwrap_or_default(),
        prompt_tokens: r.prompt_tokens,
        completion_tokens: r.completion_tokens,
        tokens_estimated: r.tokens_estimated,
        latency_ms: r.latency_ms,
        ttft_ms: r.ttft_ms,
        streamed: r.streamed,
        status: r.status,
        http_status: u32::from(r.http_status),
        attempts: r
            .attempts
            .into_iter()
            .map(|a| Attempt {
                deployment: a.deployment,
                failure_class: a.failure_class.unwrap_or_default(),
                message: a.message,
                prompt_tokens: a.prompt_tokens,
                completion_tokens: a.completion_tokens,
            })
            .collect(),
        traceparent: r.traceparent,
        api: r.api,
    }
}

/// Largest ledger answer a gateway accepts: a page of records is at most [`MAX_PAGE_BYTES`] plus
/// its last record, far below this (tonic's default of 4 MiB is not).
const MAX_ANSWER_BYTES: usize = 4 * MAX_PAGE_BYTES;

/// A client of the ledger service at `channel`.
fn ledger_client(channel: AuthedChannel) -> LedgerClient<AuthedChannel> {
    LedgerClient::new(channel).max_decoding_message_size(MAX_ANSWER_BYTES)
}

/// Reads usage from wherever the ledger is.
pub enum Querier {
    Store(Arc<dyn UsageStore>),
    Remote(LedgerClient<AuthedChannel>),
}

impl UsageQuerier for Querier {
    fn query(&self, q: UsageQuery) -> BoxFuture<'_, Result<UsageQueryResponse, QueryError>> {
        async move {
            match self {
                Querier::Store(s) => s.query(&q).await.map_err(QueryError::from),
                Querier::Remote(c) => c
                    .clone()
                    .query(q)
                    .await
                    .map(tonic::Response::into_inner)
                    .map_err(QueryError::from),
            }
        }
        .boxed()
    }
}

impl KeyBackend for Querier {
    fn put(&self, key: VirtualKey) -> BoxFuture<'_, Result<(), String>> {
        async move {
            match self {
                Querier::Store(s) => s.put_key(&key).await.map_err(|e| e.to_string()),
                Querier::Remote(c) => c
                    .clone()
                    .put_key(key)
                    .await
                    .map(|_| ())
                    .map_err(|s| s.message().to_string()),
            }
        }
        .boxed()
    }

    fn get(&self, lookup: KeyLookup) -> BoxFuture<'_, Result<Option<VirtualKey>, String>> {
        async move {
            match self {
                Querier::Store(s) => s.get_key(&lookup).await.map_err(|e| e.to_string()),
                Querier::Remote(c) => c
                    .clone()
                    .get_key(lookup)
                    .await
                    .map(|r| r.into_inner().key)
                    .map_err(|s| s.message().to_string()),
            }
        }
        .boxed()
    }

    fn list(&self) -> BoxFuture<'_, Result<Vec<VirtualKey>, String>> {
        async move {
            match self {
                Querier::Store(s) => s.list_keys().await.map_err(|e| e.to_string()),
                Querier::Remote(c) => c
                    .clone()
                    .list_keys(ListKeysRequest {})
                    .await
                    .map(|r| r.into_inner().keys)
                    .map_err(|s| s.message().to_string()),
            }
        }
        .boxed()
    }

    fn delete(&self, req: DeleteKeysRequest) -> BoxFuture<'_, Result<u32, String>> {
        async move {
            match self {
                Querier::Store(s) => s.delete_keys(&req).await.map_err(|e| e.to_string()),
                Querier::Remote(c) => c
                    .clone()
                    .delete_keys(req)
                    .await
                    .map(|r| r.into_inner().deleted)
                    .map_err(|s| s.message().to_string()),
            }
        }
        .boxed()
    }
}

/// Virtual keys for a gateway: stored through `ledger`, limits in Redis (`redis`) or memory.
/// `None` without a master key (no one could manage keys).
pub fn virtual_keys(
    config: &Config,
    ledger: &Arc<Querier>,
    redis: Option<switchyard_health::RedisConn>,
) -> Option<Arc<VirtualKeys>> {
    let master = config.gateway.master_key.as_deref()?;
    let limiter = match redis {
        Some(conn) => KeyLimiter::redis(conn),
        None => KeyLimiter::memory(),
    };
    let budgets = Budgets::new(Some(ledger.clone() as Arc<dyn UsageQuerier>));
    Some(Arc::new(VirtualKeys::new(
        ledger.clone() as Arc<dyn KeyBackend>,
        master,
        limiter,
        budgets,
    )))
}

/// The ledger's store URL: `ledger.database_url`, else a SQLite file in `data_dir`.
pub fn store_url(config: &Config, data_dir: &Path) -> String {
    config
        .ledger
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", data_dir.join(SQLITE_FILE).display()))
}

/// The usage pipeline of a router process.
pub struct Usage {
    pub recorder: Recorder,
    pub querier: Arc<Querier>,
}

/// Opens the ledger target (remote service or local store) and starts the recorder.
pub async fn start(config: &Config, data_dir: &Path) -> anyhow::Result<Usage> {
    let (target, querier) = match &config.ledger.address {
        Some(addr) => {
            let secret = crate::internal_secret(config);
            let target = LedgerTarget::remote_with_secret(addr, Duration::from_secs(5), secret)
                .with_context(|| format!("ledger.address {addr}"))?;
            (
                target,
                remote_querier(addr, crate::internal_secret(config))?,
            )
        }
        None => {
            std::fs::create_dir_all(data_dir)
                .with_context(|| format!("cannot create data dir {}", data_dir.display()))?;
            let url = store_url(config, data_dir);
            let store = open_store(&url)
                .await
                .with_context(|| format!("cannot open the usage ledger at {url}"))?;
            (
                LedgerTarget::Store(store.clone()),
                Arc::new(Querier::Store(store)),
            )
        }
    };
    let spool: PathBuf = config
        .ledger
        .spool_path
        .as_ref()
        .map(PathBuf::from)
        .unwrap_or_else(|| data_dir.join(SPOOL_FILE));
    if let Some(parent) = spool.parent() {
        std::fs::create_dir_all(parent).ok();
    }
    let mut rc = RecorderConfig::new(spool.clone());
    rc.max_spool_bytes = config.ledger.spool_max_bytes;
    let recorder = Recorder::start(target, rc)
        .await
        .with_context(|| format!("cannot open the usage spool {}", spool.display()))?;
    Ok(Usage { recorder, querier })
}

/// A querier of the ledger service at `addr` (split mode), presenting `secret`.
pub fn remote_querier(addr: &str, secret: Option<InternalSecret>) -> anyhow::Result<Arc<Querier>> {
    let channel = tonic::transport::Endpoint::from_shared(addr.to_string())
        .with_context(|| format!("ledger.address {addr}"))?
        .connect_lazy();
    Ok(Arc::new(Querier::Remote(ledger_client(authed(
        channel, secret,
    )))))
}
