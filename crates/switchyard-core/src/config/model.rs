//! The validated configuration every service runs on.
//!
//! Built once by [`super::validate`] from the raw file; after that nothing on the request path
//! parses or looks up a string key: deployments and groups are addressed by index.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

/// Index of a deployment in [`Config::deployments`].
pub type DeploymentIx = usize;
/// Index of a group in [`Config::groups`].
pub type GroupIx = usize;

#[derive(Clone, Debug)]
pub struct Config {
    pub gateway: GatewaySettings,
    pub router: RouterServiceSettings,
    pub state: StateSettings,
    pub ledger: LedgerSettings,
    pub prober: ProberSettings,
    pub routing: RoutingSettings,
    pub groups: Vec<Group>,
    pub deployments: Vec<Deployment>,
    group_by_name: HashMap<String, GroupIx>,
    /// How each value was read, for `switchyard check`.
    pub notes: Vec<String>,
    /// Keys that were present but not acted on.
    pub warnings: Vec<String>,
    /// Wildcard deployments (`model: ollama/*`): expanded into groups by
    /// [`expand`](super::expand) from what the hosts list.
    pub discovery: Vec<super::DiscoverySpec>,
    /// Deployments of the file that cannot be served, and why (`check` lists them, start warns).
    pub unservable: Vec<Unservable>,
}

impl Config {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        gateway: GatewaySettings,
        router: RouterServiceSettings,
        services: (StateSettings, LedgerSettings, ProberSettings),
        routing: RoutingSettings,
        groups: Vec<Group>,
        deployments: Vec<Deployment>,
        notes: Vec<String>,
        warnings: Vec<String>,
    ) -> Self {
        let (state, ledger, prober) = services;
        let group_by_name = groups
            .iter()
            .enumerate()
            .map(|(i, g)| (g.name.clone(), i))
            .collect();
        Config {
            gateway,
            router,
            state,
            ledger,
            prober,
            routing,
            groups,
            deployments,
            group_by_name,
            notes,
            warnings,
            discovery: Vec::new(),
            unservable: Vec::new(),
        }
    }

    /// Rebuilds the name index after groups were added (discovery expansion).
    pub(crate) fn reindex(&mut self) {
        self.group_by_name = self
            .groups
            .iter()
            .enumerate()
            .map(|(i, g)| (g.name.clone(), i))
            .collect();
    }

    /// Why a name that is no group was written in the file but cannot be served: the reasons of
    /// its deployments, or `None` when the file never named it.
    pub fn unservable_reason(&self, name: &str) -> Option<String> {
        let reasons: Vec<String> = self
            .unservable
            .iter()
            .filter(|u| u.group == name)
            .map(|u| format!("{} ({}): {}", u.model, u.key, u.reason))
            .collect();
        (!reasons.is_empty()).then(|| reasons.join("; "))
    }

    /// Looks a group up by its public name.
    pub fn group(&self, name: &str) -> Option<GroupIx> {
        self.group_by_name.get(name).copied()
    }

    /// How long a request waits for group `g` before it may spill to the next group.
    pub fn spill_after(&self, g: GroupIx) -> super::SpillAfter {
        self.groups
            .get(g)
            .and_then(|g| g.spill_after)
            .unwrap_or(self.routing.queue.spill_after)
    }

    /// The largest known context window in a group.
    pub fn group_window(&self, g: GroupIx) -> Option<u32> {
        self.groups
            .get(g)?
            .deployments
            .iter()
            .filter_map(|&d| self.deployments.get(d)?.context_window)
            .max()
    }
}

