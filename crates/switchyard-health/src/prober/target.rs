//! What the prober polls: one [`ProbeTarget`] per backend host, built from the configuration.
//!
//! Deployments that share an `api_base` (several models on one Ollama) are grouped so each host
//! is asked once per round, whatever the number of its models.

use switchyard_core::config::{Config, Provider, TlsSettings};

/// One deployment served by a target host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetDeployment {
    /// The deployment id the state is stored under.
    pub id: String,
    /// The backend's own model name (`llama3.2:1b`).
    pub model: String,
}

/// One backend host and the deployments on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeTarget {
    /// Base URL without a trailing slash.
    pub api_base: String,
    pub provider: Provider,
    /// Bearer token for servers started with an API key (llama.cpp `--api-key`).
    pub api_key: Option<String>,
    /// How an `https://` host's certificate is checked.
    pub tls: TlsSettings,
    pub deployments: Vec<TargetDeployment>,
}

impl ProbeTarget {
    /// Groups the configured deployments by `(api_base, provider)`, in configuration order.
    /// Hosted providers (OpenAI, Groq, …) are left out: polling a paid API every few seconds
    /// tells little (it has no `/health`), and passive health covers them.
    pub fn from_config(config: &Config) -> Vec<ProbeTarget> {
        let mut targets: Vec<ProbeTarget> = Vec::new();
        for d in config.deployments.iter().filter(|d| !d.hosted) {
            let base = d.api_base.trim_end_matches('/');
            let entry = TargetDeployment {
                id: d.id.clone(),
                model: d.model.clone(),
            };
            if let Some(t) = targets
                .iter_mut()
                .find(|t| t.api_base == base && t.provider == d.provider)
            {
                if t.api_key.is_none() {
                    t.api_key.clone_from(&d.api_key);
                }
                t.deployments.push(entry);
            } else {
                targets.push(ProbeTarget {
                    api_base: base.to_owned(),
                    provider: d.provider,
                    api_key: d.api_key.clone(),
                    tls: d.tls.clone(),
                    deployments: vec![entry],
                });
            }
        }
        targets
    }

    /// A target for tests and tools: `provider` at `api_base` serving `(id, model)` pairs.
    pub fn new(api_base: &str, provider: Provider, deployments: &[(&str, &str)]) -> Self {
        ProbeTarget {
            api_base: api_base.trim_end_matches('/').to_owned(),
            provider,
            api_key: None,
            tls: TlsSettings::default(),
            deployments: deployments
                .iter()
                .map(|(id, model)| TargetDeployment {
                    id: (*id).to_owned(),
                    model: (*model).to_owned(),
                })
                .collect(),
        }
    }
}
