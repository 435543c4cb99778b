//! Whether a long prompt's cheap count range is worth computing before its exact count.
//!
//! The range ([`switchyard_core::bound::CountRange`]) exists to skip an exact count whose answer
//! cannot change the route. Computing it first costs the range always, and the exact count too
//! whenever the range leaves a decision open; counting exactly at once costs the exact count. So
//! the range comes first only while `exact cost × share of ranges that decided > range cost`.
//! The three are measured as requests go: both costs per byte of prompt (moving averages), and
//! how often a range had to be followed by an exact count. The range is one pass at a few
//! nanoseconds a byte; an exact count with warm caches costs about as much, a cold one or text
//! that runs the merges (code, CJK) several times more. Until all three are known, and for one
//! long prompt in [`EXPLORE_EVERY`] after that, the range comes first, so the share stays
//! current. Routes do not depend on the choice: a range decides a candidate only when the exact
//! count could not change the decision.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Picoseconds per byte, as a moving average (0: not measured yet).
struct Cost(AtomicU64);

impl Cost {
    const fn new() -> Self {
        Cost(AtomicU64::new(0))
    }

    fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    /// Adds one measurement (an eighth of its weight; the first one sets the average).
    fn note(&self, bytes: usize, took: Duration) {
        if bytes == 0 {
            return;
        }
        let sample = (took.as_nanos().saturating_mul(1000) / bytes as u128).min(u64::MAX as u128);
        let sample = (sample as u64).max(1);
        let old = self.get();
        let new = if old == 0 {
            sample
        } else {
            old - old / 8 + sample / 8
        };
        self.0.store(new, Ordering::Relaxed);
    }
}

static EXACT: Cost = Cost::new();
static RANGE: Cost = Cost::new();
/// Ranges computed, and those an exact count followed (both halved past [`WINDOW`]).
static RANGES: AtomicU64 = AtomicU64::new(0);
static FOLLOWED: AtomicU64 = AtomicU64::new(0);
/// Long prompts seen (for exploring).
static SEEN: AtomicU64 = AtomicU64::new(0);

/// One long prompt in this many gets its range first whatever the costs.
pub(crate) const EXPLORE_EVERY: u64 = 32;
/// How many ranges the share is taken over, about.
const WINDOW: u64 = 256;

/// Whether the costs and share say the range first: exact × decided share > range.
fn range_pays(exact: u64, range: u64, ranges: u64, followed: u64) -> bool {
    if exact == 0 || range == 0 || ranges == 0 {
        return true;
    }
    let decided = ranges.saturating_sub(followed);
    u128::from(exact) * u128::from(decided) > u128::from(range) * u128::from(ranges)
}

/// Whether a long prompt should get its cheap range before (perhaps instead of) an exact count.
pub(crate) fn range_first() -> bool {
    let seen = SEEN.fetch_add(1, Ordering::Relaxed);
    seen.is_multiple_of(EXPLORE_EVERY)
        || range_pays(
            EXACT.get(),
            RANGE.get(),
            RANGES.load(Ordering::Relaxed),
            FOLLOWED.load(Ordering::Relaxed),
        )
}

/// A range left a decision open, so the prompt was counted exactly too.
pub(crate) fn note_range_followed() {
    FOLLOWED.fetch_add(1, Ordering::Relaxed);
}

/// An exact count of `bytes` took `took`.
pub(crate) fn note_exact(bytes: usize, took: Duration) {
    EXACT.note(bytes, took);
}

/// A range of `bytes` was computed for a prompt and took `took`.
pub(crate) fn note_range(bytes: usize, took: Duration) {
    RANGE.note(bytes, took);
    if RANGES.fetch_add(1, Ordering::Relaxed) >= WINDOW {
        RANGES.store(WINDOW / 2, Ordering::Relaxed);
        let f = FOLLOWED.load(Ordering::Relaxed);
        FOLLOWED.store(f / 2, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_average_follows_its_samples() {
        let c = Cost::new();
        c.note(1000, Duration::from_micros(4));
        assert_eq!(c.get(), 4000);
        for _ in 0..100 {
            c.note(1000, Duration::from_micros(2));
        }
        assert!((2000..2100).contains(&c.get()), "{}", c.get());
        c.note(0, Duration::from_secs(1));
        assert!((2000..2100).contains(&c.get()));
    }

    #[test]
    fn the_range_comes_first_only_while_it_pays() {
        // Nothing known yet.
        assert!(range_pays(0, 5, 0, 0));
        assert!(range_pays(4, 0, 10, 0));
        // Every range was followed by an exact count: the range is pure cost.
        assert!(!range_pays(20_000, 5_000, 100, 100));
        // Every range decided: worth it while it is cheaper than counting.
        assert!(range_pays(6_000, 5_000, 100, 0));
        assert!(!range_pays(4_000, 5_000, 100, 0));
        // Half decided: the exact count must cost more than twice the range.
        assert!(!range_pays(9_000, 5_000, 100, 50));
        assert!(range_pays(11_000, 5_000, 100, 50));
    }
}
