//! Latency histograms and their summary: HDR histograms in nanoseconds (1 ns to 10 minutes, three
//! significant digits), reduced to the percentiles the report prints, in microseconds.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Highest recordable latency: 10 minutes, in nanoseconds.
const MAX_NS: u64 = 600_000_000_000;

/// A new, empty latency histogram.
pub fn histogram() -> anyhow::Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, MAX_NS, 3).map_err(|e| anyhow::anyhow!("histogram: {e}"))
}

/// Percentiles of one latency distribution, in microseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub count: u64,
    pub min_us: f64,
    pub mean_us: f64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

impl Summary {
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Summary::default();
        }
        Summary {
            count: h.len(),
            min_us: us(h.min()),
            mean_us: h.mean() / 1000.0,
            p50_us: us(h.value_at_quantile(0.50)),
            p90_us: us(h.value_at_quantile(0.90)),
            p99_us: us(h.value_at_quantile(0.99)),
            p999_us: us(h.value_at_quantile(0.999)),
            max_us: us(h.max()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn percentiles_in_microseconds() {
        let mut h = histogram().unwrap();
        for i in 1..=1000u64 {
            h.record(i * 1000).unwrap();
        }
        let s = Summary::of(&h);
        assert_eq!(s.count, 1000);
        assert!((s.p50_us - 500.0).abs() < 1.0, "{s:?}");
        assert!((s.p99_us - 990.0).abs() < 1.0, "{s:?}");
        assert!((s.max_us - 1000.0).abs() < 1.0, "{s:?}");
        assert_eq!(Summary::of(&histogram().unwrap()), Summary::default());
    }
}