#[derive(Clone, Debug)]
pub struct GatewaySettings {
    pub listen: SocketAddr,
    /// Where `switchyard gateway` finds the router (`http://host:port`).
    pub router_address: String,
    pub max_body_bytes: usize,
    /// A stream with no event for this long gets an SSE comment, so proxies and clients do not
    /// time out while a long prompt is processed.
    pub sse_keepalive: Duration,
    /// When set, every API route needs it (`Authorization: Bearer …` or `x-api-key`).
    pub master_key: Option<String>,
    /// The secret Switchyard's processes present to each other's gRPC services
    /// (`general_settings.internal_secret` or `SWITCHYARD_INTERNAL_SECRET`); when unset but a
    /// master key is, each process derives the same one from the master key.
    pub internal_secret: Option<String>,
    /// Whether `/metrics` needs the master key too (health endpoints never do).
    pub metrics_require_key: bool,
    /// Most messages one chat request may carry (more: 400).
    pub max_messages: usize,
    /// Longest a client may take to send a request head (slow clients are cut).
    pub header_read_timeout: Duration,
    /// Longest a client may take to send a request body.
    pub body_read_timeout: Duration,
    /// How long requests in progress may run on after a shutdown signal.
    pub shutdown_grace: Duration,
    /// Browser origins allowed to call the API (`*`: any; empty: no CORS headers at all).
    pub cors_allow_origins: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct RouterServiceSettings {
    pub listen: SocketAddr,
    /// Where a separate router serves `/metrics` over HTTP (`None`: no metrics listener).
    pub metrics_listen: Option<SocketAddr>,
}

/// Where state shared between replicas lives: Redis when a URL is given, else this process.
#[derive(Clone, Debug)]
pub struct StateSettings {
    pub redis_url: Option<String>,
    /// Prefix of every Redis key, so several installations can share one Redis.
    pub key_prefix: String,
}

/// The usage ledger: its database, its service address, and the router's local spool.
#[derive(Clone, Debug)]
pub struct LedgerSettings {
    /// `postgres://…` or `sqlite://…`; `None` = SQLite file `switchyard-usage.db` in the data dir.
    pub database_url: Option<String>,
    /// Where `switchyard ledger` listens.
    pub listen: SocketAddr,
    /// Where a separate router finds the ledger (`http://host:port`); `None` = in process.
    pub address: Option<String>,
    /// Records not yet delivered wait here; `None` = `switchyard-spool.log` in the data dir.
    pub spool_path: Option<String>,
    pub spool_max_bytes: u64,
    /// Where `switchyard ledger` serves Prometheus `/metrics` (`None`: nowhere).
    pub metrics_listen: Option<SocketAddr>,
}

#[derive(Clone, Debug)]
pub struct ProberSettings {
    pub enabled: bool,
    pub interval: Duration,
    pub timeout: Duration,
    /// Where `switchyard prober` serves Prometheus `/metrics` (`None`: nowhere).
    pub metrics_listen: Option<SocketAddr>,
}

/// LiteLLM's strategy names are accepted; the ones not implemented yet behave as `Ordered`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    Ordered,
    SimpleShuffle,
    LeastBusy,
    LatencyBased,
    UsageBased,
    WarmFirst,
}

impl Strategy {
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "ordered" | "order" => Strategy::Ordered,
            "simple-shuffle" => Strategy::SimpleShuffle,
            "least-busy" => Strategy::LeastBusy,
            "latency-based-routing" | "latency-based" => Strategy::LatencyBased,
            "usage-based-routing" | "usage-based-routing-v2" | "usage-based" => {
                Strategy::UsageBased
            }
            "warm-first" => Strategy::WarmFirst,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Ordered => "ordered",
            Strategy::SimpleShuffle => "simple-shuffle",
            Strategy::LeastBusy => "least-busy",
            Strategy::LatencyBased => "latency-based-routing",
            Strategy::UsageBased => "usage-based-routing",
            Strategy::WarmFirst => "warm-first",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Timeouts {
    pub connect: Duration,
    /// Until the response head and first token arrive.
    pub first_byte: Duration,
    /// Longest silence between two chunks of a stream.
    pub idle: Duration,
    /// The whole attempt.
    pub total: Duration,
}

#[derive(Clone, Debug)]
pub struct RoutingSettings {
    pub strategy: Strategy,
    /// Extra passes over the candidate list after every candidate failed retryably.
    pub num_retries: u32,
    pub retry_backoff: Duration,
    /// Failures within a minute before a deployment cools down.
    pub allowed_fails: u32,
    pub cooldown_time: Duration,
    /// Output tokens reserved when the request does not say `max_tokens`.
    pub reserve_output_tokens: u32,
    pub safety_margin_ratio: f32,
    pub safety_margin_tokens: u32,
    /// A reported prompt below this share of our estimate means the backend truncated it.
    pub truncation_ratio: f32,
    /// How long an OpenAI-compatible server's own tokenizer (`/tokenize`, `/extras/tokenize`) may
    /// take to count a prompt whose estimate straddles a window boundary; zero never asks.
    pub backend_tokenize_timeout: Duration,
    pub timeouts: Timeouts,
    /// The capacity queue and the default spill policy.
    pub queue: super::QueueSettings,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Provider {
    /// Ollama's native API (`/api/chat`), with `num_ctx` pinned to the window.
    Ollama,
    /// Any OpenAI-compatible server (llama.cpp's `llama-server`, vLLM, …).
    OpenAi,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Ollama => "ollama",
            Provider::OpenAi => "openai",
        }
    }
}

/// Where a deployment's context window came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WindowSource {
    /// Written in the config under this key.
    Config(String),
    /// Read from the backend by model discovery (what was read, and any cap applied).
    Discovered(String),
    /// Not configured: will be read from the backend.
    Unknown,
}

