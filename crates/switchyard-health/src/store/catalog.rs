//! The discovery catalog in the health store: written by the prober that holds the lease, read
//! by every process that expands its configuration with it.
//!
//! In memory it is a `watch` channel. In Redis it is one JSON value,
//! `{prefix}:discovery:catalog`, without a TTL (a prober that stops does not make models
//! vanish), which readers poll once per prober interval: one `GET`, compared as text before it
//! is parsed.

use std::time::Duration;

use switchyard_core::config::Catalog;
use tokio::sync::watch;

use super::HealthStore;
use super::redis::RedisStore;
use crate::error::HealthError;

/// The in-process catalog: the current value and its watchers.
#[derive(Debug)]
pub(crate) struct CatalogCell(watch::Sender<Option<Catalog>>);

impl Default for CatalogCell {
    fn default() -> Self {
        CatalogCell(watch::channel(None).0)
    }
}

impl CatalogCell {
    fn put(&self, catalog: &Catalog) {
        self.0.send_replace(Some(catalog.clone()));
    }

    fn get(&self) -> Option<Catalog> {
        self.0.borrow().clone()
    }
}

fn catalog_key(store: &RedisStore) -> String {
    store.conn().key("discovery:catalog")
}

async fn redis_get_raw(store: &RedisStore) -> Result<Option<String>, HealthError> {
    let conn = store.conn();
    let mut c = conn.conn();
    let cmd = redis::cmd("GET").arg(catalog_key(store)).clone();
    conn.run("get catalog", cmd.query_async(&mut c)).await
}

fn decode(key: &str, raw: &str) -> Result<Catalog, HealthError> {
    serde_json::from_str(raw).map_err(|e| HealthError::Decode {
        key: key.to_owned(),
        reason: e.to_string(),
    })
}

impl HealthStore {
    /// Replaces the catalog (the prober calls it when what the hosts list changed).
    pub async fn put_catalog(&self, catalog: &Catalog) -> Result<(), HealthError> {
        match self {
            HealthStore::Memory(s) => {
                s.catalog_cell().put(catalog);
                Ok(())
            }
            HealthStore::Redis(s) => {
                let json = serde_json::to_string(catalog).map_err(|e| HealthError::Decode {
                    key: "catalog".to_owned(),
                    reason: e.to_string(),
                })?;
                let conn = s.conn();
                let mut c = conn.conn();
                let cmd = redis::cmd("SET").arg(catalog_key(s)).arg(json).clone();
                conn.run::<(), _>("put catalog", cmd.query_async(&mut c))
                    .await
            }
        }
    }

    /// The catalog last written, if any.
    pub async fn catalog(&self) -> Result<Option<Catalog>, HealthError> {
        match self {
            HealthStore::Memory(s) => Ok(s.catalog_cell().get()),
            HealthStore::Redis(s) => match redis_get_raw(s).await? {
                Some(raw) => decode(&catalog_key(s), &raw).map(Some),
                None => Ok(None),
            },
        }
    }

    /// Follows the catalog: the current one first (once there is one), then each change.
    /// `poll` is how often a Redis store is read.
    pub fn watch_catalog(&self, poll: Duration) -> CatalogWatch {
        let inner = match self {
            HealthStore::Memory(s) => {
                let mut rx = s.catalog_cell().0.subscribe();
                rx.mark_changed();
                WatchInner::Memory(rx)
            }
            HealthStore::Redis(s) => WatchInner::Redis {
                store: s.clone(),
                poll,
                last: None,
                first: true,
            },
        };
        CatalogWatch { inner }
    }
}

/// A stream of catalogs (see [`HealthStore::watch_catalog`]).
#[derive(Debug)]
pub struct CatalogWatch {
    inner: WatchInner,
}

#[derive(Debug)]
enum WatchInner {
    Memory(watch::Receiver<Option<Catalog>>),
    Redis {
        store: RedisStore,
        poll: Duration,
        /// The text last delivered.
        last: Option<String>,
        first: bool,
    },
}

impl CatalogWatch {
    /// The next catalog that differs from the last one delivered; `None` once the store is
    /// gone (an in-memory store dropped).
    pub async fn next(&mut self) -> Option<Catalog> {
        match &mut self.inner {
            WatchInner::Memory(rx) => loop {
                rx.changed().await.ok()?;
                if let Some(c) = rx.borrow_and_update().clone() {
                    return Some(c);
                }
            },
            WatchInner::Redis {
                store,
                poll,
                last,
                first,
            } => loop {
                if !std::mem::take(first) {
                    tokio::time::sleep(*poll).await;
                }
                match redis_get_raw(store).await {
                    Ok(Some(raw)) if last.as_deref() != Some(raw.as_str()) => {
                        match decode(&catalog_key(store), &raw) {
                            Ok(c) => {
                                *last = Some(raw);
                                return Some(c);
                            }
                            Err(e) => tracing::warn!(error = %e, "discovery catalog ignored"),
                        }
                    }
                    Ok(_) => {}
                    Err(e) => tracing::debug!(error = %e, "discovery catalog: read failed"),
                }
            },
        }
    }
}
