//! Prometheus metrics of the routing service: what was asked, what served it, what failed and
//! why, tokens, latency, time to first token, and Switchyard's own overhead.
//!
//! Label values come from a closed vocabulary — configured group and deployment ids, failure
//! class labels, request status codes — so the number of series is bounded by the config.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::exemplar::HistogramWithExemplars;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    group: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AttemptLabels {
    deployment: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenLabels {
    deployment: String,
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GroupLabels {
    group: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeploymentLabels {
    deployment: String,
}

type Histograms = Family<GroupLabels, Histogram, fn() -> Histogram>;

/// The exemplar of a latency observation: the request's trace, for a click from a slow bucket
/// to the trace in Grafana.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct TraceLabels {
    trace_id: String,
}

type LatencyHistograms = Family<
    GroupLabels,
    HistogramWithExemplars<TraceLabels>,
    fn() -> HistogramWithExemplars<TraceLabels>,
>;

fn latency_histogram() -> HistogramWithExemplars<TraceLabels> {
    HistogramWithExemplars::new(exponential_buckets(0.0001, 2.0, 21))
}

fn seconds_histogram() -> Histogram {
    // 100 µs … ~100 s.
    Histogram::new(exponential_buckets(0.0001, 2.0, 21))
}

/// Handles on one deployment's per-request series, made once so the request path finds them
/// with a map lookup instead of building label strings.
struct DeploymentHandles {
    attempts_ok: Counter,
    prompt_tokens: Counter,
    completion_tokens: Counter,
    inflight: Gauge,
}

/// The same for one group.
struct GroupHandles {
    requests_ok: Counter,
    latency: HistogramWithExemplars<TraceLabels>,
    ttft: Histogram,
}

/// The `group` label of requests for a model the config does not have.
const UNKNOWN_GROUP: &str = "(unknown)";

pub struct RouterMetrics {
    /// Shared with the metrics of a reloaded config (the families too), so series carry over.
    registry: std::sync::Arc<Registry>,
    deployments: HashMap<String, DeploymentHandles>,
    groups: HashMap<String, GroupHandles>,
    requests: Family<RequestLabels, Counter>,
    attempts: Family<AttemptLabels, Counter>,
    fallbacks: Family<ReasonLabels, Counter>,
    continuations: Family<ReasonLabels, Counter>,
    truncated_prompts: Family<DeploymentLabels, Counter>,
    tokens: Family<TokenLabels, Counter>,
    latency: LatencyHistograms,
    ttft: Histograms,
    overhead: Histogram,
    inflight: Family<DeploymentLabels, Gauge>,
    deployment_up: Family<DeploymentLabels, Gauge>,
    deployment_loaded: Family<DeploymentLabels, Gauge>,
    redis_errors: Counter,
    ledger_records: Family<LedgerLabels, Counter>,
    ledger_delivery_failures: Counter,
    ledger_pending: Gauge,
    ledger_spool: Gauge,
    /// Queue, spills and slots (`metrics_capacity`).
    pub(crate) capacity: crate::metrics_capacity::CapacityMetrics,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LedgerLabels {
    outcome: &'static str,
}

impl RouterMetrics {
    /// Metrics with every configured deployment's and group's common series made up front.
    pub(crate) fn for_config(config: &switchyard_core::config::Config) -> Self {
        let mut m = Self::default();
        m.add_handles(config);
        m
    }

    /// The metrics of a reloaded config: the same registry and series, so a deployment or group
    /// that still exists keeps counting where it was. A removed deployment's gauges (health,
    /// in flight) are dropped; its counters stay, as the history they are.
    pub(crate) fn carried(&self, config: &switchyard_core::config::Config) -> Self {
        let mut m = RouterMetrics {
            capacity: self.capacity.clone(),
            registry: self.registry.clone(),
            deployments: HashMap::new(),
            groups: HashMap::new(),
            requests: self.requests.clone(),
            attempts: self.attempts.clone(),
            fallbacks: self.fallbacks.clone(),
            continuations: self.continuations.clone(),
            truncated_prompts: self.truncated_prompts.clone(),
            tokens: self.tokens.clone(),
            latency: self.latency.clone(),
            ttft: self.ttft.clone(),
            overhead: self.overhead.clone(),
            inflight: self.inflight.clone(),
            deployment_up: self.deployment_up.clone(),
            deployment_loaded: self.deployment_loaded.clone(),
            redis_errors: self.redis_errors.clone(),
            ledger_records: self.ledger_records.clone(),
            ledger_delivery_failures: self.ledger_delivery_failures.clone(),
            ledger_pending: self.ledger_pending.clone(),
            ledger_spool: self.ledger_spool.clone(),
        };
        for id in self.deployments.keys() {
            if config.deployments.iter().any(|d| &d.id == id) {
                continue;
            }
            let labels = DeploymentLabels {
                deployment: id.clone(),
            };
            m.deployment_up.remove(&labels);
            m.deployment_loaded.remove(&labels);
            m.inflight.remove(&labels);
            m.capacity.forget(id);
        }
        m.add_handles(config);
        m
    }

    fn add_handles(&mut self, config: &switchyard_core::config::Config) {
        let m = self;
        // Each handle is cloned out of its family in a statement of its own: `get_or_create`
        // returns a read guard, and a second call on the same family while one is alive
        // would wait for a write lock forever.
        for d in &config.deployments {
            let token_labels = |kind| TokenLabels {
                deployment: d.id.clone(),
                kind,
            };
            let attempts_ok = m
                .attempts
                .get_or_create(&AttemptLabels {
                    deployment: d.id.clone(),
                    outcome: "ok".into(),
                })
                .clone();
            let prompt_tokens = m.tokens.get_or_create(&token_labels("prompt")).clone();
            let completion_tokens = m.tokens.get_or_create(&token_labels("completion")).clone();
            let inflight = m
                .inflight
                .get_or_create(&DeploymentLabels {
                    deployment: d.id.clone(),
                })
                .clone();
            m.deployments.insert(
                d.id.clone(),
                DeploymentHandles {
                    attempts_ok,
                    prompt_tokens,
                    completion_tokens,
                    inflight,
                },
            );
        }
        m.capacity.prepare(config);
        for g in &config.groups {
            let labels = GroupLabels {
                group: g.name.clone(),
            };
            let requests_ok = m
                .requests
                .get_or_create(&RequestLabels {
                    group: g.name.clone(),
                    status: "ok".into(),
                })
                .clone();
            let latency = m.latency.get_or_create(&labels).clone();
            let ttft = m.ttft.get_or_create(&labels).clone();
            m.groups.insert(
                g.name.clone(),
                GroupHandles {
                    requests_ok,
                    latency,
                    ttft,
                },
            );
        }
    }
}

impl Default for RouterMetrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("switchyard");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "Requests by requested group and final status (ok or error code)",
            requests.clone(),
        );
        let attempts = Family::<AttemptLabels, Counter>::default();
        registry.register(
            "attempts",
            "Backend attempts by deployment and outcome (ok or failure class)",
            attempts.clone(),
        );
        let fallbacks = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "fallbacks",
            "Moves to another candidate before the first byte, by failure class",
            fallbacks.clone(),
        );
        let continuations = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "continuations",
            "Streams continued on another candidate after the first byte, by failure class",
            continuations.clone(),
        );
        let truncated_prompts = Family::<DeploymentLabels, Counter>::default();
        registry.register(
            "truncated_prompts",
            "Streamed answers made from a prompt the backend silently truncated (committed \
             before the usage report showed it), by deployment",
            truncated_prompts.clone(),
        );
        let tokens = Family::<TokenLabels, Counter>::default();
        registry.register(
            "tokens",
            "Prompt and completion tokens by serving deployment",
            tokens.clone(),
        );
        let latency: LatencyHistograms = Family::new_with_constructor(
            latency_histogram as fn() -> HistogramWithExemplars<TraceLabels>,
        );
        registry.register(
            "request_duration_seconds",
            "Request latency (arrival to last event)",
            latency.clone(),
        );
        let ttft: Histograms = Family::new_with_constructor(seconds_histogram as fn() -> Histogram);
        registry.register(
            "time_to_first_token_seconds",
            "Arrival to the first token sent to the client",
            ttft.clone(),
        );
        let overhead = seconds_histogram();
        registry.register(
            "overhead_seconds",
            "Switchyard's own time per request: total minus time waiting on backends",
            overhead.clone(),
        );
        let inflight = Family::<DeploymentLabels, Gauge>::default();
        registry.register(
            "inflight",
            "Attempts in progress on each deployment (this replica)",
            inflight.clone(),
        );
        let deployment_up = Family::<DeploymentLabels, Gauge>::default();
        registry.register(
            "deployment_up",
            "Deployment health: 1 up, 0 down, -1 unknown",
            deployment_up.clone(),
        );
        let deployment_loaded = Family::<DeploymentLabels, Gauge>::default();
        registry.register(
            "deployment_loaded",
            "Model resident in the backend's memory (warm): 1 yes, 0 no, -1 unknown",
            deployment_loaded.clone(),
        );
        let redis_errors = Counter::default();
        registry.register(
            "redis_errors",
            "Redis calls of the shared state that failed or timed out",
            redis_errors.clone(),
        );
        let ledger_records = Family::<LedgerLabels, Counter>::default();
        registry.register(
            "recorder_records",
            "Usage records handed to the ledger, by outcome (delivered, lost)",
            ledger_records.clone(),
        );
        let ledger_delivery_failures = Counter::default();
        registry.register(
            "recorder_delivery_failures",
            "Failed deliveries to the ledger (the records stay spooled and are retried)",
            ledger_delivery_failures.clone(),
        );
        let ledger_pending = Gauge::default();
        registry.register(
            "recorder_pending_records",
            "Usage records not yet acknowledged by the ledger (memory and spool)",
            ledger_pending.clone(),
        );
        let ledger_spool = Gauge::default();
        registry.register(
            "recorder_spool_records",
            "Usage records in the on-disk spool, waiting for the ledger",
            ledger_spool.clone(),
        );
        let capacity = crate::metrics_capacity::CapacityMetrics::register(&mut registry);
        RouterMetrics {
            capacity,
            registry: std::sync::Arc::new(registry),
            deployments: HashMap::new(),
            groups: HashMap::new(),
            deployment_loaded,
            redis_errors,
            ledger_records,
            ledger_delivery_failures,
            ledger_pending,
            ledger_spool,
            requests,
            attempts,
            fallbacks,
            continuations,
            truncated_prompts,
            tokens,
            latency,
            ttft,
            overhead,
            inflight,
            deployment_up,
        }
    }
}

