//! The health prober: polls every backend host each round and keeps the store current.
//!
//! Run [`Prober::run`] in one task per process that should probe; with a Redis store several
//! replicas may run it, and the prober lease lets only one of them probe at a time (the others
//! stand by and take over when the holder's lease expires or is released).

mod assess;
mod llamacpp;
pub(crate) mod observe;
mod ollama;
mod target;

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use rand::Rng;
use switchyard_core::config::{Catalog, Config, Provider};

use self::assess::Write;
use self::observe::{Finding, Http};
pub use self::target::{ProbeTarget, TargetDeployment};
use crate::discovery::{Discoverer, DiscoveryHost, catalog_diff};
use crate::error::HealthError;
use crate::model::{HealthSnapshot, now_ms};
use crate::store::HealthStore;
use crate::tls_clients::TlsClients;

/// How the prober paces itself.
#[derive(Clone, Debug)]
pub struct ProberSettings {
    /// Time between rounds.
    pub interval: Duration,
    /// Up to this much is added at random to each pause, so replicas and hosts do not align.
    pub jitter: Duration,
    /// Deadline of each HTTP request to a backend.
    pub timeout: Duration,
    /// How long a lease lasts without renewal; `None` = three intervals.
    pub lease_ttl: Option<Duration>,
    /// This prober's name in the lease; random by default.
    pub replica_id: String,
}

impl Default for ProberSettings {
    fn default() -> Self {
        ProberSettings {
            interval: Duration::from_secs(5),
            jitter: Duration::from_millis(500),
            timeout: Duration::from_secs(2),
            lease_ttl: None,
            replica_id: format!("prober-{:016x}", rand::rng().random::<u64>()),
        }
    }
}

impl ProberSettings {
    /// The lease lifetime in force.
    pub fn lease_ttl(&self) -> Duration {
        self.lease_ttl.unwrap_or(self.interval * 3)
    }
}

/// Trained context per model digest (`None` = the model does not say).
#[derive(Debug, Default)]
pub(crate) struct TrainedCache(Mutex<HashMap<String, Option<u32>>>);

impl TrainedCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Option<u32>>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
    pub(crate) fn get(&self, digest: &str) -> Option<Option<u32>> {
        self.lock().get(digest).copied()
    }
    pub(crate) fn insert(&self, digest: String, value: Option<u32>) {
        self.lock().insert(digest, value);
    }
}

/// Polls backends and writes their health to a [`HealthStore`].
#[derive(Debug)]
pub struct Prober {
    targets: RwLock<Arc<Vec<ProbeTarget>>>,
    store: HealthStore,
    discovery: Discoverer,
    /// The catalog this prober last wrote or read (`None`: not yet known).
    catalog: Mutex<Option<Catalog>>,
    settings: ProberSettings,
    client: reqwest::Client,
    /// Clients of `https://` targets, by their TLS settings, built when first needed (targets
    /// change with the configuration).
    tls_clients: TlsClients,
    trained: TrainedCache,
    rounds: AtomicU64,
    leader: AtomicBool,
}

impl Prober {
    pub fn new(
        targets: Vec<ProbeTarget>,
        store: impl Into<HealthStore>,
        settings: ProberSettings,
    ) -> Result<Self, HealthError> {
        let client = reqwest::Client::builder()
            .connect_timeout(settings.timeout)
            .timeout(settings.timeout)
            .pool_idle_timeout(settings.interval * 2)
            .tcp_nodelay(true)
            .build()
            .map_err(|e| HealthError::Http(e.to_string()))?;
        let discovery = Discoverer::new(Vec::new(), settings.timeout)?;
        let tls_clients = TlsClients::new(settings.timeout, settings.interval * 2);
        Ok(Prober {
            targets: RwLock::new(Arc::new(targets)),
            store: store.into(),
            discovery,
            catalog: Mutex::new(None),
            settings,
            client,
            tls_clients,
            trained: TrainedCache::default(),
            rounds: AtomicU64::new(0),
            leader: AtomicBool::new(false),
        })
    }

    /// A prober for a configuration: its deployments probed, its wildcard entries' hosts
    /// discovered.
    pub fn for_config(
        config: &Config,
        store: impl Into<HealthStore>,
        settings: ProberSettings,
    ) -> Result<Self, HealthError> {
        let p = Self::new(ProbeTarget::from_config(config), store, settings)?;
        p.discovery.set_hosts(DiscoveryHost::from_config(config));
        Ok(p)
    }

    /// Follows a new (expanded) configuration: probes its deployments and discovers on its
    /// wildcard entries' hosts from the next round on.
    pub fn reconfigure(&self, config: &Config) {
        let targets = ProbeTarget::from_config(config);
        *self
            .targets
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(targets);
        self.discovery.set_hosts(DiscoveryHost::from_config(config));
    }

