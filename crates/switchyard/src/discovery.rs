//! Model discovery in a process: the file's configuration and the latest catalog, expanded into
//! the configuration the process runs on.
//!
//! The prober that holds the lease writes the catalog to the health store (see
//! `switchyard_health::discovery`); every process follows the store ([`follow`]) and, when the
//! catalog changes, applies `file ⊕ catalog` through the same path a configuration reload takes.
//! A reload of the file expands the new file with the current catalog ([`Discovery::set_base`]).
//! At start-up, before a catalog exists, the hosts are listed once ([`initial_catalog`]), so the
//! discovered groups exist from the first request when the hosts are up.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures::future::BoxFuture;
use switchyard_core::config::{Catalog, Config, expand};
use switchyard_health::HealthStore;
use switchyard_health::discovery::{Discoverer, DiscoveryHost};
use tokio::sync::watch;

/// The file's configuration and the catalog it is expanded with.
#[derive(Debug)]
pub struct Discovery {
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    base: Config,
    catalog: Option<Catalog>,
}

impl Discovery {
    pub fn new(base: Config, catalog: Option<Catalog>) -> Arc<Self> {
        Arc::new(Discovery {
            inner: Mutex::new(Inner { base, catalog }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The configuration in force: the file's, expanded with the catalog.
    pub fn expanded(&self) -> Config {
        let inner = self.lock();
        expand_with(&inner.base, inner.catalog.as_ref())
    }

    /// The file's configuration (to restore it when a reload is refused).
    pub fn base(&self) -> Config {
        self.lock().base.clone()
    }

    /// Whether the file has wildcard entries at all.
    pub fn is_active(&self) -> bool {
        !self.lock().base.discovery.is_empty()
    }

    /// A new file configuration (a reload): returns it expanded with the current catalog.
    pub fn set_base(&self, base: Config) -> Config {
        let mut inner = self.lock();
        inner.base = base;
        expand_with(&inner.base, inner.catalog.as_ref())
    }

    /// A new catalog: the configuration to apply, or `None` when it changes nothing.
    pub fn set_catalog(&self, catalog: Catalog) -> Option<Config> {
        let mut inner = self.lock();
        if inner.catalog.as_ref() == Some(&catalog) {
            return None;
        }
        inner.catalog = Some(catalog);
        Some(expand_with(&inner.base, inner.catalog.as_ref()))
    }
}

fn expand_with(base: &Config, catalog: Option<&Catalog>) -> Config {
    match catalog {
        Some(c) => expand(base, c),
        None => expand(base, &Catalog::default()),
    }
}

/// The catalog to start with: the store's, else the hosts listed once now (each bounded by
/// `timeout`), written to the store for the others. `None` when the file has no wildcard entry.
pub async fn initial_catalog(
    config: &Config,
    store: Option<&HealthStore>,
    timeout: Duration,
) -> Option<Catalog> {
    if config.discovery.is_empty() {
        return None;
    }
    if let Some(s) = store {
        match s.catalog().await {
            Ok(Some(c)) => return Some(c),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "discovery: cannot read the stored catalog"),
        }
    }
    let (catalog, errors) = discover_now(config, timeout).await;
    for (host, e) in &errors {
        tracing::warn!(host = %host, error = %e, "discovery: host did not answer at start-up");
    }
    if let Some(s) = store
        && let Err(e) = s.put_catalog(&catalog).await
    {
        tracing::warn!(error = %e, "discovery: cannot write the catalog");
    }
    Some(catalog)
}

/// Lists the configuration's discovery hosts once: the catalog and each host's error.
pub async fn discover_now(config: &Config, timeout: Duration) -> (Catalog, Vec<(String, String)>) {
    match Discoverer::new(DiscoveryHost::from_config(config), timeout) {
        Ok(d) => d.discover(&Catalog::default()).await,
        Err(e) => (
            Catalog::default(),
            vec![("discovery".to_owned(), e.to_string())],
        ),
    }
}

/// Follows the store's catalog until `stop`, handing each new one to `apply` (which expands
/// the file's configuration with it and puts the result in service, under the reloader's lock so
/// a file reload and a catalog change cannot interleave).
pub fn follow<F>(store: &HealthStore, poll: Duration, apply: F, mut stop: watch::Receiver<bool>)
where
    F: Fn(Catalog) -> BoxFuture<'static, ()> + Send + Sync + 'static,
{
    let mut watch = store.watch_catalog(poll);
    tokio::spawn(async move {
        loop {
            let next = tokio::select! {
                next = watch.next() => next,
                _ = stop.wait_for(|v| *v) => None,
            };
            let Some(catalog) = next else { return };
            apply(catalog).await;
        }
    });
}
