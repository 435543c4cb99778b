//! HTTP clients for `https://` model servers, one per distinct TLS setting, built when first
//! needed.
//!
//! The prober, model discovery and the router's tokenizer fetch all talk to the same servers as
//! the attempt pool, so they must trust what it trusts (a CA file, `ssl_verify: false`, a client
//! certificate): each asks here for the client of a host's settings instead of using a plain
//! client that only knows the system roots. Plain `http://` hosts get `None` (use the plain
//! client).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use switchyard_core::config::TlsSettings;

/// The clients built so far, by TLS setting.
#[derive(Debug)]
pub struct TlsClients {
    clients: Mutex<HashMap<TlsSettings, reqwest::Client>>,
    timeout: Duration,
    idle: Duration,
}

impl TlsClients {
    /// Clients whose requests time out after `timeout` and whose idle connections close after
    /// `idle`.
    pub fn new(timeout: Duration, idle: Duration) -> Self {
        TlsClients {
            clients: Mutex::new(HashMap::new()),
            timeout,
            idle,
        }
    }

    /// The client for a host at `api_base` with `tls`: `None` for plain http, or when the TLS
    /// settings are unusable (logged; the attempt pool reports them at start).
    pub fn for_host(&self, api_base: &str, tls: &TlsSettings) -> Option<reqwest::Client> {
        if !api_base.starts_with("https://") {
            return None;
        }
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(c) = clients.get(tls) {
            return Some(c.clone());
        }
        let built = switchyard_backends::tls::client_config(tls)
            .map_err(|e| e.to_string())
            .and_then(|config| {
                reqwest::Client::builder()
                    .connect_timeout(self.timeout)
                    .timeout(self.timeout)
                    .pool_idle_timeout(self.idle)
                    .tcp_nodelay(true)
                    .use_preconfigured_tls(config)
                    .build()
                    .map_err(|e| e.to_string())
            });
        match built {
            Ok(c) => {
                clients.insert(tls.clone(), c.clone());
                Some(c)
            }
            Err(e) => {
                tracing::warn!(host = %api_base, error = %e, "cannot build the TLS client");
                None
            }
        }
    }
}