    fn targets(&self) -> Arc<Vec<ProbeTarget>> {
        self.targets
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Lists the wildcard entries' hosts once and writes the catalog to the store when it
    /// changed; returns the catalog now in force (`None`: nothing to discover). A host that
    /// does not answer keeps what it listed last. Ignores the lease.
    pub async fn discover_once(&self) -> Option<Catalog> {
        if self.discovery.is_empty() {
            return None;
        }
        let known = self
            .catalog
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let known = match known {
            Some(c) => Some(c),
            None => self.store.catalog().await.ok().flatten(),
        };
        let previous = known.clone().unwrap_or_default();
        let (next, errors) = self.discovery.discover(&previous).await;
        for (host, e) in &errors {
            tracing::warn!(host = %host, error = %e, "discovery: host did not answer; keeping what it listed last");
        }
        let mut remembered = Some(next.clone());
        if known.as_ref() != Some(&next) {
            let (added, removed) = catalog_diff(&previous, &next);
            tracing::info!(?added, ?removed, "discovery: models changed");
            if let Err(e) = self.store.put_catalog(&next).await {
                tracing::warn!(error = %e, "discovery: cannot write the catalog; retrying next round");
                remembered = known;
            }
        }
        *self
            .catalog
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = remembered;
        Some(next)
    }

    /// The ids of the deployments probed now.
    pub fn deployment_ids(&self) -> Vec<String> {
        self.targets()
            .iter()
            .flat_map(|t| t.deployments.iter().map(|d| d.id.clone()))
            .collect()
    }

    pub fn store(&self) -> &HealthStore {
        &self.store
    }

    pub fn settings(&self) -> &ProberSettings {
        &self.settings
    }

    /// Rounds probed so far by this prober.
    pub fn rounds(&self) -> u64 {
        self.rounds.load(Ordering::Relaxed)
    }

    /// Whether this prober held the lease at its last attempt.
    pub fn is_leader(&self) -> bool {
        self.leader.load(Ordering::Relaxed)
    }

    /// One round: probes every host (concurrently), writes what changed or needs its TTL
    /// refreshed, and returns the computed states. Ignores the lease. Store errors are logged,
    /// not returned: the probe results are still valid.
    pub async fn probe_once(&self) -> HealthSnapshot {
        self.rounds.fetch_add(1, Ordering::Relaxed);
        let stored = match self.store.snapshot().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "prober: cannot read current health; writing all");
                HealthSnapshot::new()
            }
        };
        let targets = self.targets();
        let findings =
            futures::future::join_all(targets.iter().map(|t| self.probe_target(t))).await;
        let now = now_ms();
        let ttl = self.store.state_ttl();
        let mut out = HealthSnapshot::new();
        for (target, findings) in targets.iter().zip(findings) {
            for (d, f) in target.deployments.iter().zip(findings) {
                let prev = stored.get(&d.id);
                let next = assess::next_state(prev, &f, now);
                let write = assess::decide(prev, &next, ttl, now);
                if write != Write::Skip {
                    if write == Write::Change {
                        tracing::info!(deployment = %d.id, status = ?next.status,
                            detail = next.detail.as_deref().unwrap_or(""), "health changed");
                    }
                    if let Err(e) = self.store.put(&d.id, &next, write == Write::Change).await {
                        tracing::warn!(deployment = %d.id, error = %e, "prober: write failed");
                    }
                }
                out.insert(d.id.clone(), next);
            }
        }
        out
    }

    async fn probe_target(&self, t: &ProbeTarget) -> Vec<Finding> {
        let tls_client = self.tls_clients.for_host(&t.api_base, &t.tls);
        let http = Http {
            client: tls_client.as_ref().unwrap_or(&self.client),
            base: &t.api_base,
            api_key: t.api_key.as_deref(),
            timeout: self.settings.timeout,
        };
        match t.provider {
            Provider::Ollama => ollama::probe(&http, &t.deployments, &self.trained).await,
            Provider::OpenAi => llamacpp::probe(&http, &t.deployments).await,
        }
    }

    /// Probes every interval while holding the lease, until `shutdown` completes; then gives
    /// the lease up so a standby replica takes over at once.
    pub async fn run(&self, shutdown: impl Future<Output = ()>) {
        let replica = self.settings.replica_id.as_str();
        let lease_ttl = self.settings.lease_ttl();
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let leader = match self.store.try_lease(replica, lease_ttl).await {
                Ok(held) => held,
                Err(e) => {
                    tracing::warn!(error = %e, "prober: lease unavailable; standing by");
                    false
                }
            };
            if self.leader.swap(leader, Ordering::Relaxed) != leader {
                tracing::info!(replica, leader, "prober lease");
            }
            if leader {
                tokio::select! {
                    _ = async {
                        self.discover_once().await;
                        self.probe_once().await
                    } => {}
                    () = &mut shutdown => break,
                }
            }
            tokio::select! {
                () = tokio::time::sleep(self.pause()) => {}
                () = &mut shutdown => break,
            }
        }
        if self.leader.swap(false, Ordering::Relaxed)
            && let Err(e) = self.store.release_lease(replica).await
        {
            tracing::debug!(error = %e, "prober: lease release failed; it will expire");
        }
    }

    fn pause(&self) -> Duration {
        let jitter_ms = u64::try_from(self.settings.jitter.as_millis()).unwrap_or(0);
        let extra = if jitter_ms == 0 {
            0
        } else {
            rand::rng().random_range(0..=jitter_ms)
        };
        self.settings.interval + Duration::from_millis(extra)
    }
}
