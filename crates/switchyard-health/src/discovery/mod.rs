//! Model discovery: what each host of a wildcard entry (`model: ollama/*`) lists, as a
//! [`Catalog`].
//!
//! The prober runs it every round while it holds the lease and writes the catalog to the health
//! store when it changed; processes expand their configuration with it
//! (`switchyard_core::config::expand`). A host that does not answer keeps the models it last
//! listed (its deployments go down through health, not away): only a host that answers without a
//! model removes it.

mod ollama;
mod openai;

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use switchyard_core::config::{
    Catalog, Config, DiscoveredModel, HostModels, Provider, TlsSettings,
};

use crate::error::HealthError;
use crate::prober::observe::Http;
use crate::tls_clients::TlsClients;

/// One host some wildcard entry discovers on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiscoveryHost {
    pub provider: Provider,
    /// Base URL without a trailing slash.
    pub api_base: String,
    pub api_key: Option<String>,
    /// How an `https://` host is trusted (the entry's `ssl_verify`, CA file, client certificate).
    pub tls: TlsSettings,
}

impl DiscoveryHost {
    /// The hosts of the configuration's wildcard entries, each once, in file order.
    pub fn from_config(config: &Config) -> Vec<DiscoveryHost> {
        let mut hosts: Vec<DiscoveryHost> = Vec::new();
        for s in &config.discovery {
            let base = s.api_base().trim_end_matches('/');
            match hosts
                .iter_mut()
                .find(|h| h.provider == s.provider() && h.api_base == base)
            {
                Some(h) => {
                    if h.api_key.is_none() {
                        h.api_key.clone_from(&s.prototype.api_key);
                    }
                }
                None => hosts.push(DiscoveryHost {
                    provider: s.provider(),
                    api_base: base.to_owned(),
                    api_key: s.prototype.api_key.clone(),
                    tls: s.prototype.tls.clone(),
                }),
            }
        }
        hosts
    }

    fn key(&self) -> String {
        Catalog::key(self.provider, &self.api_base)
    }
}

/// What `/api/show` said about one model digest (immutable weights: asked once).
pub(crate) type ShowCache = Mutex<HashMap<String, DiscoveredModel>>;

/// Lists the models of the configured hosts.
#[derive(Debug)]
pub struct Discoverer {
    hosts: Mutex<Vec<DiscoveryHost>>,
    client: reqwest::Client,
    /// Clients of `https://` hosts, by their TLS settings.
    tls_clients: TlsClients,
    timeout: Duration,
    shows: ShowCache,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Discoverer {
    pub fn new(hosts: Vec<DiscoveryHost>, timeout: Duration) -> Result<Self, HealthError> {
        let client = reqwest::Client::builder()
            .connect_timeout(timeout)
            .timeout(timeout)
            .tcp_nodelay(true)
            .build()
            .map_err(|e| HealthError::Http(e.to_string()))?;
        Ok(Discoverer {
            hosts: Mutex::new(hosts),
            client,
            tls_clients: TlsClients::new(timeout, timeout * 4),
            timeout,
            shows: Mutex::new(HashMap::new()),
        })
    }

    /// Replaces the hosts (after a configuration reload).
    pub fn set_hosts(&self, hosts: Vec<DiscoveryHost>) {
        *lock(&self.hosts) = hosts;
    }

    /// Whether any host is configured.
    pub fn is_empty(&self) -> bool {
        lock(&self.hosts).is_empty()
    }

    /// Lists every host (concurrently). A host that fails keeps its entry from `previous`, and
    /// its error is returned beside the catalog; hosts no longer configured are dropped.
    pub async fn discover(&self, previous: &Catalog) -> (Catalog, Vec<(String, String)>) {
        let hosts = lock(&self.hosts).clone();
        let listed = futures::future::join_all(hosts.iter().map(|h| self.list(h, previous))).await;
        let mut out = Catalog::default();
        let mut errors = Vec::new();
        for (h, result) in hosts.iter().zip(listed) {
            let key = h.key();
            match result {
                Ok(models) => {
                    out.hosts.insert(key, models);
                }
                Err(e) => {
                    if let Some(prev) = previous.hosts.get(&key) {
                        out.hosts.insert(key.clone(), prev.clone());
                    }
                    errors.push((key, e));
                }
            }
        }
        (out, errors)
    }

    async fn list(&self, h: &DiscoveryHost, previous: &Catalog) -> Result<HostModels, String> {
        let tls_client = self.tls_clients.for_host(&h.api_base, &h.tls);
        let http = Http {
            client: tls_client.as_ref().unwrap_or(&self.client),
            base: &h.api_base,
            api_key: h.api_key.as_deref(),
            timeout: self.timeout,
        };
        let mut models = match h.provider {
            Provider::Ollama => ollama::list(&http, &self.shows).await?,
            Provider::OpenAi => {
                openai::list(&http, previous.hosts.get(&h.key()).map(|p| &p.models)).await?
            }
        };
        models.sort_by(|a, b| a.name.cmp(&b.name));
        models.dedup_by(|a, b| a.name == b.name);
        Ok(HostModels {
            provider: h.provider.as_str().to_owned(),
            api_base: h.api_base.clone(),
            models,
        })
    }
}

/// What changed between two catalogs, for the log: `(added, removed)` as `host: name`.
pub fn catalog_diff(before: &Catalog, after: &Catalog) -> (Vec<String>, Vec<String>) {
    let a = before.names();
    let b = after.names();
    let added = b.iter().filter(|n| !a.contains(n)).cloned().collect();
    let removed = a.iter().filter(|n| !b.contains(n)).cloned().collect();
    (added, removed)
}
