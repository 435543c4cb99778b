//! The health record every router replica reads: one [`DeploymentHealth`] per deployment.
//!
//! It is what the prober writes, what passive reports adjust and what travels through Redis as
//! JSON, so it is plain serde data with no behaviour beyond a few readers the router needs.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Whether a deployment can take requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Up,
    Down,
    /// Never probed, or the last state expired: routing treats it as up.
    Unknown,
}

/// Who wrote the state last.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The health prober.
    Probe,
    /// A router replica's own observation of a request (`report_failure` / `report_success`).
    Passive,
}

/// What is known about one deployment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentHealth {
    pub status: Status,
    /// The model is listed by the backend (`/api/tags`, `/v1/models`); `None` = not checked.
    pub model_present: Option<bool>,
    /// The model is resident in memory (`/api/ps`; llama.cpp: the server has finished loading).
    pub loaded: Option<bool>,
    /// Context of the loaded runner (`/api/ps` `context_length`, llama.cpp `/props` `n_ctx`).
    pub loaded_context: Option<u32>,
    /// The model's trained context (`/api/show` `<arch>.context_length`, llama.cpp `n_ctx_train`).
    pub trained_context: Option<u32>,
    /// Requests the server runs at once, where it says (llama.cpp `/props` `total_slots`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slots: Option<u32>,
    /// Failed probes or reported failures in a row; 0 after a success.
    pub consecutive_failures: u32,
    /// When `status` last changed (Unix milliseconds).
    pub last_change_ms: u64,
    /// Liveness round trip of the last successful probe.
    pub latency_ms: Option<u32>,
    /// When this record was written (Unix milliseconds).
    pub updated_ms: u64,
    pub source: Source,
    /// Short reason for the status, for explanations and logs ("loading model", "connect: …").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl DeploymentHealth {
    /// The state of a deployment nobody has reported on.
    pub fn unknown() -> Self {
        DeploymentHealth {
            status: Status::Unknown,
            model_present: None,
            loaded: None,
            loaded_context: None,
            trained_context: None,
            slots: None,
            consecutive_failures: 0,
            last_change_ms: 0,
            latency_ms: None,
            updated_ms: 0,
            source: Source::Probe,
            detail: None,
        }
    }

    /// Whether routing may send to this deployment (`Unknown` counts as up).
    pub fn is_routable(&self) -> bool {
        self.status != Status::Down
    }

    /// Whether the model is known to be resident (for warm-first routing).
    pub fn is_warm(&self) -> bool {
        self.status == Status::Up && self.loaded == Some(true)
    }

    /// Whether two records differ in anything routing acts on. Latency and timestamps are left
    /// out, so a probe that only measured a new latency is not a change worth publishing.
    pub fn same_facts(&self, other: &DeploymentHealth) -> bool {
        self.status == other.status
            && self.model_present == other.model_present
            && self.loaded == other.loaded
            && self.loaded_context == other.loaded_context
            && self.trained_context == other.trained_context
            && self.slots == other.slots
            && self.consecutive_failures == other.consecutive_failures
            && self.source == other.source
            && self.detail == other.detail
    }
}

/// Every known state, by deployment id. A deployment that is absent is [`Status::Unknown`].
pub type HealthSnapshot = HashMap<String, DeploymentHealth>;

/// One change, as published on `{prefix}:health:events`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthChange {
    pub deployment: String,
    pub health: DeploymentHealth,
}

/// What a subscription delivers.
#[derive(Clone, Debug, PartialEq)]
pub enum HealthEvent {
    /// The whole current state: sent first, and again after a reconnect or a missed event, so a
    /// subscriber can replace its view instead of patching it.
    Snapshot(HealthSnapshot),
    /// One deployment changed.
    Changed(HealthChange),
}

/// Now, in Unix milliseconds (0 if the clock is before 1970).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