impl RouterMetrics {
    pub(crate) fn request(
        &self,
        group: &str,
        status: &str,
        latency: Duration,
        ttft: Option<Duration>,
        overhead: Duration,
        trace_id: Option<&str>,
    ) {
        let exemplar = trace_id.map(|t| TraceLabels {
            trace_id: t.to_owned(),
        });
        self.overhead.observe(overhead.as_secs_f64());
        if let Some(h) = self.groups.get(group) {
            if status == "ok" {
                h.requests_ok.inc();
            } else {
                self.count_request(group, status);
            }
            h.latency.observe(latency.as_secs_f64(), exemplar, None);
            if let Some(t) = ttft {
                h.ttft.observe(t.as_secs_f64());
            }
            return;
        }
        // A group the config does not name (an unknown model): counted under one label, so
        // clients cannot create series at will.
        self.count_request(UNKNOWN_GROUP, status);
        let g = GroupLabels {
            group: UNKNOWN_GROUP.to_string(),
        };
        self.latency
            .get_or_create(&g)
            .observe(latency.as_secs_f64(), exemplar, None);
        if let Some(t) = ttft {
            self.ttft.get_or_create(&g).observe(t.as_secs_f64());
        }
    }

    fn count_request(&self, group: &str, status: &str) {
        self.requests
            .get_or_create(&RequestLabels {
                group: group.to_string(),
                status: status.to_string(),
            })
            .inc();
    }

