//! What model discovery found: the models each host lists, with what its server says about them.
//!
//! The prober fills it (Ollama `/api/tags` + `/api/show`, OpenAI-compatible `/v1/models`) and
//! publishes it through the health store; every process expands its configuration with it
//! ([`expand`](super::expand)). It is plain serde data, keyed by host rather than by wildcard
//! entry, so a configuration reload that changes the patterns needs no new discovery.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::model::Provider;

/// The models of every discovered host, by [`Catalog::key`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalog {
    pub hosts: BTreeMap<String, HostModels>,
}

/// What one host lists.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostModels {
    /// `ollama` or `openai`.
    pub provider: String,
    pub api_base: String,
    /// Sorted by name.
    pub models: Vec<DiscoveredModel>,
}

/// One model a host lists.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscoveredModel {
    /// The server's own name (`llama3.2:1b`, `qwen3:latest`).
    pub name: String,
    /// The context the server reports for it (trained, or the slot's), when it says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_length: Option<u32>,
    /// Where `context_length` was read (`/api/show llama.context_length`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    /// Ollama's capabilities (`completion`, `embedding`, `vision`, `tools`, `thinking`, …);
    /// empty when the server does not say.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<String>,
}

impl DiscoveredModel {
    /// An embedding model: Ollama says `embedding` and not `completion`.
    pub fn is_embedding(&self) -> bool {
        self.capabilities.iter().any(|c| c == "embedding")
            && !self.capabilities.iter().any(|c| c == "completion")
    }
}

impl Catalog {
    /// The key of a host: provider and base URL.
    pub fn key(provider: Provider, api_base: &str) -> String {
        format!("{} {}", provider.as_str(), api_base.trim_end_matches('/'))
    }

    /// The models of one host, when it was ever listed.
    pub fn host(&self, provider: Provider, api_base: &str) -> Option<&HostModels> {
        self.hosts.get(&Self::key(provider, api_base))
    }

    /// Every model name, as `host-key: name`, for change logs.
    pub fn names(&self) -> Vec<String> {
        self.hosts
            .iter()
            .flat_map(|(k, h)| h.models.iter().map(move |m| format!("{k}: {}", m.name)))
            .collect()
    }
}
