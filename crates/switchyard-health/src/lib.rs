//! Health probing and the shared state routing strategies read.
//!
//! - [`Prober`] polls every backend host (Ollama `/api/version`, `/api/tags`, `/api/ps`,
//!   `/api/show`; llama.cpp `/health`, `/props`, `/v1/models`) and writes one
//!   [`DeploymentHealth`] per deployment to a [`HealthStore`].
//! - [`HealthStore`] keeps those states in this process ([`MemoryStore`], the all-in-one
//!   default) or in Redis ([`RedisStore`], shared by every router replica), with TTLs, change
//!   events ([`HealthStore::subscribe`]), passive reports from the router's own requests
//!   ([`HealthStore::report_failure`]) and a lease so only one prober replica probes.
//! - [`HealthView`] is a router's local, lock-light copy of the store, kept current by a
//!   subscription, so the request path never waits on Redis.
//! - [`InflightCounter`] and [`UsageWindow`] are the counters of least-busy and usage-based
//!   routing, in memory or Redis.
//!
//! Everything backed by Redis fails fast (see [`RedisOptions`]) and reports `is_degraded()`;
//! callers log the error and route on what they last knew.

mod counters;
pub mod discovery;
mod error;
mod model;
pub mod passive;
mod prober;
mod redis_conn;
mod store;
mod tls_clients;
mod view;

pub use counters::{
    Admission, InflightCounter, KeyLimiter, KeyLimits, LimitDenied, SlotTry, UsageWindow,
};
pub use error::HealthError;
pub use model::{
    DeploymentHealth, HealthChange, HealthEvent, HealthSnapshot, Source, Status, now_ms,
};
pub use prober::{ProbeTarget, Prober, ProberSettings, TargetDeployment};
pub use redis_conn::{RedisConn, RedisOptions};
pub use store::{
    CatalogWatch, DEFAULT_STATE_TTL, HealthStore, HealthSubscription, MemoryStore, RedisStore,
};
pub use tls_clients::TlsClients;
pub use view::HealthView;