    pub(crate) fn attempt(&self, deployment: &str, outcome: &str) {
        if outcome == "ok"
            && let Some(h) = self.deployments.get(deployment)
        {
            h.attempts_ok.inc();
            return;
        }
        self.attempts
            .get_or_create(&AttemptLabels {
                deployment: deployment.to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
    }

    pub(crate) fn fallback(&self, reason: &str) {
        self.fallbacks
            .get_or_create(&ReasonLabels {
                reason: reason.to_string(),
            })
            .inc();
    }

    pub(crate) fn continuation(&self, reason: &str) {
        self.continuations
            .get_or_create(&ReasonLabels {
                reason: reason.to_string(),
            })
            .inc();
    }

    pub(crate) fn truncated_prompt(&self, deployment: &str) {
        self.truncated_prompts
            .get_or_create(&DeploymentLabels {
                deployment: deployment.to_string(),
            })
            .inc();
    }

    pub(crate) fn tokens(&self, deployment: &str, prompt: u32, completion: u32) {
        if let Some(h) = self.deployments.get(deployment) {
            h.prompt_tokens.inc_by(u64::from(prompt));
            h.completion_tokens.inc_by(u64::from(completion));
            return;
        }
        let d = deployment.to_string();
        self.tokens
            .get_or_create(&TokenLabels {
                deployment: d.clone(),
                kind: "prompt",
            })
            .inc_by(u64::from(prompt));
        self.tokens
            .get_or_create(&TokenLabels {
                deployment: d,
                kind: "completion",
            })
            .inc_by(u64::from(completion));
    }

    pub(crate) fn inflight(&self, deployment: &str, delta: i64) {
        if let Some(h) = self.deployments.get(deployment) {
            h.inflight.inc_by(delta);
            return;
        }
        self.inflight
            .get_or_create(&DeploymentLabels {
                deployment: deployment.to_string(),
            })
            .inc_by(delta);
    }

    pub(crate) fn set_health(&self, deployment: &str, value: i64, loaded: Option<bool>) {
        let labels = DeploymentLabels {
            deployment: deployment.to_string(),
        };
        self.deployment_up.get_or_create(&labels).set(value);
        let loaded = loaded.map_or(-1, i64::from);
        self.deployment_loaded.get_or_create(&labels).set(loaded);
    }

    /// Copies process-wide counters kept elsewhere (Redis connection, ledger recorder).
    pub(crate) fn set_process(&self, redis_errors: Option<u64>, sink: Option<crate::SinkStats>) {
        if let Some(n) = redis_errors {
            self.redis_errors.inner().store(n, Ordering::Relaxed);
        }
        if let Some(s) = sink {
            for (outcome, n) in [("delivered", s.delivered), ("lost", s.lost)] {
                self.ledger_records
                    .get_or_create(&LedgerLabels { outcome })
                    .inner()
                    .store(n, Ordering::Relaxed);
            }
            self.ledger_delivery_failures
                .inner()
                .store(s.delivery_failures, Ordering::Relaxed);
            self.ledger_pending
                .set(i64::try_from(s.pending).unwrap_or(i64::MAX));
            self.ledger_spool
                .set(i64::try_from(s.spool_records).unwrap_or(i64::MAX));
        }
    }

    /// The exposition text (OpenMetrics, which Prometheus reads).
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