#[derive(Clone, Debug)]
pub struct Deployment {
    /// Stable id: `model_info.id`, the native `id`, or `group/model@host`.
    pub id: String,
    pub group: GroupIx,
    pub provider: Provider,
    /// The backend's own model name (`llama3.2:1b`).
    pub model: String,
    /// Base URL without a trailing slash.
    pub api_base: String,
    pub api_key: Option<String>,
    pub context_window: Option<u32>,
    pub window_source: WindowSource,
    /// Ollama `keep_alive`, passed through.
    pub keep_alive: Option<serde_json::Value>,
    /// Extra Ollama options from the config (LiteLLM forwards unknown params there).
    pub options: serde_json::Map<String, serde_json::Value>,
    /// Ollama only: let the server truncate an over-long prompt silently (its default) instead of
    /// sending `"truncate": false`, which makes it answer with an error Switchyard falls back on.
    pub silent_truncation: bool,
    /// How a partial answer is continued on this deployment after another one failed mid-stream.
    pub continuation: Continuation,
    /// A tokenizer file (GGUF or `tokenizer.json`) giving exact counts for this model.
    pub tokenizer: Option<String>,
    /// The chat-template family, from the config or guessed from the model name.
    pub template: crate::tokens::TemplateFamily,
    /// Lower is tried first within the group (LiteLLM `order`).
    pub order: u32,
    pub timeouts: Timeouts,
    /// Chat or embeddings (LiteLLM `model_info.mode`, native `mode`).
    pub mode: Mode,
    /// Slots, requests and tokens per minute, and shuffle weight.
    pub capacity: super::Capacity,
    /// How an `https://` connection to the backend is checked (unused for `http://`).
    pub tls: TlsSettings,
    /// A hosted provider (OpenAI, Groq, …) rather than a server of the user's: not probed
    /// actively (passive health only), its key is required.
    pub hosted: bool,
    /// Output limit sent when a request sets none (LiteLLM's `litellm_params.max_tokens` read
    /// as an output limit).
    pub max_output_tokens: Option<u32>,
    /// Set when model discovery created this deployment (`model: ollama/*`).
    pub discovered: Option<Discovered>,
}

/// TLS to one backend: system roots unless a CA file is given; hosts sharing an `api_base` share
/// one setting.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct TlsSettings {
    /// Accept any certificate (LiteLLM `ssl_verify: false`).
    pub insecure: bool,
    /// PEM file of the CA(s) to trust instead of the system roots (`ssl_verify: /path/ca.pem`).
    pub ca_file: Option<String>,
    /// PEM file of a client certificate chain to present (may also hold the key).
    pub client_cert: Option<String>,
    /// PEM file of the client certificate's private key (when not in `client_cert`).
    pub client_key: Option<String>,
}

/// A deployment written in the file that Switchyard does not serve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unservable {
    /// The group (`model_name`) it would have served.
    pub group: String,
    /// Where it is in the file (`model_list[3]`).
    pub key: String,
    /// Its `litellm_params.model`.
    pub model: String,
    pub reason: String,
}

/// Where a discovered deployment came from, and what its server said about the model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Discovered {
    /// The wildcard entry and host: `ollama/* at http://gpu:11434 (model_list[3])`.
    pub from: String,
    /// The model family the server reports (`llama`, `gemma3`, …).
    pub family: Option<String>,
    /// What the server says the model can do (`completion`, `embedding`, `vision`, `tools`, …).
    pub capabilities: Vec<String>,
}

/// What a deployment (and so its group) serves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// Chat completions (and the APIs carried over them).
    #[default]
    Chat,
    /// Embeddings (`/v1/embeddings`).
    Embedding,
}

impl Mode {
    /// LiteLLM's `model_info.mode` values; `completion` and `responses` are served as chat.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "chat" | "completion" | "responses" => Some(Mode::Chat),
            "embedding" | "embeddings" => Some(Mode::Embedding),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Chat => "chat",
            Mode::Embedding => "embedding",
        }
    }
}

/// How to ask a deployment to continue a partial answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Continuation {
    /// No `continuation` key: found out once per deployment when first needed (Ollama's native
    /// API always continues; an OpenAI-compatible server is identified by its routes).
    Auto,
    /// Send the partial answer as a trailing assistant message (Ollama, current llama-server).
    Prefill,
    /// Render the chat template up to the open assistant turn and request a text completion
    /// (`/v1/completions`), for servers that close a trailing assistant message.
    Completions,
}

impl Continuation {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "auto" => Some(Continuation::Auto),
            "prefill" => Some(Continuation::Prefill),
            "completions" => Some(Continuation::Completions),
            _ => None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Group {
    pub name: String,
    pub deployments: Vec<DeploymentIx>,
    /// Groups tried after this one, in order.
    pub fallbacks: Vec<GroupIx>,
    /// Groups tried only when the prompt does not fit (LiteLLM `context_window_fallbacks`).
    pub context_fallbacks: Vec<GroupIx>,
    /// What every deployment of the group serves.
    pub mode: Mode,
    /// `groups.<name>.spill_after`; `None`: `routing.spill_after`.
    pub spill_after: Option<super::SpillAfter>,
}
