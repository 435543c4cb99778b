//! Prometheus metrics of the ledger service: records written, refused and repeated, failed
//! writes, and how long a batch takes to write.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

/// The ledger's counters; cheap to clone (shared).
#[derive(Clone)]
pub struct LedgerMetrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    records: Family<OutcomeLabels, Counter>,
    write_errors: Counter,
    batch_seconds: Histogram,
}

impl Default for LedgerMetrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("switchyard_ledger");
        let records = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "records",
            "Usage records received, by outcome (inserted, duplicate, rejected)",
            records.clone(),
        );
        let write_errors = Counter::default();
        registry.register(
            "write_errors",
            "Batches the database failed to write (the sender retries them)",
            write_errors.clone(),
        );
        // 100 µs … ~6.5 s.
        let batch_seconds = Histogram::new(exponential_buckets(0.0001, 2.0, 17));
        registry.register(
            "batch_write_seconds",
            "Time to write one batch of records",
            batch_seconds.clone(),
        );
        LedgerMetrics {
            inner: Arc::new(Inner {
                registry,
                records,
                write_errors,
                batch_seconds,
            }),
        }
    }
}

impl LedgerMetrics {
    pub(crate) fn written(&self, inserted: u32, duplicates: u32, rejected: usize, took: Duration) {
        let i = &self.inner;
        for (outcome, n) in [
            ("inserted", u64::from(inserted)),
            ("duplicate", u64::from(duplicates)),
            ("rejected", rejected as u64),
        ] {
            i.records
                .get_or_create(&OutcomeLabels { outcome })
                .inc_by(n);
        }
        i.batch_seconds.observe(took.as_secs_f64());
    }

    pub(crate) fn write_failed(&self) {
        self.inner.write_errors.inc();
    }

    /// The exposition text (OpenMetrics, which Prometheus reads).
    pub fn render(&self) -> String {
        let mut out = String::new();
        if encode(&mut out, &self.inner.registry).is_err() {
            out.clear();
        }
        out
    }
}
