//! The configuration file as written: every key either dialect may use, nothing checked yet.
//!
//! One schema accepts both Switchyard's own keys (`deployments`, `fallbacks`, `routing`, `gateway`,
//! `router`) and LiteLLM's proxy keys (`model_list`, `router_settings`, `general_settings`,
//! `litellm_settings`), so a LiteLLM file loads unchanged and can be extended with ours.
//! Unknown keys are collected as warnings by the loader, not rejected: LiteLLM files carry many
//! settings we do not act on.

// Fields are declared so LiteLLM files parse without "unknown key" warnings, even where this
// version does not act on them yet.
#![allow(dead_code)]

use serde::Deserialize;
use std::collections::BTreeMap;

use super::lenient::{Number, Seconds};

#[derive(Debug, Default, Deserialize)]
pub struct RawConfig {
    // --- LiteLLM dialect ---
    pub model_list: Option<Vec<RawLiteLlmModel>>,
    pub router_settings: Option<RawRouterSettings>,
    pub general_settings: Option<RawGeneralSettings>,
    pub litellm_settings: Option<RawLiteLlmSettings>,
    pub environment_variables: Option<BTreeMap<String, serde_json::Value>>,
    // --- Switchyard dialect ---
    pub deployments: Option<Vec<RawDeployment>>,
    pub fallbacks: Option<RawFallbacks>,
    pub context_window_fallbacks: Option<RawFallbacks>,
    pub routing: Option<RawRouting>,
    pub gateway: Option<RawGateway>,
    pub router: Option<RawRouterService>,
    pub state: Option<RawState>,
    pub ledger: Option<RawLedger>,
    pub prober: Option<RawProber>,
    /// Per-group settings (`spill_after`), by group name.
    pub groups: Option<BTreeMap<String, super::capacity::RawGroupSettings>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawState {
    pub redis_url: Option<String>,
    pub key_prefix: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawLedger {
    pub database_url: Option<String>,
    pub listen: Option<String>,
    pub address: Option<String>,
    pub spool_path: Option<String>,
    pub spool_max_bytes: Option<Number>,
    pub metrics_listen: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawProber {
    pub interval: Option<Seconds>,
    pub timeout: Option<Seconds>,
    pub enabled: Option<bool>,
    pub metrics_listen: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct RawLiteLlmModel {
    pub model_name: String,
    pub litellm_params: RawLiteLlmParams,
    pub model_info: Option<RawModelInfo>,
}

#[derive(Debug, Deserialize)]
pub struct RawLiteLlmParams {
    pub model: String,
    pub api_base: Option<String>,
    pub api_key: Option<String>,
    pub max_tokens: Option<Number>,
    pub num_ctx: Option<Number>,
    pub keep_alive: Option<serde_json::Value>,
    pub timeout: Option<Seconds>,
    pub stream_timeout: Option<Seconds>,
    pub rpm: Option<Number>,
    pub tpm: Option<Number>,
    pub order: Option<Number>,
    pub weight: Option<Number>,
    pub max_parallel_requests: Option<Number>,
    /// LiteLLM: `false` accepts any certificate; a path is a CA file to trust.
    pub ssl_verify: Option<RawSslVerify>,
    /// A client certificate (PEM; LiteLLM's global key, here per deployment too).
    pub ssl_certificate: Option<String>,
    /// Switchyard: the client certificate's key, when not in the `ssl_certificate` file.
    pub ssl_certificate_key: Option<String>,
    /// Every other key: LiteLLM forwards them into Ollama's `options`.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// `ssl_verify`: a boolean, or the path of a CA file (LiteLLM's two forms).
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum RawSslVerify {
    Bool(bool),
    Path(String),
}

/// Switchyard's native `tls:` block of a deployment.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct RawTls {
    pub verify: Option<bool>,
    pub ca_file: Option<String>,
    pub client_cert: Option<String>,
    pub client_key: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct RawModelInfo {
    pub id: Option<String>,
    pub mode: Option<String>,
    pub max_input_tokens: Option<Number>,
    pub max_tokens: Option<Number>,
    pub max_output_tokens: Option<Number>,
    pub base_model: Option<String>,
    pub input_cost_per_token: Option<f64>,
    pub output_cost_per_token: Option<f64>,
    /// Switchyard: a tokenizer file (GGUF or tokenizer.json) for exact counts.
    pub tokenizer: Option<String>,
    /// Switchyard: the chat-template family (llama3, mistral, chatml) when the name does not say.
    pub template: Option<String>,
    /// Switchyard: how a wildcard entry (`ollama/*`) names, filters and chains what it discovers.
    pub discovery: Option<RawDiscovery>,
}

/// Options of a wildcard deployment (`model: ollama/*`), the same in both dialects.
#[derive(Debug, Default, Deserialize)]
pub struct RawDiscovery {
    /// Globs on the backend's model name; only matching models are taken (default: all).
    pub include: Option<Vec<String>>,
    /// Globs on the backend's model name; matching models are left out.
    pub exclude: Option<Vec<String>>,
    /// Upper bound on a discovered model's window (its trained context is often far larger
    /// than what fits in memory).
    pub max_context: Option<Number>,
    /// `by_context`: the discovered chat groups fall back from the smallest window to the largest.
    pub auto_fallbacks: Option<String>,
}

/// `fallbacks` in either form: a plain ordered chain, or LiteLLM's list of one-key maps.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawFallbacks {
    Chain(Vec<String>),
    Maps(Vec<BTreeMap<String, Vec<String>>>),
    Map(BTreeMap<String, Vec<String>>),
}

#[derive(Debug, Default, Deserialize)]
pub struct RawRouterSettings {
    pub routing_strategy: Option<String>,
    pub num_retries: Option<Number>,
    pub retry_after: Option<Seconds>,
    pub allowed_fails: Option<Number>,
    pub cooldown_time: Option<Seconds>,
    pub timeout: Option<Seconds>,
    pub stream_timeout: Option<Seconds>,
    pub max_fallbacks: Option<Number>,
    pub enable_pre_call_checks: Option<bool>,
    pub fallbacks: Option<RawFallbacks>,
    pub context_window_fallbacks: Option<RawFallbacks>,
    pub default_fallbacks: Option<Vec<String>>,
    pub redis_host: Option<String>,
    pub redis_port: Option<Number>,
    pub redis_password: Option<String>,
    pub redis_url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawGeneralSettings {
    pub master_key: Option<String>,
    pub internal_secret: Option<String>,
    pub database_url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawLiteLlmSettings {
    pub request_timeout: Option<Seconds>,
    pub num_retries: Option<Number>,
    pub drop_params: Option<bool>,
    pub callbacks: Option<serde_json::Value>,
    pub success_callback: Option<serde_json::Value>,
    pub failure_callback: Option<serde_json::Value>,
    /// Default `ssl_verify` of every deployment.
    pub ssl_verify: Option<RawSslVerify>,
    /// Default client certificate of every deployment.
    pub ssl_certificate: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct RawDeployment {
    pub group: String,
    pub id: Option<String>,
    pub provider: String,
    pub model: String,
    pub api_base: Option<String>,
    pub api_key: Option<String>,
    pub context_window: Option<Number>,
    pub keep_alive: Option<serde_json::Value>,
    pub options: Option<BTreeMap<String, serde_json::Value>>,
    pub silent_truncation: Option<bool>,
    pub continuation: Option<String>,
    pub tokenizer: Option<String>,
    pub template: Option<String>,
    pub order: Option<Number>,
    /// `chat` (default) or `embedding`.
    pub mode: Option<String>,
    pub max_parallel_requests: Option<Number>,
    pub rpm: Option<Number>,
    pub tpm: Option<Number>,
    pub weight: Option<Number>,
    /// With `model: "*"`: how the discovered models are named, filtered and chained.
    pub discovery: Option<RawDiscovery>,
    pub tls: Option<RawTls>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawRouting {
    pub strategy: Option<String>,
    pub num_retries: Option<Number>,
    pub retry_backoff: Option<Seconds>,
    pub allowed_fails: Option<Number>,
    pub cooldown_time: Option<Seconds>,
    pub reserve_output_tokens: Option<Number>,
    pub safety_margin_ratio: Option<f64>,
    pub safety_margin_tokens: Option<Number>,
    pub truncation_ratio: Option<f64>,
    /// How long a backend's own tokenizer may take to count a prompt near a window boundary.
    pub backend_tokenize_timeout: Option<Seconds>,
    pub connect_timeout: Option<Seconds>,
    pub first_byte_timeout: Option<Seconds>,
    pub idle_timeout: Option<Seconds>,
    pub total_timeout: Option<Seconds>,
    pub queue_timeout: Option<Seconds>,
    pub max_queue_depth: Option<Number>,
    pub spill_after: Option<super::SpillAfter>,
    pub queue_recheck: Option<Seconds>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawGateway {
    pub listen: Option<String>,
    pub router_address: Option<String>,
    pub max_body_bytes: Option<Number>,
    pub sse_keepalive: Option<Seconds>,
    pub master_key: Option<String>,
    pub internal_secret: Option<String>,
    pub metrics_require_key: Option<bool>,
    pub max_messages: Option<Number>,
    pub header_read_timeout: Option<Seconds>,
    pub body_read_timeout: Option<Seconds>,
    pub shutdown_grace: Option<Seconds>,
    pub cors_allow_origins: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RawRouterService {
    pub listen: Option<String>,
    pub metrics_listen: Option<String>,
}
