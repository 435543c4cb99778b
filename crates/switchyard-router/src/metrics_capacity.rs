//! Prometheus series of capacity routing: queue depth and wait time per group, spills and
//! refusals by reason, and slots per deployment. Kept apart from `metrics` so the capacity code
//! owns its own series; they are registered in the router's one registry.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::time::Duration;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GroupLabels {
    group: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GroupReasonLabels {
    group: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeploymentLabels {
    deployment: String,
}

fn wait_histogram() -> Histogram {
    // 1 ms … ~9 min.
    Histogram::new(exponential_buckets(0.001, 2.0, 20))
}

/// Cloned by a reload: the clone shares every family (see `RouterMetrics::carried`).
#[derive(Clone)]
pub(crate) struct CapacityMetrics {
    depth: Family<GroupLabels, Gauge>,
    wait: Family<GroupLabels, Histogram, fn() -> Histogram>,
    spills: Family<GroupReasonLabels, Counter>,
    rejections: Family<GroupReasonLabels, Counter>,
    slots_in_use: Family<DeploymentLabels, Gauge>,
    slots_total: Family<DeploymentLabels, Gauge>,
}

impl CapacityMetrics {
    pub(crate) fn register(registry: &mut Registry) -> Self {
        let m = CapacityMetrics {
            depth: Family::default(),
            wait: Family::new_with_constructor(wait_histogram as fn() -> Histogram),
            spills: Family::default(),
            rejections: Family::default(),
            slots_in_use: Family::default(),
            slots_total: Family::default(),
        };
        registry.register(
            "queue_depth",
            "Requests waiting in the router's capacity queue, by preferred group (this replica)",
            m.depth.clone(),
        );
        registry.register(
            "queue_wait_seconds",
            "Time a request to a group with limited capacity waited for its slot (0 when one was free)",
            m.wait.clone(),
        );
        registry.register(
            "spills",
            "Requests served by a later group of the chain because the preferred group was full, by reason (immediate: spill_after 0; waited: spill_after elapsed)",
            m.spills.clone(),
        );
        registry.register(
            "queue_rejections",
            "Requests refused with 429 by the capacity queue, by reason (queue_full, queue_timeout)",
            m.rejections.clone(),
        );
        registry.register(
            "slots_in_use",
            "Requests in flight on a deployment with a slot limit, across router replicas (last seen)",
            m.slots_in_use.clone(),
        );
        registry.register(
            "slots",
            "Slots of a deployment: max_parallel_requests, or llama.cpp's total_slots",
            m.slots_total.clone(),
        );
        m
    }

    /// Makes every group's series up front (at zero), so dashboards show them before the first
    /// wait, spill or refusal.
    pub(crate) fn prepare(&self, config: &switchyard_core::config::Config) {
        for g in &config.groups {
            let group = GroupLabels {
                group: g.name.clone(),
            };
            self.depth.get_or_create(&group).set(0);
            let _ = self.wait.get_or_create(&group);
            for reason in ["immediate", "waited"] {
                let _ = self.spills.get_or_create(&GroupReasonLabels {
                    group: g.name.clone(),
                    reason: reason.to_owned(),
                });
            }
            for reason in ["queue_full", "queue_timeout"] {
                let _ = self.rejections.get_or_create(&GroupReasonLabels {
                    group: g.name.clone(),
                    reason: reason.to_owned(),
                });
            }
        }
    }

    pub(crate) fn depth(&self, group: &str, depth: usize) {
        self.depth
            .get_or_create(&GroupLabels {
                group: group.to_owned(),
            })
            .set(i64::try_from(depth).unwrap_or(i64::MAX));
    }

    pub(crate) fn waited(&self, group: &str, waited: Duration) {
        self.wait
            .get_or_create(&GroupLabels {
                group: group.to_owned(),
            })
            .observe(waited.as_secs_f64());
    }

    pub(crate) fn spill(&self, group: &str, reason: &str) {
        self.spills
            .get_or_create(&GroupReasonLabels {
                group: group.to_owned(),
                reason: reason.to_owned(),
            })
            .inc();
    }

    pub(crate) fn rejected(&self, group: &str, reason: &str) {
        self.rejections
            .get_or_create(&GroupReasonLabels {
                group: group.to_owned(),
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// Sets a deployment's slots and the count in use (at scrape time).
    /// A deployment a reload removed: its slot gauges go with it.
    pub(crate) fn forget(&self, deployment: &str) {
        let labels = DeploymentLabels {
            deployment: deployment.to_string(),
        };
        self.slots_in_use.remove(&labels);
        self.slots_total.remove(&labels);
    }

    pub(crate) fn slots(&self, deployment: &str, total: u32, in_use: i64) {
        let labels = DeploymentLabels {
            deployment: deployment.to_owned(),
        };
        self.slots_total
            .get_or_create(&labels)
            .set(i64::from(total));
        self.slots_in_use.get_or_create(&labels).set(in_use);
    }
}
